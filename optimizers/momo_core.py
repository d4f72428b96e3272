"""Shared scalar machinery of MoMo and MoMo-Adam (Schaipp et al., arXiv 2305.07583).

Both optimizers build the same model of the loss from exponential averages of the batch
losses ``f_j``, gradients ``g_j`` and inner products ``<g_j, x_j>``; they differ only in the
geometry of the step (identity for MoMo, Adam's diagonal ``D_k`` for MoMo-Adam). This module holds
the part that is identical: the step size ``tau_k``, the lower-bound estimate of MoMo* and the
cancellation-free recursion for the model value ``h_k`` (:func:`scalar_step` bundles them).

Notation (reference/momo.md): ``c = 1 + alpha lambda``, ``rho_k`` the bias correction (1 without),
``u_k = <d_k, x_k> - gamma_k`` so that ``h_k = fbar_k + u_k``, and ``dd = <d_k, P d_k>`` with ``P``
the identity (MoMo) or ``D_k^{-1}`` (MoMo-Adam).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optimizers._common import check_scalar


class ModelStep(NamedTuple):
    """Scalars produced by :func:`model_step` for one MoMo / MoMo-Adam step."""

    tau: jax.Array
    h: jax.Array
    lower_bound_used: jax.Array
    lower_bound_next: jax.Array
    increment: jax.Array


def is_zero(x: Any) -> bool:
    """True when ``x`` is a Python number equal to 0 (known at trace time)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and x == 0


def check_common(
    learning_rate: Any, lower_bound: Any, weight_decay: Any, track_params: Any = None
) -> None:
    """Validate the hyper-parameters shared by MoMo and MoMo-Adam.

    Raises:
        ValueError: learning_rate outside [0, inf), lower_bound not finite, weight_decay outside
            [0, inf), track_params not None, True or False.
    """
    check_scalar("learning_rate", learning_rate, 0.0)
    check_scalar("lower_bound", lower_bound)
    check_scalar("weight_decay", weight_decay, 0.0)
    if not (track_params is None or isinstance(track_params, bool)):
        raise ValueError(f"track_params must be None, True or False (got {track_params!r})")


def needs_tracking(track_params: bool | None, params: Any) -> bool:
    """Resolve ``track_params``: None means True when any parameter leaf is narrower than float32.

    The closed-form increment of the ``h_k`` recursion assumes the returned update lands on the
    parameters exactly. A bfloat16 (or float16) parameter write rounds every coordinate to
    2^-8 (2^-11) relative, an error that the recursion accumulates without bound relative to a
    small ``h_k``; measuring the increment from the parameters actually reached removes it.
    """
    if track_params is not None:
        return track_params
    return any(
        jnp.issubdtype(jnp.result_type(leaf), jnp.floating)
        and jnp.finfo(jnp.result_type(leaf)).bits < 32
        for leaf in jax.tree_util.tree_leaves(params)
    )


def model_step(
    *,
    alpha: jax.Array,
    lam: Any,
    rho: jax.Array,
    h: jax.Array,
    dx: jax.Array,
    dd: jax.Array,
    lower_bound: jax.Array,
    floor: jax.Array,
    adapt: bool,
    loss: jax.Array | None = None,
) -> ModelStep:
    """Step size, MoMo* estimate and recursion increment of one MoMo step.

    With ``c = 1 + alpha lambda`` (Schaipp et al. 2024, Alg. 1-2 and Sec. 5, reference/momo.md)::

        num   = c (fbar - rho f_*) + <d, x> - c gamma = c (h - rho f_*) - alpha lambda <d, x>
        tau   = min{alpha / rho, num_+ / dd}            (0 when dd = 0)
        MoMo* before: if num(f_* = 0) < c rho f_*: f_* <- max{num(f_* = 0) / (2 c rho), f_*^1}
        MoMo* after:  f_*' = max{(h - tau dd / 2) / rho, f_*^1}
        increment = <d, x' - x> = -(alpha lambda <d, x> + tau dd) / c

    where ``x' = (x - tau P d) / c`` is the proximal step of the paper. Two safeguards of MoMo*
    beyond the paper (both inactive while the estimate stays below the losses and gradients are
    non-zero, so ordinary runs follow the published rule step for step):

    - a step with ``dd = 0`` (a zero gradient: the model has no slope, so its minimum along the
      step says nothing about ``f_*``) leaves the estimate as it is. Without this, a plateau of
      zero gradients at a positive loss raises the estimate to the loss, after which
      ``num = 0``, ``tau = 0`` and the run never moves again;
    - the estimate never exceeds the observed loss ``f`` of the step that uses or sets it (the
      truncation ``f_*`` must lie below the loss it truncates): ``f_* <- max{min(f_*, f), f_*^1}``.

    The increment feeds the recursion ``u' = beta (u + increment)``.

    Args:
        alpha: learning rate (the cap) of this step.
        lam: weight decay (a Python 0 skips the ``<d, x>`` terms).
        rho: bias correction ``1 - beta^k`` (1 without).
        h: model value ``fbar + u``.
        dx: ``<d, x>`` (ignored when ``lam`` is a Python 0).
        dd: ``<d, P d>``.
        lower_bound: current lower bound (estimate).
        floor: the user's lower bound, a hard floor of the estimate.
        adapt: whether MoMo* updates the estimate.
        loss: the observed batch loss ``f_k``, which turns both safeguards on; None gives the
            published rule exactly.

    Returns:
        The :class:`ModelStep` scalars.
    """
    if is_zero(lam):
        c = jnp.ones_like(h)
        wd_term = jnp.zeros_like(h)
    else:
        c = 1.0 + alpha * lam
        wd_term = alpha * lam * dx
    lb = lower_bound
    if adapt:
        cap = c * h - wd_term
        lb = jnp.where(cap < c * rho * lb, jnp.maximum(cap / (2.0 * c * rho), floor), lb)
        if loss is not None:
            lb = jnp.maximum(jnp.minimum(lb, loss), floor)
    num = jnp.maximum(c * (h - rho * lb) - wd_term, 0.0)
    positive = dd > 0
    ratio = num / jnp.where(positive, dd, 1.0)
    # jnp.minimum propagates NaN: the where() keeps a zero/NaN denominator out of tau.
    tau = jnp.where(positive, jnp.minimum(alpha / rho, ratio), 0.0)
    if adapt:
        lb_next = jnp.maximum((h - 0.5 * tau * dd) / rho, floor)
        if loss is not None:
            lb_next = jnp.where(positive, lb_next, lb)
            lb_next = jnp.maximum(jnp.minimum(lb_next, loss), floor)
    else:
        lb_next = lb
    increment = -(wd_term + tau * dd) / c
    return ModelStep(tau, h, lb, lb_next, increment)


def shrink_factor(alpha: jax.Array, lam: Any) -> tuple[jax.Array | None, jax.Array]:
    """``(alpha lambda / c, 1 / c)`` of the proximal weight decay; the first is None for lam = 0."""
    if is_zero(lam):
        return None, jnp.ones_like(alpha)
    c = 1.0 + alpha * lam
    return alpha * lam / c, 1.0 / c


def wide(dtype: Any) -> jnp.dtype:
    """The dtype of a statistic kept for a leaf of ``dtype``: float32 or wider."""
    return jnp.promote_types(dtype, jnp.float32)


def tree_dot(a: Any, b: Any, dtype: jnp.dtype) -> jax.Array:
    """``<a, b>`` over two pytrees as a sum of elementwise products accumulated in ``dtype``.

    Written as a reduction (not ``vdot``) so that XLA fuses the producer of ``a`` (the new moment)
    into it instead of materialising a parameter-sized temporary.
    """
    parts = jax.tree_util.tree_map(
        lambda x, y: jnp.sum(x.astype(dtype) * y.astype(dtype), dtype=dtype), a, b
    )
    return sum(jax.tree_util.tree_leaves(parts), jnp.zeros((), dtype))


def ema_tree(old: Any, new: Any, b: jax.Array, ok: jax.Array | None = None) -> Any:
    """``b old + (1 - b) new`` leafwise, in the dtype of ``old``.

    With ``ok`` given this is the guarded form ``b' old + (1 - b') where(ok, new, 0)``,
    ``b' = where(ok, b, 1)``: the average when ``ok``, exactly ``old`` otherwise (NaN/inf in ``new``
    never reach it). One fused pass that writes the new average in place of the donated old one,
    instead of a select between a materialised new average and the old one.
    """
    if ok is not None:
        b = jnp.where(ok, b, jnp.ones_like(b))
        new = jax.tree_util.tree_map(lambda g: jnp.where(ok, g, jnp.zeros_like(g)), new)

    def one(m: jax.Array, g: jax.Array) -> jax.Array:
        return b.astype(m.dtype) * m + (1 - b).astype(m.dtype) * g.astype(m.dtype)

    return jax.tree_util.tree_map(one, old, new)


def keep_if_skipped(ok: jax.Array, new_state: Any, old_state: Any, guarded: tuple[str, ...]) -> Any:
    """Roll the state back when ``ok`` is False and count the skipped step.

    Fields named in ``guarded`` are already guarded (see :func:`ema_tree`) and passed through; the
    others are selected with ``where(ok, new, old)``. ``skipped`` is incremented when not ``ok``.
    Same semantics as ``optimizers._common.guard_nonfinite`` without a second pass over the moments.
    """
    fields = {}
    for name in new_state._fields:
        new, old = getattr(new_state, name), getattr(old_state, name)
        if name in guarded:
            fields[name] = new
        else:
            fields[name] = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, old)
    fields["skipped"] = old_state.skipped + jnp.where(ok, 0, 1).astype(jnp.int32)
    return type(new_state)(**fields)


class ScalarStep(NamedTuple):
    """Scalars of one MoMo / MoMo-Adam step, produced by :func:`scalar_step`.

    Attributes:
        fbar: loss average ``fbar_k``.
        u: ``u_k = <d_k, x_k> - gamma_k``.
        dx: ``<d_k, x_k>`` (0 without weight decay).
        ok: whether the step is accepted (``f_k``, ``dd`` and ``dx`` finite).
        model: the :class:`ModelStep` of :func:`model_step`.
        scale: ``tau_k / c`` when ``ok``, else 0.
        shrink: ``alpha_k lambda / c`` when ``ok``, else 0; None without weight decay.
    """

    fbar: jax.Array
    u: jax.Array
    dx: jax.Array
    ok: jax.Array
    model: ModelStep
    scale: jax.Array
    shrink: jax.Array | None

    @property
    def direction(self) -> Callable[[jax.Array, jax.Array], jax.Array]:
        """Leafwise update ``(pd, x) -> -scale pd - shrink x`` in the dtype of ``x``.

        ``pd`` is the leaf of ``P d_k`` (``d_k`` for MoMo, ``D_k^{-1} d_k`` for MoMo-Adam), so that
        ``x + direction(pd, x) = (x - tau_k P d_k) / c`` is the proximal step.
        """
        scale, shrink = self.scale, self.shrink

        def direction(pd: jax.Array, x: jax.Array) -> jax.Array:
            out = -scale.astype(pd.dtype) * pd
            if shrink is not None:
                out = out - shrink.astype(pd.dtype) * x.astype(pd.dtype)
            return out.astype(x.dtype)

        return direction


def scalar_step(
    state: Any,
    grads: Any,
    params: Any,
    *,
    f: jax.Array,
    beta: jax.Array,
    rho: jax.Array,
    alpha: jax.Array,
    dd: jax.Array,
    weight_decay: Any,
    lower_bound: Any,
    adapt: bool,
    track_params: bool,
    guard_estimate: bool = True,
) -> ScalarStep:
    """Loss average, cancellation-free model value and step scalars of one MoMo step.

    Schaipp et al., "MoMo: Momentum Models for Adaptive Learning Rates", ICML 2024
    (arXiv 2305.07583), Alg. 1-2, Sec. 4-5 (reference/momo.md). With ``c = 1 + alpha lambda``::

        fbar_k    = beta fbar_{k-1} + (1 - beta) f_k
        incr      = <d_{k-1}, x_k - x_{k-1}>   (state.du, or measured with track_params)
        u_k       = beta (u_{k-1} + incr)
        <d_k,x_k> = beta (<d_{k-1}, x_{k-1}> + incr) + (1 - beta) <g_k, x_k>   (weight decay only)
        tau_k     = model_step(h = fbar_k + u_k, ...).tau
        x_{k+1}   = x_k - (tau_k / c) P d_k - (alpha lambda / c) x_k = (x_k - tau_k P d_k) / c

    so that ``h_k = fbar_k + u_k`` is never the difference of two large numbers. The only
    reductions are ``<d_{k-1}, x_k - x_{k-1}>`` (``track_params``) and ``<g_k, x_k>`` (weight
    decay); ``dd = <d_k, P d_k>`` is reduced by the caller, with its own preconditioner ``P``.

    Args:
        state: optimizer state with fields ``d``, ``fbar``, ``u``, ``du``, ``dx``, ``lower_bound``
            and ``prev_params``; ``state.fbar.dtype`` is the statistics dtype.
        grads: the gradient ``g_k``.
        params: the parameters ``x_k``.
        f: the batch loss ``f_k`` in the statistics dtype.
        beta: momentum of the averages this step (0 at the first step without bias correction).
        rho: bias correction ``1 - beta^k`` (1 without).
        alpha: learning rate (the cap) of this step.
        dd: ``<d_k, P d_k>``.
        weight_decay: ``lambda`` (a Python 0 skips the ``<d, x>`` terms).
        lower_bound: the user's lower bound ``f_*``, a hard floor of MoMo*'s estimate.
        adapt: whether MoMo* updates the estimate.
        track_params: measure the increment from ``state.prev_params``.
        guard_estimate: MoMo*'s safeguards (see :func:`model_step`); False is the published rule.

    Returns:
        The :class:`ScalarStep`; the step is skipped (scale = shrink = 0) when not ``ok``.
    """
    sd = state.fbar.dtype
    fbar = beta * state.fbar + (1 - beta) * f
    if track_params:
        moved = jax.tree_util.tree_map(
            lambda x, p: x.astype(wide(x.dtype)) - p.astype(wide(x.dtype)),
            params,
            state.prev_params,
        )
        increment = tree_dot(state.d, moved, sd)
    else:
        increment = state.du
    u = beta * (state.u + increment)
    if is_zero(weight_decay):
        dx = jnp.zeros((), sd)
    else:
        # <d_k, x_k> = beta (<d_{k-1}, x_{k-1}> + increment) + (1 - beta) <g_k, x_k>: only
        # <g_k, x_k> is reduced, d_k is never materialised for a second reduction.
        dx = beta * (state.dx + increment) + (1 - beta) * tree_dot(grads, params, sd)
        # An injected weight decay is an array even when it is 0: <d, x> is then not part of the
        # state, as for the Python 0 above, so that injecting a hyper-parameter changes nothing.
        dx = jnp.where(jnp.asarray(weight_decay, sd) == 0, jnp.zeros((), sd), dx)
    ok = jnp.isfinite(f) & jnp.isfinite(dd) & jnp.isfinite(dx)
    wd = weight_decay if is_zero(weight_decay) else jnp.asarray(weight_decay, sd)
    model = model_step(
        alpha=alpha,
        lam=wd,
        rho=rho,
        h=fbar + u,
        dx=dx,
        dd=dd,
        lower_bound=state.lower_bound,
        floor=jnp.asarray(lower_bound, sd),
        adapt=adapt,
        loss=f if guard_estimate else None,
    )
    shrink, inv_c = shrink_factor(alpha, wd)
    # A skipped step (not ok) moves nothing: scale = shrink = 0 on a finite P d.
    scale = jnp.where(ok, model.tau * inv_c, 0.0)
    shrink = None if shrink is None else jnp.where(ok, shrink, 0.0)
    return ScalarStep(fbar, u, dx, ok, model, scale, shrink)
