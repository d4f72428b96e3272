"""Objectives with known minimisers: quadratics, the noisy quadratic model, 1-D non-convex toys
with a closed-form generalised-curvature range, the Lessard-Recht-Packard counterexample,
interpolating finite sums and Rosenbrock."""

from __future__ import annotations

from simulators.objectives.base import Objective
from simulators.objectives.interpolation import interpolating_least_squares, separable_logistic
from simulators.objectives.nonconvex import (
    lessard_counterexample,
    rosenbrock,
    separable,
    smooth_nonconvex_1d,
    stitched_nonconvex_1d,
)
from simulators.objectives.quadratic import noisy_quadratic_model, quadratic

__all__ = [
    "Objective",
    "interpolating_least_squares",
    "lessard_counterexample",
    "noisy_quadratic_model",
    "quadratic",
    "rosenbrock",
    "separable",
    "separable_logistic",
    "smooth_nonconvex_1d",
    "stitched_nonconvex_1d",
]
