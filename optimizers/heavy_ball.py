"""Exact heavy-ball (Polyak) momentum as an optax transformation.

Polyak (1964), "Some methods of speeding up the convergence of iteration methods":

    x_{t+1} = x_t - alpha_t * g_t + mu_t * (x_t - x_{t-1}),

with the learning rate *inside* the step, so the momentum term is the previous move itself. Started
with zero velocity, x_1 = x_0 - alpha_0 * g_0. With a constant learning rate this equals PyTorch's
``v = mu v + g; x -= lr v``; with a time-varying learning rate it does not (PyTorch's form has
effective momentum mu_t * lr_t / lr_{t-1}), which is why this form exists.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optimizers._common import (
    check_scalar,
    guard_scalars,
    masked_updates,
    stat_dtype,
    tree_all_finite,
    value_ok,
)

ScalarOrSchedule = float | optax.Schedule


class HeavyBallState(NamedTuple):
    """State of :func:`heavy_ball`.

    Attributes:
        delta: previous move x_t - x_{t-1} (float32 or wider), zero at the start.
        count: number of accepted steps (int32).
        learning_rate: step size alpha applied at the last step.
        momentum: momentum mu applied at the last step.
        skipped: steps skipped because the gradient or the loss was not finite (int32).
    """

    delta: Any
    count: jax.Array
    learning_rate: jax.Array
    momentum: jax.Array
    skipped: jax.Array

    LOGGED = ("learning_rate", "momentum", "skipped")


def _value(x: ScalarOrSchedule, count: jax.Array, dtype: jnp.dtype) -> jax.Array:
    """Evaluate a float or an optax schedule at ``count``."""
    return jnp.asarray(x(count) if callable(x) else x, dtype)


def heavy_ball(
    learning_rate: ScalarOrSchedule,
    momentum: ScalarOrSchedule,
    *,
    weight_decay: float = 0.0,
) -> optax.GradientTransformationExtraArgs:
    """Heavy-ball momentum in Polyak's form, learning rate inside the step.

    Update (Polyak 1964; reference/heavy_ball.md, first paragraph):
    ``delta_{t+1} = -alpha_t * (g_t + weight_decay * x_t) + mu_t * delta_t``, ``x_{t+1} = x_t +
    delta_{t+1}``, ``delta_0 = 0``. A non-finite gradient leaves the parameters and the state
    unchanged and increments ``skipped``. Extra arguments to ``update`` (``value=``,
    ``staleness=``, ...) are accepted and ignored.

    Negative momentum is allowed: the recursion is stable for |mu| < 1 and a suitable alpha
    (Polyak 1964; reference/heavy_ball.md), and a negative algorithmic momentum compensates the
    implicit momentum of asynchronous runs (Mitliagkas et al., arXiv 1605.09774, Sec. 3).

    Cost: one reduction over the gradient (its finiteness) and one fused pass that writes the new
    move, ``where(ok, mu * delta - alpha * g, delta)``, so a skipped step needs no extra pass.
    With parameters narrower than float32 (float16, bfloat16) a move that overflows the parameter
    dtype is skipped too (one more reduction, only for those dtypes).

    Args:
        learning_rate: alpha >= 0, a float or an optax schedule of the step count.
        momentum: mu in (-1, 1), a float or an optax schedule.
        weight_decay: coupled L2 coefficient >= 0 (needs ``params`` in ``update``).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Raises:
        ValueError: for a learning rate < 0, a momentum outside (-1, 1) or weight decay < 0.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> opt = heavy_ball(0.1, 0.5)
        >>> x = jnp.array([1.0]); state = opt.init(x)
        >>> for _ in range(2):
        ...     upd, state = opt.update(2 * x, state, x)
        ...     x = optax.apply_updates(x, upd)
        >>> [round(float(v), 4) for v in x]  # x1 = 0.8, x2 = 0.8 - 0.16 - 0.1
        [0.54]
    """
    check_scalar("learning_rate", learning_rate, 0.0)
    check_scalar("momentum", momentum, -1.0, 1.0, lo_open=True, hi_open=True)
    check_scalar("weight_decay", weight_decay, 0.0)

    def init_fn(params: Any) -> HeavyBallState:
        dt = stat_dtype(params)
        delta = jax.tree_util.tree_map(lambda p: jnp.zeros(jnp.shape(p), dt), params)
        # Distinct arrays per field: a state whose fields share a buffer cannot be donated.
        return HeavyBallState(
            delta=delta,
            count=jnp.zeros((), jnp.int32),
            learning_rate=_value(learning_rate, jnp.zeros((), jnp.int32), dt),
            momentum=_value(momentum, jnp.zeros((), jnp.int32), dt),
            skipped=jnp.zeros((), jnp.int32),
        )

    def update_fn(
        updates: Any,
        state: HeavyBallState,
        params: Any = None,
        *,
        value: Any = None,
        **extra_args: Any,
    ) -> tuple[Any, HeavyBallState]:
        del extra_args
        dt = stat_dtype(params, state.delta)
        alpha = _value(learning_rate, state.count, dt)
        mu = _value(momentum, state.count, dt)
        grads = jax.tree_util.tree_map(lambda g: g if g.dtype == dt else g.astype(dt), updates)
        if not (isinstance(weight_decay, int | float) and weight_decay == 0.0):
            if params is None:
                raise ValueError("heavy_ball with weight_decay needs params in update()")
            grads = jax.tree_util.tree_map(
                lambda g, p: g + weight_decay * p.astype(dt), grads, params
            )
        # Elementwise expressions: XLA fuses them into the reduction and into the update pass.
        ok = tree_all_finite(grads) & jnp.isfinite(alpha) & jnp.isfinite(mu) & value_ok(value)
        delta = jax.tree_util.tree_map(
            lambda g, d: jnp.where(ok, mu * d - alpha * g, d), grads, state.delta
        )
        if any(jnp.result_type(u) != dt for u in jax.tree_util.tree_leaves(updates)):
            # Parameters narrower than the statistics (float16, bfloat16): a finite move can
            # overflow when it is written in the parameter dtype (float16 tops out at 65504).
            # Such a step is skipped like a non-finite gradient. Decided at trace time, so
            # float32 parameters pay nothing for it.
            fits = tree_all_finite(
                jax.tree_util.tree_map(lambda d, u: d.astype(jnp.result_type(u)), delta, updates)
            )
            delta = jax.tree_util.tree_map(
                lambda new, old: jnp.where(fits, new, old), delta, state.delta
            )
            ok = ok & fits
        new_state = HeavyBallState(
            delta=delta,
            count=state.count + 1,
            learning_rate=alpha,
            momentum=mu,
            skipped=state.skipped,
        )
        return masked_updates(ok, delta, updates), guard_scalars(
            ok, new_state, state, guarded=("delta",)
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
