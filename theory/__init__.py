"""Closed forms and symbolic derivations for heavy-ball momentum, YellowFin and MoMo.

Everything here is float64 NumPy/SciPy/SymPy, vectorised over arrays; no JAX, no plotting and no
other package of this project is imported (the simulators must measure what theory predicts, not
re-evaluate it).
"""

from __future__ import annotations

from theory.asynchrony import (
    async_char_poly,
    async_spectral_radius,
    effective_step,
    fixed_delay_limit,
    implicit_momentum,
    mean_stability_limit,
    optimal_async_tuning,
    optimal_explicit_momentum,
    staleness_mean,
    staleness_pmf,
    total_momentum,
)
from theory.curvature import curvature_range, generalized_curvature, robust_on_interval
from theory.heavy_ball import (
    Regime,
    eigenvalues,
    is_stable,
    min_robust_momentum,
    polyak_tuning,
    regime,
    robust_interval,
    spectral_radius,
    tolerated_dynamic_range,
    transition_matrix,
)
from theory.momentum_readings import (
    adam_noise_reading,
    adam_reading,
    averaged_reading,
    derive_averaged_move,
)
from theory.momo_bounds import (
    momo_beta0_bound,
    momo_certificate_slack,
    momo_distance_certificate,
    momo_sqrt_k_bound,
    momo_step_lower_bound,
)
from theory.noise_floor import (
    nqm_floor,
    nqm_spectrum,
    second_moment_operator,
    second_moment_transient,
    stationary_loss,
    stationary_variance,
)
from theory.singlestep import _singlestep_parts as _singlestep_parts  # private: for the CLI
from theory.singlestep import singlestep, singlestep_objective, singlestep_p, singlestep_root
from theory.symbolic import Derivation, SymbolicCheckError, derivations
from theory.transients import chebyshev_bound, error_gain, peak_transient

__all__: list[str] = [
    "Derivation",
    "Regime",
    "SymbolicCheckError",
    "adam_noise_reading",
    "adam_reading",
    "async_char_poly",
    "async_spectral_radius",
    "averaged_reading",
    "chebyshev_bound",
    "curvature_range",
    "derivations",
    "derive_averaged_move",
    "effective_step",
    "eigenvalues",
    "error_gain",
    "fixed_delay_limit",
    "generalized_curvature",
    "implicit_momentum",
    "is_stable",
    "mean_stability_limit",
    "min_robust_momentum",
    "momo_beta0_bound",
    "momo_certificate_slack",
    "momo_distance_certificate",
    "momo_sqrt_k_bound",
    "momo_step_lower_bound",
    "nqm_floor",
    "nqm_spectrum",
    "optimal_async_tuning",
    "optimal_explicit_momentum",
    "peak_transient",
    "polyak_tuning",
    "regime",
    "robust_interval",
    "robust_on_interval",
    "second_moment_operator",
    "second_moment_transient",
    "singlestep",
    "singlestep_objective",
    "singlestep_p",
    "singlestep_root",
    "spectral_radius",
    "staleness_mean",
    "staleness_pmf",
    "stationary_loss",
    "stationary_variance",
    "tolerated_dynamic_range",
    "total_momentum",
    "transition_matrix",
]
