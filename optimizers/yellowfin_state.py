"""State of :func:`optimizers.yellowfin`.

Zhang & Mitliagkas, "YellowFin and the Art of Momentum Tuning" (arXiv 1706.03471), Algorithm 1.
``optimizers.yellowfin`` re-exports the public names.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from optimizers.yellowfin_oracles import OracleState

# Integer hyper-parameters that shape arrays: pass them as ``static_args`` to
# ``optax.inject_hyperparams(yellowfin, static_args=YELLOWFIN_STATIC_ARGS)``.
YELLOWFIN_STATIC_ARGS = (
    "curv_window",
    "curvature_every",
    "lanczos_steps",
)

_LOGGED = (
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
    """State of :func:`yellowfin`.

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

    LOGGED = _LOGGED
