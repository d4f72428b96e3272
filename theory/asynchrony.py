"""Asynchrony begets momentum: staleness law, implicit momentum and the mean dynamics.

Model (Mitliagkas, Zhang, Hadjis, Ré, "Asynchrony begets momentum, with an application to deep
learning", arXiv 1605.09774, Sec. 3): ``M`` workers with i.i.d. exponential compute times write
``w_{t+1} = w_t - alpha * grad f(w_{t - tau_t})``. Each update comes from a uniformly chosen worker
and the staleness is geometric, ``P(tau = l) = (1 - q) q^l`` with ``q = 1 - 1/M`` (Theorem 1).
Taking expectations gives momentum SGD with implicit momentum ``1 - 1/M`` and step ``alpha / M``.

With explicit momentum ``mu_l`` at the parameter server,
``Delta_{t+1} = mu_l Delta_t - alpha grad f(w_{t - tau_t})``. On a quadratic of curvature ``h`` the
expected gradient ``G_t = sum_l (1-q) q^l h x_{t-l}`` obeys ``G_t = (1-q) h x_t + q G_{t-1}``;
eliminating ``G`` gives the third-order mean recursion

    E Delta_{t+1} = (mu_l + q) E Delta_t - mu_l q E Delta_{t-1} - a E x_t,   a = alpha (1 - q) h,

with characteristic polynomial

    z^3 - (1 + mu_l + q - a) z^2 + (mu_l + q + mu_l q) z - mu_l q.

The "total momentum" ``1 - (1 - mu_l)/M`` (the coefficient of ``Delta_t`` after dropping the
``Delta_{t-1}`` term) is only a first-order approximation of these dynamics.

Counts: ``lag``, ``tau`` and ``n_workers`` may be Python integers of any size; one beyond the
float64 range gives the limit of the formula (e.g. ``staleness_pmf(10**400, 8) == 0.0``,
``implicit_momentum(10**400) == 1.0``). The searches bound their grids: ``n_h``, ``n_grid``,
``n_alpha`` are single integers up to ``1024``, and ``n_alpha * n_h * n_grid <= 2^22``.

This module gathers the asynchrony closed forms from three parts:

- :mod:`theory.async_staleness`: the staleness law, implicit momentum, effective step and the
  first-order total momentum;
- :mod:`theory.async_mean_dynamics`: the third-order mean recursion's characteristic polynomial,
  its spectral radius and the stability limits (mean dynamics and fixed delay);
- :mod:`theory.async_tuning`: the explicit momentum and learning rate minimising the worst mean
  rate over a spectrum.
"""

from __future__ import annotations

from theory.async_mean_dynamics import (
    async_char_poly,
    async_spectral_radius,
    fixed_delay_limit,
    mean_stability_limit,
)
from theory.async_staleness import (
    effective_step,
    implicit_momentum,
    staleness_mean,
    staleness_pmf,
    total_momentum,
)
from theory.async_tuning import optimal_async_tuning, optimal_explicit_momentum

__all__ = [
    "async_char_poly",
    "async_spectral_radius",
    "effective_step",
    "fixed_delay_limit",
    "implicit_momentum",
    "mean_stability_limit",
    "optimal_async_tuning",
    "optimal_explicit_momentum",
    "staleness_mean",
    "staleness_pmf",
    "total_momentum",
]
