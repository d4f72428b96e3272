"""The negative-feedback law of closed-loop momentum, its settings and their validation.

Zhang & Mitliagkas, "YellowFin and the Art of Momentum Tuning" (arXiv 1706.03471), Sec. 4:

    mu_algo <- clip(mu_algo + gain * (mu_target - mu_hat), lo, hi),

with mu_hat the reading of ``optimizers.momentum_sensor``.

Reachability with the ``"total"`` sensor convention: with mu_algo clipped to [-0.9, 0.999] the
reachable total momentum 1 - (1 - mu_algo)/M is, to first order, [1 - 1.9/M, 1 - 0.001/M] (0.881
to 0.99994 for M = 16). A target below 1 - 1.9/M (e.g. SingleStep's momentum early in training,
often 0 to 0.3) cannot be reached: the controller then sits on its floor. With the
``"algorithmic"`` convention every target in [0, 1) is reachable (to first order in the step).

Choice of the default gain (0.02). Near the set point the sensor reads mu_hat_k = s * mu_algo_{k-d}
+ b, with b the implicit momentum (slowly varying), s = d mu_hat / d mu_algo (1 for the algorithmic
convention, about 1/M for the total one) and d the sensor delay (the staleness). The error
e = mu_target - mu_hat then obeys e_{k+1} = e_k - gain * s * e_{k-d}: without delay
e_{k+1} = (1 - gain*s) e_k, monotone for gain*s < 1; with delay d this is the fixed-delay recursion
of the asynchrony reference, stable iff gain*s < 2 sin(pi / (2 (2d + 1))). With gain = 0.02 the
loop is stable for every delay d <= 78 steps (far beyond the staleness of 16-32 workers), and the
noise of the median sensor is averaged over a time constant of 1/(gain*s) steps (50 with the
algorithmic convention, 50*M with the total one), short next to a training run of thousands of
steps. Gains near 0.1 lose stability at d ~ 15 (16 workers); gains near 0.005 track a moving
target too slowly.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

from optimizers._common import check_int, check_scalar

__all__ = [
    "DEFAULT_GAIN",
    "MOMENTUM_RANGE",
    "SensorConvention",
    "check_loop_args",
    "feedback_update",
    "numerator_scale",
]

SensorConvention = Literal["algorithmic", "total"]
DEFAULT_GAIN = 0.02
# Safe range of the algorithmic momentum: negative values compensate implicit momentum; the upper
# end keeps the heavy-ball recursion strictly stable (|mu| < 1).
MOMENTUM_RANGE = (-0.9, 0.999)


def feedback_update(
    mu_algo: jax.Array,
    mu_target: jax.Array,
    mu_hat: jax.Array,
    valid: jax.Array,
    gain: float,
    momentum_range: tuple[float, float] = MOMENTUM_RANGE,
) -> jax.Array:
    """mu_algo + gain * (mu_target - mu_hat), clipped; held when the reading is not valid."""
    step = jnp.where(valid, gain * (mu_target - jnp.where(valid, mu_hat, mu_target)), 0.0)
    return jnp.clip(mu_algo + step, momentum_range[0], momentum_range[1])


def check_loop_args(
    gain: float,
    sensor_convention: str,
    effective_workers: float,
    sensor_size: int,
    max_staleness: int,
    min_denominator: float,
    gain_name: str = "gain",
) -> None:
    """Validate the closed-loop hyper-parameters (ValueError naming the parameter)."""
    check_scalar(gain_name, gain, 0.0, 1.0, lo_open=True)
    if sensor_convention not in ("algorithmic", "total"):
        raise ValueError(
            f"sensor_convention must be 'algorithmic' or 'total' (got {sensor_convention!r})"
        )
    check_scalar("effective_workers", effective_workers, 1.0)
    check_int("sensor_size", sensor_size, 1)
    check_int("max_staleness", max_staleness, 0, 4096)
    check_scalar("min_denominator", min_denominator, 0.0, 1.0, hi_open=True)


def numerator_scale(sensor_convention: str, effective_workers: float) -> float:
    """Factor applied to the step size in the sensor's numerator."""
    return 1.0 if sensor_convention == "algorithmic" else 1.0 / effective_workers
