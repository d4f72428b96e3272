"""State of :func:`optimizers.yellowfin` and its closed-loop settings.

Zhang & Mitliagkas, "YellowFin and the Art of Momentum Tuning" (arXiv 1706.03471), Algorithm 1
(open loop) and Sec. 4 (closed loop). ``optimizers.yellowfin`` re-exports the public names.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from optimizers._common import check_key
from optimizers.feedback_law import DEFAULT_GAIN, check_loop_args
from optimizers.momentum_sensor import SensorState
from optimizers.yellowfin_oracles import OracleState

# Integer hyper-parameters that shape arrays: pass them as ``static_args`` to
# ``optax.inject_hyperparams(yellowfin, static_args=YELLOWFIN_STATIC_ARGS)``.
YELLOWFIN_STATIC_ARGS = (
    "curv_window",
    "sensor_size",
    "max_staleness",
    "sensor_key",
    "curvature_every",
    "lanczos_steps",
)

# Defaults of the settings that only the closed loop uses (None in the signature: unset).
_LOOP_DEFAULTS = {
    "feedback_gain": DEFAULT_GAIN,
    "sensor_convention": "algorithmic",
    "effective_workers": 1.0,
    "sensor_size": 4096,
    "max_staleness": 64,
    "sensor_min_denominator": 1e-6,
    "sensor_key": 0,
}

_BASE_LOGGED = (
    "learning_rate",
    "momentum",
    "h_min",
    "h_max",
    "grad_var",
    "dist_to_opt",
    "skipped",
    "tuned_momentum",
)


class YellowFinState(NamedTuple):
    """State of :func:`yellowfin` (open loop).

    Attributes:
        count: step counter t (accepted steps).
        oracle: running statistics of the measurement oracles.
        velocity: v (velocity form) or the previous move (heavy-ball form), float32 or wider.
        lr_smooth, mu_smooth: EMA-smoothed tuned values (applied when ``smoothed_tuning``).
        learning_rate: step size applied at the last step: the tuned one times lr_factor,
            lowered by the move clip when it acted.
        momentum: momentum applied at the last step.
        h_min, h_max, grad_var, dist_to_opt: the last oracle readings.
        skipped: steps skipped for a non-finite gradient or loss.
        tuned_momentum: SingleStep's momentum of the last step (the constructor's ``momentum``
            at step 0), applied unless ``tune_momentum=False``; the closed loop's target.
        step_size: the factor that multiplied the raw gradient in the last move: the applied
            learning rate times the clip factors of the gradient (the numerator step of the
            momentum sensor, ``optimizers.momentum_sensor``).
    """

    count: jax.Array
    oracle: OracleState
    velocity: Any
    lr_smooth: jax.Array
    mu_smooth: jax.Array
    learning_rate: jax.Array
    momentum: jax.Array
    h_min: jax.Array
    h_max: jax.Array
    grad_var: jax.Array
    dist_to_opt: jax.Array
    skipped: jax.Array
    tuned_momentum: jax.Array
    step_size: jax.Array

    LOGGED = _BASE_LOGGED


class YellowFinLoopState(NamedTuple):
    """State of ``yellowfin(closed_loop=True)``: :class:`YellowFinState` plus the controller.

    Attributes:
        sensor: ring of sampled moves of the total-momentum sensor.
        mu_algo: algorithmic momentum for the next step.
        mu_hat: last valid sensor reading.
        mu_target: SingleStep's momentum (or the fixed ``target_momentum``).
    """

    count: jax.Array
    oracle: OracleState
    velocity: Any
    lr_smooth: jax.Array
    mu_smooth: jax.Array
    learning_rate: jax.Array
    momentum: jax.Array
    h_min: jax.Array
    h_max: jax.Array
    grad_var: jax.Array
    dist_to_opt: jax.Array
    skipped: jax.Array
    tuned_momentum: jax.Array
    step_size: jax.Array
    sensor: SensorState
    mu_algo: jax.Array
    mu_hat: jax.Array
    mu_target: jax.Array

    LOGGED = (*_BASE_LOGGED, "mu_hat", "mu_algo", "mu_target")


def loop_settings(closed_loop: bool, given: dict[str, Any]) -> dict[str, Any]:
    """Validate the closed-loop settings and fill in the defaults of the unset (None) ones.

    Args:
        closed_loop: whether the loop is enabled.
        given: the closed-loop keyword arguments of :func:`optimizers.yellowfin` (None = unset),
            ``target_momentum`` included.

    Returns:
        The settings of ``_LOOP_DEFAULTS`` with the defaults filled in.

    Raises:
        ValueError: a setting given while ``closed_loop`` is False (it would be ignored), or one
            outside its range.
    """
    unused = [name for name, v in given.items() if v is not None]
    if unused and not closed_loop:
        raise ValueError(
            f"{', '.join(unused)} only apply to the closed loop: set closed_loop=True or drop them"
        )
    loop = {k: d if given.get(k) is None else given[k] for k, d in _LOOP_DEFAULTS.items()}
    if closed_loop:
        check_loop_args(
            loop["feedback_gain"],
            loop["sensor_convention"],
            loop["effective_workers"],
            loop["sensor_size"],
            loop["max_staleness"],
            loop["sensor_min_denominator"],
            gain_name="feedback_gain",
        )
        check_key("sensor_key", loop["sensor_key"])
    return loop
