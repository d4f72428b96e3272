"""Shared scalar machinery of MoMo and MoMo-Adam (Schaipp et al., arXiv 2305.07583).

Both optimizers build the same model of the loss from exponential averages of the batch
losses ``f_j``, gradients ``g_j`` and inner products ``<g_j, x_j>``; they differ only in the
geometry of the step (identity for MoMo, Adam's diagonal ``D_k`` for MoMo-Adam). This module holds
the part that is identical: the step size ``tau_k``, the lower-bound estimate of MoMo* and the
cancellation-free recursion for the model value ``h_k``.

Notation (reference/momo.md): ``c = 1 + alpha lambda``, ``rho_k`` the bias correction (1 without),
``u_k = <d_k, x_k> - gamma_k`` so that ``h_k = fbar_k + u_k``, and ``dd = <d_k, P d_k>`` with ``P``
the identity (MoMo) or ``D_k^{-1}`` (MoMo-Adam).
"""

from __future__ import annotations

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


def check_common(learning_rate: Any, lower_bound: Any, weight_decay: Any) -> None:
    """Validate the hyper-parameters shared by MoMo and MoMo-Adam.

    Raises:
        ValueError: learning_rate outside [0, inf), lower_bound not finite, weight_decay outside
            [0, inf).
    """
    check_scalar("learning_rate", learning_rate, 0.0)
    check_scalar("lower_bound", lower_bound)
    check_scalar("weight_decay", weight_decay, 0.0)


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
) -> ModelStep:
    """Step size, MoMo* estimate and recursion increment of one MoMo step.

    With ``c = 1 + alpha lambda`` (Schaipp et al. 2024, Alg. 1-2 and Sec. 5, reference/momo.md)::

        num   = c (fbar - rho f_*) + <d, x> - c gamma = c (h - rho f_*) - alpha lambda <d, x>
        tau   = min{alpha / rho, num_+ / dd}            (0 when dd = 0)
        MoMo* before: if num(f_* = 0) < c rho f_*: f_* <- max{num(f_* = 0) / (2 c rho), f_*^1}
        MoMo* after:  f_*' = max{(h - tau dd / 2) / rho, f_*^1}
        increment = <d, x' - x> = -(alpha lambda <d, x> + tau dd) / c

    where ``x' = (x - tau P d) / c`` is the proximal step of the paper. The increment feeds the
    recursion ``u' = beta (u + increment)``.

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
    num = jnp.maximum(c * (h - rho * lb) - wd_term, 0.0)
    positive = dd > 0
    ratio = num / jnp.where(positive, dd, 1.0)
    # jnp.minimum propagates NaN: the where() keeps a zero/NaN denominator out of tau.
    tau = jnp.where(positive, jnp.minimum(alpha / rho, ratio), 0.0)
    lb_next = jnp.maximum((h - 0.5 * tau * dd) / rho, floor) if adapt else lb
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
