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

from optimizers._common import tree_sq_norm


class OracleState(NamedTuple):
    """Running statistics of the oracles (all EMAs start at zero, as in the official code)."""

    grad_avg: Any
    curv_win: jax.Array
    h_min_avg: jax.Array
    h_max_avg: jax.Array
    grad_norm_sq_avg: jax.Array
    grad_norm_avg: jax.Array
    dist_to_opt_avg: jax.Array


class OracleReading(NamedTuple):
    """Debiased estimates after one step."""

    h_min: jax.Array
    h_max: jax.Array
    grad_var: jax.Array
    dist_to_opt: jax.Array


def oracle_init(params: Any, curv_window: int, dtype: jnp.dtype) -> OracleState:
    """Zero statistics for a parameter pytree."""
    zero = jnp.zeros((), dtype)
    return OracleState(
        grad_avg=jax.tree_util.tree_map(lambda p: jnp.zeros(jnp.shape(p), dtype), params),
        curv_win=jnp.zeros((curv_window,), dtype),
        h_min_avg=zero,
        h_max_avg=zero,
        grad_norm_sq_avg=zero,
        grad_norm_avg=zero,
        dist_to_opt_avg=zero,
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
) -> tuple[OracleState, OracleReading]:
    """One measurement step on the (already clipped) gradient ``grads`` with ||grads||^2 given.

    Args:
        state: running statistics.
        grads: gradient pytree in the statistics dtype.
        grad_norm_sq: its squared global norm.
        count: step counter t (from 0).
        beta: EMA constant in [0, 1).
        zero_debias: divide the EMAs by d_t.
        log_smoothing: average log curvature extremes (official default) instead of raw ones.
        eps: the official 1e-6 guard.

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
    grad_avg = jax.tree_util.tree_map(
        lambda a, g: b * a + one_minus_b * g.astype(dt), state.grad_avg, grads
    )
    grad_var = grad_norm_sq_avg / d - tree_sq_norm(grad_avg, dt) / (d * d)
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
    )
    return new_state, OracleReading(h_min, h_max, grad_var, dist_to_opt)
