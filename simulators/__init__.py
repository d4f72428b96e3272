"""Cheap worlds with known answers: objectives, vectorised runs, asynchrony and measurements.

This package never imports :mod:`theory`: it measures, and the comparison with the closed forms
happens in the experiments and the tests.
"""

from __future__ import annotations

from simulators.asynchrony import (
    AsyncEnsemble,
    AsyncTrajectory,
    SensorReading,
    StalenessLaw,
    async_ensemble,
    simulate_async_exact,
    simulate_async_fast,
    staleness_histogram,
    total_momentum_from_trajectory,
    worker_schedule,
)
from simulators.measure import (
    RateEstimate,
    integrated_autocorrelation_time,
    measure_rate,
    peak_transient,
    per_coordinate_rates,
    stationary_estimate,
)
from simulators.objectives import (
    Objective,
    interpolating_least_squares,
    lessard_counterexample,
    noisy_quadratic_model,
    quadratic,
    rosenbrock,
    separable,
    separable_logistic,
    smooth_nonconvex_1d,
    stitched_nonconvex_1d,
)
from simulators.run import Trajectory, simulate
from simulators.sweep import product_grid, sweep, sweep_memory

__all__: list[str] = [
    "AsyncEnsemble",
    "AsyncTrajectory",
    "Objective",
    "RateEstimate",
    "SensorReading",
    "StalenessLaw",
    "Trajectory",
    "async_ensemble",
    "integrated_autocorrelation_time",
    "interpolating_least_squares",
    "lessard_counterexample",
    "measure_rate",
    "noisy_quadratic_model",
    "peak_transient",
    "per_coordinate_rates",
    "product_grid",
    "quadratic",
    "rosenbrock",
    "separable",
    "separable_logistic",
    "simulate",
    "simulate_async_exact",
    "simulate_async_fast",
    "smooth_nonconvex_1d",
    "staleness_histogram",
    "stationary_estimate",
    "stitched_nonconvex_1d",
    "sweep",
    "sweep_memory",
    "total_momentum_from_trajectory",
    "worker_schedule",
]
