"""Heavy ball with closed-loop momentum: the algorithmic momentum steered to a measured target.

Zhang & Mitliagkas, "YellowFin and the Art of Momentum Tuning" (arXiv 1706.03471), Sec. 4
(closed-loop YellowFin); Mitliagkas, Zhang, Hadjis, Re, "Asynchrony begets momentum"
(arXiv 1605.09774). The sensor (its numerator conventions "algorithmic" and "total") lives in
``optimizers.momentum_sensor``; the feedback law and the choice of its gain in
``optimizers.feedback_law``; the same loop around any optax optimizer in
``optimizers.closed_loop``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optimizers._common import (
    check_key,
    check_scalar,
    guard_scalars,
    masked_updates,
    stat_dtype,
    tree_all_finite,
    value_ok,
)
from optimizers.feedback_law import (
    DEFAULT_GAIN,
    MOMENTUM_RANGE,
    SensorConvention,
    check_loop_args,
    feedback_update,
    numerator_scale,
)
from optimizers.momentum_sensor import (
    SensorState,
    momentum_sensor,
    sample_coordinates,
    sensor_init,
    sensor_step,
)

__all__ = [
    "DEFAULT_GAIN",
    "MOMENTUM_FEEDBACK_STATIC_ARGS",
    "MOMENTUM_RANGE",
    "MomentumFeedbackState",
    "SensorConvention",
    "SensorState",
    "check_loop_args",
    "feedback_update",
    "momentum_feedback",
    "momentum_sensor",
    "numerator_scale",
    "sample_coordinates",
    "sensor_init",
    "sensor_step",
]

# Arguments of :func:`momentum_feedback` that shape arrays or seed the coordinate sample: they
# must stay Python values, so ``optax.inject_hyperparams`` has to treat them as static:
# ``optax.inject_hyperparams(momentum_feedback, static_args=MOMENTUM_FEEDBACK_STATIC_ARGS)``.
MOMENTUM_FEEDBACK_STATIC_ARGS = ("sensor_size", "max_staleness", "key")


class MomentumFeedbackState(NamedTuple):
    """State of :func:`momentum_feedback`.

    Attributes:
        delta: previous move (float32 or wider).
        sensor: the sampled ring of moves.
        count: accepted steps.
        learning_rate: alpha applied at the last step.
        momentum: algorithmic momentum applied at the last step.
        mu_algo: algorithmic momentum for the next step.
        mu_hat: last valid sensor reading (the target before the first one).
        mu_target: the set point.
        skipped: steps skipped for a non-finite gradient or loss (``value=``).
    """

    delta: Any
    sensor: SensorState
    count: jax.Array
    learning_rate: jax.Array
    momentum: jax.Array
    mu_algo: jax.Array
    mu_hat: jax.Array
    mu_target: jax.Array
    skipped: jax.Array

    LOGGED = (
        "learning_rate",
        "momentum",
        "mu_hat",
        "mu_algo",
        "mu_target",
        "skipped",
    )


def momentum_feedback(
    learning_rate: float | optax.Schedule,
    target_momentum: float,
    *,
    gain: float = DEFAULT_GAIN,
    initial_momentum: float | None = None,
    sensor_convention: SensorConvention = "algorithmic",
    effective_workers: float = 1.0,
    sensor_size: int = 4096,
    max_staleness: int = 64,
    min_denominator: float = 1e-6,
    key: int | jax.Array = 0,
) -> optax.GradientTransformationExtraArgs:
    """Heavy ball whose algorithmic momentum is steered so the measured momentum hits a target.

    Step (Polyak form, lr inside): d_{k+1} = mu_algo_k * d_k - alpha_k * g_k. Then the sensor
    reads mu_hat for the gradient of this step (paired with the moves around the point where it
    was evaluated, ``update(..., staleness=tau)``, 0 = synchronous, at most ``max_staleness``;
    larger or negative values leave the controller unchanged) and
    mu_algo <- clip(mu_algo + gain * (target_momentum - mu_hat), -0.9, 0.999). See the module
    docs of ``optimizers.momentum_sensor`` (conventions) and ``optimizers.feedback_law`` (gain).
    A non-finite gradient, or a non-finite loss passed as ``value=`` (optional), skips the step
    and counts in ``skipped``.

    Dtypes: the move, the sensor and the controller are kept in float32 (float64 when a parameter
    is float64); parameters may be float64, float32, bfloat16 or float16. With bfloat16 or
    float16 parameters a move that is finite in float32 but overflows the parameter dtype
    (float16 tops out at 65504) is skipped like a non-finite gradient: parameters and state
    unchanged, ``skipped`` incremented (one more reduction, only for those dtypes).

    With ``optax.inject_hyperparams`` the arguments named in ``MOMENTUM_FEEDBACK_STATIC_ARGS``
    (``sensor_size``, ``max_staleness``, ``key``: they size the sensor's ring and sample) must be
    static: ``optax.inject_hyperparams(momentum_feedback,
    static_args=MOMENTUM_FEEDBACK_STATIC_ARGS)(0.1, 0.9)``. Every other numeric argument may be
    injected; ``learning_rate``, ``target_momentum``, ``gain`` and ``effective_workers`` are read
    at every step, ``initial_momentum`` only at ``init``.

    Args:
        learning_rate: alpha >= 0 (float or optax schedule).
        target_momentum: set point in [0, 1).
        gain: controller gain in (0, 1]; default 0.02 (stability: ``optimizers.feedback_law``).
        initial_momentum: starting mu_algo in [-0.9, 0.999]; default the target.
        sensor_convention: ``"algorithmic"`` (default: the applied step size; the paper's
            convention) or ``"total"`` (step size / effective_workers; a target below
            1 - 1.9/M is unreachable, see ``optimizers.feedback_law``).
        effective_workers: M >= 1 for the total convention (ignored by the algorithmic one).
        sensor_size: number of sampled coordinates (all when the model is smaller).
        max_staleness: ring size minus two; staleness beyond it gives no reading.
        min_denominator: relative exclusion threshold of the sensor.
        key: int seed or JAX key for the coordinate sample.

    Raises:
        ValueError: for any hyper-parameter outside its range.

    Example:
        >>> import jax.numpy as jnp
        >>> opt = momentum_feedback(0.1, 0.5)
        >>> state = opt.init(jnp.ones(3))
        >>> float(state.mu_algo)
        0.5
    """
    check_scalar("learning_rate", learning_rate, 0.0)
    check_scalar("target_momentum", target_momentum, 0.0, 1.0, hi_open=True)
    if initial_momentum is not None:
        check_scalar("initial_momentum", initial_momentum, *MOMENTUM_RANGE)
    check_loop_args(
        gain, sensor_convention, effective_workers, sensor_size, max_staleness, min_denominator
    )
    check_key("key", key)
    scale = numerator_scale(sensor_convention, effective_workers)
    mu0 = target_momentum if initial_momentum is None else initial_momentum

    def lr_at(count: jax.Array, dt: jnp.dtype) -> jax.Array:
        return jnp.asarray(learning_rate(count) if callable(learning_rate) else learning_rate, dt)

    def init_fn(params: Any) -> MomentumFeedbackState:
        dt = stat_dtype(params)
        # One array per field (no shared buffers), so that the state can be donated.
        return MomentumFeedbackState(
            delta=jax.tree_util.tree_map(lambda p: jnp.zeros(jnp.shape(p), dt), params),
            sensor=sensor_init(params, sensor_size, max_staleness, key),
            count=jnp.zeros((), jnp.int32),
            learning_rate=lr_at(jnp.zeros((), jnp.int32), dt),
            momentum=jnp.asarray(mu0, dt),
            mu_algo=jnp.asarray(mu0, dt),
            mu_hat=jnp.asarray(target_momentum, dt),
            mu_target=jnp.asarray(target_momentum, dt),
            skipped=jnp.zeros((), jnp.int32),
        )

    def update_fn(
        updates: Any,
        state: MomentumFeedbackState,
        params: Any = None,
        *,
        staleness: Any = 0,
        value: Any = None,
        **extra_args: Any,
    ) -> tuple[Any, MomentumFeedbackState]:
        del params, extra_args
        dt = state.mu_algo.dtype
        alpha = lr_at(state.count, dt)
        mu = state.mu_algo
        # The set point is read here, not from the state, so that an injected target applies.
        mu_target = jnp.asarray(target_momentum, dt)
        grads = jax.tree_util.tree_map(lambda g: g if g.dtype == dt else g.astype(dt), updates)
        # The skip is folded into the one pass that writes the move (see heavy_ball).
        ok = tree_all_finite(grads) & jnp.isfinite(alpha) & value_ok(value)
        delta = jax.tree_util.tree_map(
            lambda g, d: jnp.where(ok, mu * d - alpha * g, d), grads, state.delta
        )
        if any(jnp.result_type(u) != dt for u in jax.tree_util.tree_leaves(updates)):
            # Parameters narrower than the statistics (float16, bfloat16): a finite move can
            # overflow when it is written in the parameter dtype (float16 tops out at 65504).
            # Such a step is skipped like a non-finite gradient (as in heavy_ball), before the
            # sensor records it. Decided at trace time: float32 parameters pay nothing.
            fits = tree_all_finite(
                jax.tree_util.tree_map(lambda d, u: d.astype(jnp.result_type(u)), delta, updates)
            )
            delta = jax.tree_util.tree_map(
                lambda new, old: jnp.where(fits, new, old), delta, state.delta
            )
            ok = ok & fits
        mu_hat, valid, sensor = sensor_step(
            state.sensor, delta, grads, alpha * scale, staleness, min_denominator=min_denominator
        )
        new_state = MomentumFeedbackState(
            delta=delta,
            sensor=sensor,
            count=state.count + 1,
            learning_rate=alpha,
            momentum=mu,
            mu_algo=feedback_update(mu, mu_target, mu_hat, valid, gain),
            mu_hat=jnp.where(valid, mu_hat, state.mu_hat),
            mu_target=mu_target,
            skipped=state.skipped,
        )
        return masked_updates(ok, delta, updates), guard_scalars(
            ok, new_state, state, guarded=("delta",)
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
