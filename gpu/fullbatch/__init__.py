"""Deterministic full-batch problems in float64: heavy-ball trajectories, L-BFGS polish, exact
Hessians, and the late per-variable rates towards the polished minimiser."""

from __future__ import annotations

from gpu.fullbatch._problem import (
    FlatProblem,
    Polished,
    digits_mlp_problem,
    heavy_ball_trajectory,
    hessian_eigenvalues,
    polish,
)
from gpu.fullbatch._rates import LateRates, late_rates

__all__ = [
    "FlatProblem",
    "LateRates",
    "Polished",
    "digits_mlp_problem",
    "heavy_ball_trajectory",
    "hessian_eigenvalues",
    "late_rates",
    "polish",
]
