"""YellowFin's measurement oracles: curvature range, gradient variance, distance to the optimum.

Zhang & Mitliagkas, "YellowFin and the Art of Momentum Tuning" (arXiv 1706.03471), Sec. 3.2
(Algorithms 2-4), with the details of the official implementation (reference/yellowfin.md).
Every statistic is global: one squared norm over the whole concatenated gradient. With
t the step counter from 0, beta the EMA constant and d_t = 1 - beta^(t+1) the debias factor:

* curvature sample h_t = ||g_t||^2; window of the last min(w, t+1) samples;
  h_min = exp(EMA(log(min window + eps)) / d_t), h_max likewise with the max (log smoothing;
  otherwise the EMA of the raw extremes divided by d_t);
* gradient variance C = max(EMA(||g||^2) / d_t - ||EMA(g)||^2 / d_t^2, eps), EMA(g) a
  parameter-sized buffer;
* distance to the optimum D = EMA(EMA(||g||) / (EMA(||g||^2) + eps)) / d_t.

Scalars are kept in float32 (float64 with float64 parameters); the debias factor is computed as
-expm1((t + 1) log beta) so that it keeps full relative precision at small t.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optimizers._common import tree_vdot
from optimizers._curvature_oracle import CurvatureState, curvature_init


class OracleState(NamedTuple):
    """Running statistics of the oracles (all EMAs start at zero, as in the official code).

    ``count`` is the number of informative (nonzero-gradient) steps measured so far: the t of the
    debias factor. ``hessian`` holds the Hessian-vector oracle (``curvature="hessian"``) or None.
    """

    grad_avg: Any
    curv_win: jax.Array
    h_min_avg: jax.Array
    h_max_avg: jax.Array
    grad_norm_sq_avg: jax.Array
    grad_norm_avg: jax.Array
    dist_to_opt_avg: jax.Array
    count: jax.Array
    hessian: CurvatureState | None = None


class OracleReading(NamedTuple):
    """Debiased estimates after one step."""

    h_min: jax.Array
    h_max: jax.Array
    grad_var: jax.Array
    dist_to_opt: jax.Array


def oracle_init(
    params: Any, curv_window: int, dtype: jnp.dtype, hessian: bool = False
) -> OracleState:
    """Zero statistics for a parameter pytree (with the Hessian oracle's state if ``hessian``)."""
    # One array per field (never one shared scalar), so that the state can be donated.
    return OracleState(
        grad_avg=jax.tree_util.tree_map(lambda p: jnp.zeros(jnp.shape(p), dtype), params),
        curv_win=jnp.zeros((curv_window,), dtype),
        h_min_avg=jnp.zeros((), dtype),
        h_max_avg=jnp.zeros((), dtype),
        grad_norm_sq_avg=jnp.zeros((), dtype),
        grad_norm_avg=jnp.zeros((), dtype),
        dist_to_opt_avg=jnp.zeros((), dtype),
        count=jnp.zeros((), jnp.int32),
        hessian=curvature_init(params, dtype) if hessian else None,
    )


def debias_factor(count: jax.Array, beta: float, zero_debias: bool, dtype: jnp.dtype) -> jax.Array:
    """d_t = 1 - beta^(t+1) (1 when debiasing is off)."""
    if not zero_debias:
        return jnp.ones((), dtype)
    # Python floats: log in float64 first (keeps (1 - beta) and d_t consistent to 1e-7);
    # injected (traced) beta: log in the statistics dtype. beta = 0 gives log 0 = -inf, d_t = 1.
    if isinstance(beta, int | float):
        log_beta = jnp.asarray(math.log(beta) if beta > 0 else -math.inf, dtype)
    else:
        log_beta = jnp.log(jnp.asarray(beta, dtype))
    return -jnp.expm1((count + 1).astype(dtype) * log_beta)


def oracle_update(
    state: OracleState,
    grads: Any,
    grad_norm_sq: jax.Array,
    count: jax.Array,
    *,
    beta: float,
    zero_debias: bool,
    log_smoothing: bool,
    eps: float,
    grad_scale: jax.Array | None = None,
) -> tuple[OracleState, OracleReading]:
    """One measurement step on the (already clipped) gradient ``grads`` with ||grads||^2 given.

    Args:
        state: running statistics.
        grads: gradient pytree in the statistics dtype.
        grad_norm_sq: its squared global norm.
        count: step counter t (from 0): the number of informative steps measured before.
        beta: EMA constant in [0, 1).
        zero_debias: divide the EMAs by d_t.
        log_smoothing: average log curvature extremes (official default) instead of raw ones.
        eps: the official 1e-6 guard.
        grad_scale: optional scalar s; the measured gradient is then ``s * grads`` (the clip
            factor, applied inside the fused passes instead of materialising the product).

    Returns:
        ``(new_state, reading)``.
    """
    dt = grad_norm_sq.dtype
    b = jnp.asarray(beta, dt)
    one_minus_b = 1 - b if not isinstance(beta, int | float) else jnp.asarray(1.0 - beta, dt)
    d = debias_factor(count, beta, zero_debias, dt)
    w = state.curv_win.shape[0]

    def ema(avg: jax.Array, x: jax.Array) -> jax.Array:
        return b * avg + one_minus_b * x

    curv_win = state.curv_win.at[count % w].set(grad_norm_sq)
    valid = jnp.arange(w) < jnp.minimum(count + 1, w)
    win_min = jnp.min(jnp.where(valid, curv_win, jnp.inf))
    win_max = jnp.max(jnp.where(valid, curv_win, -jnp.inf))
    if log_smoothing:
        h_min_avg = ema(state.h_min_avg, jnp.log(win_min + eps))
        h_max_avg = ema(state.h_max_avg, jnp.log(win_max + eps))
        h_min = jnp.exp(h_min_avg / d)
        h_max = jnp.exp(h_max_avg / d)
    else:
        h_min_avg = ema(state.h_min_avg, win_min)
        h_max_avg = ema(state.h_max_avg, win_max)
        h_min = h_min_avg / d
        h_max = h_max_avg / d

    grad_norm_sq_avg = ema(state.grad_norm_sq_avg, grad_norm_sq)

    def scaled(g: jax.Array) -> jax.Array:
        g = g if g.dtype == dt else g.astype(dt)
        return g if grad_scale is None else g * grad_scale

    grad_avg = jax.tree_util.tree_map(
        lambda a, g: b * a + one_minus_b * scaled(g), state.grad_avg, grads
    )
    # ||b a + (1 - b) s g||^2 = b^2 <a, a + k g> + (1 - b)^2 ||s g||^2 with k = 2 (1 - b) s / b,
    # expanded over the old average a: one fused reduction reading a and g (XLA on CPU would
    # otherwise write the new average once to reduce it and once more to store it). Rounding: a
    # few float32 ulps of max(b^2 ||a||^2, ((1 - b) s)^2 ||g||^2), the order of the accumulation
    # error of the direct sum; clamped at 0. b = 0 gives k = 0 and the exact (1 - b)^2 ||s g||^2.
    s_g = jnp.asarray(1.0 if grad_scale is None else grad_scale, dt)
    k = jnp.where(b > 0, 2 * one_minus_b * s_g / jnp.where(b > 0, b, 1), 0)
    cross = jax.tree_util.tree_map(
        lambda a, g: a + k * (g if g.dtype == dt else g.astype(dt)), state.grad_avg, grads
    )
    avg_sq = b * b * tree_vdot(state.grad_avg, cross, dt) + one_minus_b**2 * grad_norm_sq
    grad_var = grad_norm_sq_avg / d - jnp.maximum(avg_sq, 0) / (d * d)
    grad_var = jnp.where(grad_var > eps, grad_var, jnp.asarray(eps, dt))

    grad_norm_avg = ema(state.grad_norm_avg, jnp.sqrt(grad_norm_sq))
    dist_to_opt_avg = ema(state.dist_to_opt_avg, grad_norm_avg / (grad_norm_sq_avg + eps))
    dist_to_opt = dist_to_opt_avg / d

    new_state = OracleState(
        grad_avg=grad_avg,
        curv_win=curv_win,
        h_min_avg=h_min_avg,
        h_max_avg=h_max_avg,
        grad_norm_sq_avg=grad_norm_sq_avg,
        grad_norm_avg=grad_norm_avg,
        dist_to_opt_avg=dist_to_opt_avg,
        count=count + 1,
        hessian=state.hessian,
    )
    return new_state, OracleReading(h_min, h_max, grad_var, dist_to_opt)


def proxy_h_max(state: OracleState, *, beta: float, zero_debias: bool, log_smoothing: bool) -> Any:
    """The gradient-norm proxy h_max of the last measured step (0 before any measurement).

    It is what the official clipping rules compare ||g||^2 with; with ``curvature="hessian"`` the
    tuner's h_max is a Hessian eigenvalue (other units), so the rules keep this one.
    """
    dt = state.h_max_avg.dtype
    d = debias_factor(state.count - 1, beta, zero_debias, dt)
    d = jnp.where(state.count > 0, d, 1)
    value = jnp.exp(state.h_max_avg / d) if log_smoothing else state.h_max_avg / d
    return jnp.where(state.count > 0, value, 0)


def hold_statistics(new: OracleState, old: OracleState, measured: jax.Array) -> OracleState:
    """Keep the old scalar statistics unless ``measured`` (a zero gradient is no measurement).

    The parameter-sized ``grad_avg`` and start vector are left to the caller (the vector only
    changes on a measured step; ``grad_avg`` is selected together with the finiteness guard).
    """
    small = {
        f: jnp.where(measured, getattr(new, f), getattr(old, f))
        for f in new._fields
        if f not in ("grad_avg", "hessian")
    }
    hess = new.hessian
    if hess is not None:
        kept = old.hessian._replace(start=hess.start)
        hess = jax.tree_util.tree_map(lambda a, b: jnp.where(measured, a, b), hess, kept)
    return new._replace(**small, hessian=hess)
