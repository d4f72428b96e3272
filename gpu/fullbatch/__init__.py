"""Deterministic full-batch problems in float64: heavy-ball trajectories (every iterate, or tracked
coordinates in compiled chunks, full-batch or minibatch), L-BFGS + Newton polish (exact Hessian, or
conjugate gradients on Hessian-vector products), exact Hessians, Lanczos extremes, and the late
per-variable rates towards the polished minimiser."""

from __future__ import annotations

from gpu.fullbatch._lanczos import (
    RitzExtremes,
    hvp_function,
    lanczos_extremes,
    newton_cg_polish,
)
from gpu.fullbatch._lstm import char_lstm_problem
from gpu.fullbatch._problem import (
    FlatProblem,
    Polished,
    digits_mlp_problem,
    heavy_ball_trajectory,
    hessian_eigenvalues,
    polish,
)
from gpu.fullbatch._rates import LateRates, late_rates
from gpu.fullbatch._tracked import heavy_ball_tracked

__all__ = [
    "FlatProblem",
    "LateRates",
    "Polished",
    "RitzExtremes",
    "char_lstm_problem",
    "digits_mlp_problem",
    "heavy_ball_tracked",
    "heavy_ball_trajectory",
    "hessian_eigenvalues",
    "hvp_function",
    "lanczos_extremes",
    "late_rates",
    "newton_cg_polish",
    "polish",
]
