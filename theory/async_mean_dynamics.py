"""Mean dynamics of asynchronous momentum SGD on a quadratic: polynomial, rate, stability limits.

With explicit momentum ``mu_l`` at the parameter server (Mitliagkas et al., arXiv 1605.09774,
Sec. 4), ``Delta_{t+1} = mu_l Delta_t - alpha grad f(w_{t - tau_t})`` with geometric staleness
``P(tau = l) = (1 - q) q^l``, ``q = 1 - 1/M``. On a quadratic of curvature ``h`` the expected
gradient ``G_t = sum_l (1-q) q^l h x_{t-l}`` obeys ``G_t = (1-q) h x_t + q G_{t-1}``; eliminating
``G`` gives the third-order mean recursion

    E Delta_{t+1} = (mu_l + q) E Delta_t - mu_l q E Delta_{t-1} - a E x_t,   a = alpha (1 - q) h,

with characteristic polynomial

    z^3 - (1 + mu_l + q - a) z^2 + (mu_l + q + mu_l q) z - mu_l q.

The "total momentum" ``1 - (1 - mu_l)/M`` (the coefficient of ``Delta_t`` after dropping the
``Delta_{t-1}`` term, :func:`theory.async_staleness.total_momentum`) is only a first-order
approximation of these dynamics. The fixed (round-robin) delay limit is here too.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from theory._validate import FloatArray, broadcast, integer, momentum, positive
from theory.async_staleness import implicit_momentum, workers

__all__ = [
    "async_char_poly",
    "async_spectral_radius",
    "fixed_delay_limit",
    "mean_stability_limit",
]


def async_char_poly(
    alpha: ArrayLike, mu_l: ArrayLike, h: ArrayLike, n_workers: ArrayLike
) -> FloatArray:
    """Coefficients of the characteristic polynomial of the asynchronous mean dynamics.

    ``z^3 - (1 + mu_l + q - a) z^2 + (mu_l + q + mu_l q) z - mu_l q`` with ``q = 1 - 1/M`` and
    ``a = alpha (1 - q) h = alpha h / M`` (Mitliagkas et al. 2016, Sec. 4, mean dynamics with
    explicit momentum; derived in :mod:`theory.symbolic`, entry ``"async_char_poly"``).

    Args:
        alpha: learning rate ``> 0``.
        mu_l: explicit momentum in ``(-1, 1)``.
        h: curvature ``> 0``.
        n_workers: number of workers ``M >= 1``.

    Returns:
        Array of shape ``(..., 4)``, highest power first (``numpy.roots`` order).

    Example:
        >>> async_char_poly(0.5, 0.5, 1.0, 2).tolist()
        [1.0, -1.75, 1.25, -0.25]
    """
    a_ = positive("alpha", alpha)
    mu = momentum("mu_l", mu_l)
    h_ = positive("h", h)
    q = implicit_momentum(n_workers)
    a_, mu, h_, q = broadcast(("alpha", "mu_l", "h", "n_workers"), a_, mu, h_, q)
    with np.errstate(over="ignore"):  # alpha h beyond float64: inf, a divergent point
        a = a_ * (1.0 - q) * h_
    return np.stack([np.ones_like(a), -(1.0 + mu + q - a), mu + q + mu * q, -mu * q], axis=-1)


def _companion_roots(coeffs: FloatArray) -> np.ndarray:
    """Roots of monic polynomials, coefficients ``(..., n+1)``: eigenvalues of the companions."""
    n = coeffs.shape[-1] - 1
    comp = np.zeros((*coeffs.shape[:-1], n, n))
    comp[..., 0, :] = -coeffs[..., 1:] / coeffs[..., :1]
    idx = np.arange(n - 1)
    comp[..., idx + 1, idx] = 1.0
    return np.linalg.eigvals(comp)


def async_spectral_radius(
    alpha: ArrayLike, mu_l: ArrayLike, h: ArrayLike, n_workers: ArrayLike
) -> FloatArray:
    """Largest root modulus of :func:`async_char_poly`: the asymptotic rate of the mean error.

    Vectorised with the eigenvalues of the ``3 x 3`` companion matrices. The mean dynamics converge
    iff the result is ``< 1``. With ``M = 1`` it reduces to heavy ball with ``(alpha, mu_l)``.
    Where ``alpha h / M`` lies beyond float64 the polynomial has a root beyond it: ``inf``.

    Example:
        >>> round(float(async_spectral_radius(1.0, 0.25, 1.0, 1)), 12)
        0.5
    """
    coeffs = async_char_poly(alpha, mu_l, h, n_workers)
    finite = np.all(np.isfinite(coeffs), axis=-1)
    safe = np.where(finite[..., None], coeffs, np.array([1.0, 0.0, 0.0, 0.0]))
    radius = np.abs(_companion_roots(safe)).max(axis=-1)
    return np.where(finite, radius, np.inf)  # alpha h / M beyond float64: a root beyond it too


def mean_stability_limit(n_workers: ArrayLike) -> FloatArray:
    """Supremum of ``alpha * h`` for which the mean dynamics with ``mu_l = 0`` converge.

    With ``mu_l = 0`` the polynomial is ``z (z^2 - (1 + q - a) z + q)``: heavy ball with momentum
    ``q`` and step ``a = alpha h / M``, stable iff ``a < 2 (1 + q)``, i.e. ``alpha h < 2 (2M - 1)``
    (Mitliagkas et al. 2016). Second moments can diverge earlier (see :mod:`theory.noise_floor`).

    Example:
        >>> float(mean_stability_limit(1))
        2.0
    """
    with np.errstate(over="ignore"):  # beyond float64 (M above ~4.5e307): inf
        return 2.0 * (2.0 * workers(n_workers) - 1.0)


def fixed_delay_limit(tau: ArrayLike) -> FloatArray:
    """Supremum of ``a = alpha h`` for which ``x_{t+1} = x_t - a x_{t - tau}`` converges.

    The roots of ``z^{tau+1} - z^tau + a`` lie inside the unit circle iff
    ``0 < a < 2 sin(pi / (2 (2 tau + 1)))``: at the limit a root ``z = e^{i theta}`` crosses the
    circle with ``theta = pi / (2 tau + 1)`` and ``a = |z - 1| = 2 sin(theta / 2)`` (round-robin
    delay; see the asynchrony reference, fixed delay). ``tau = 0`` gives gradient descent's
    ``a < 2``. Evaluated as ``2 sin((pi/4) / (tau + 1/2))``, which cannot overflow for any float
    ``tau``.

    Args:
        tau: fixed delay, integer ``>= 0``.

    Example:
        >>> round(float(fixed_delay_limit(1)), 12)
        1.0
    """
    t = integer("tau", tau, 0)  # float64: exact, no int64 wrap for huge delays
    return 2.0 * np.sin(0.25 * np.pi / (t + 0.5))
