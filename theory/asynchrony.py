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
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar

from theory._validate import (
    FLOAT_MAX,
    FloatArray,
    broadcast,
    count,
    elementwise,
    grid_size,
    integer,
    momentum,
    ordered,
    positive,
)

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


_MAX_GRID = 1024  # n_h, n_grid, n_alpha: at most 1024^2 companion matrices (75 MB) per grid
_MAX_TUNING_WORK = 1 << 22  # n_alpha * n_h * n_grid of one optimal_async_tuning search


def _shown_count(x: float) -> str:
    return "an integer beyond float64" if np.isinf(x) else f"{x:g}"


def _workers(n_workers: ArrayLike) -> FloatArray:
    """``M >= 1``; a Python integer beyond float64 is ``inf`` (the limit, ``q = 1``)."""
    return count("n_workers", n_workers, 1.0)


def staleness_pmf(lag: ArrayLike, n_workers: ArrayLike) -> FloatArray:
    """Probability that an update is ``lag`` steps stale with ``n_workers`` exponential workers.

    ``P(tau = l) = (1 - q) q^l`` with ``q = 1 - 1/M`` (Mitliagkas et al. 2016, Theorem 1; steady
    state, ignoring the start-up phase where every worker first reads ``w_0``).

    Args:
        lag: staleness ``l``, integer ``>= 0``.
        n_workers: number of workers ``M >= 1`` (real values give the continuous extension).

    Returns:
        The probabilities, broadcast over both arguments.

    Example:
        >>> float(staleness_pmf(0, 4))
        0.25
    """
    l = integer("lag", lag, 0)  # float64: exact, no int64 wrap for huge lags
    m = _workers(n_workers)
    l, m = broadcast(("lag", "n_workers"), l, m)
    q = 1.0 - 1.0 / m
    return (1.0 - q) * q**l


def staleness_mean(n_workers: ArrayLike) -> FloatArray:
    """Mean staleness ``E tau = q / (1 - q) = M - 1`` of the geometric law.

    Example:
        >>> float(staleness_mean(8))
        7.0
    """
    return _workers(n_workers) - 1.0


def implicit_momentum(n_workers: ArrayLike) -> FloatArray:
    """Implicit momentum ``1 - 1/M`` of ``M`` asynchronous workers (Mitliagkas et al., Thm 2).

    Example:
        >>> float(implicit_momentum(4))
        0.75
    """
    return 1.0 - 1.0 / _workers(n_workers)


def effective_step(alpha: ArrayLike, n_workers: ArrayLike) -> FloatArray:
    """Effective learning rate ``alpha / M`` of the expected asynchronous update.

    Example:
        >>> float(effective_step(0.4, 4))
        0.1
    """
    alpha_, m = broadcast(("alpha", "n_workers"), positive("alpha", alpha), _workers(n_workers))
    return alpha_ / m


def total_momentum(mu_l: ArrayLike, n_workers: ArrayLike) -> FloatArray:
    """First-order total momentum ``1 - (1 - mu_l)/M = mu_l + q - mu_l q``.

    It is the coefficient of ``E Delta_t`` in the third-order mean recursion once the
    ``mu_l q E Delta_{t-1}`` term is absorbed; only an approximation of the true dynamics (their
    roots are given by :func:`async_char_poly`).

    Args:
        mu_l: explicit (algorithmic) momentum in ``(-1, 1)``.
        n_workers: number of workers ``M >= 1``.

    Example:
        >>> float(total_momentum(0.5, 2))
        0.75
    """
    mu, m = broadcast(("mu_l", "n_workers"), momentum("mu_l", mu_l), _workers(n_workers))
    return 1.0 - (1.0 - mu) / m


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
        return 2.0 * (2.0 * _workers(n_workers) - 1.0)


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


def _max_radius_over_spectrum(
    alpha: float, mu_l: FloatArray, hs: FloatArray, n_workers: float
) -> FloatArray:
    return async_spectral_radius(alpha, mu_l[..., None], hs, n_workers).max(axis=-1)


def _explicit_momentum_one(
    a: float, lo: float, hi: float, m: float, n_h: int, n_grid: int
) -> tuple[float, float]:
    hs = np.geomspace(lo, hi, n_h) if hi > lo else np.array([lo])
    edge = 1.0 - 1e-9
    grid = np.linspace(-edge, edge, n_grid)
    vals = _max_radius_over_spectrum(a, grid, hs, m)
    i = int(np.argmin(vals))
    left, right = grid[max(i - 1, 0)], grid[min(i + 1, n_grid - 1)]
    res = minimize_scalar(
        lambda x: float(_max_radius_over_spectrum(a, np.array(x), hs, m)),
        bounds=(left, right),
        method="bounded",
        options={"xatol": 1e-12},
    )
    best_mu, best_val = (float(res.x), float(res.fun)) if res.fun <= vals[i] else (grid[i], vals[i])
    return float(best_mu), float(best_val)


def optimal_explicit_momentum(
    alpha: ArrayLike,
    h_min: ArrayLike,
    h_max: ArrayLike,
    n_workers: ArrayLike,
    *,
    n_h: int = 65,
    n_grid: int = 201,
) -> tuple[Any, Any]:
    """Explicit momentum minimising the worst mean rate over the spectrum ``[h_min, h_max]``.

    Solves ``min over mu_l in (-1, 1) of max over h of async_spectral_radius(alpha, mu_l, h, M)``,
    the question behind Mitliagkas et al. (2016), Sec. 5 (the optimal explicit momentum falls as
    ``M`` grows and can become negative). The maximum over ``h`` is taken on ``n_h`` geometrically
    spaced curvatures including both ends; the outer problem is non-smooth, so a grid of ``n_grid``
    momenta locates the basin and a bounded Brent search refines it within the neighbouring cells.

    Broadcasting: ``alpha``, ``h_min``, ``h_max`` and ``n_workers`` broadcast together; each
    element is one independent search (a loop over the broadcast shape, like ``np.vectorize``).
    ``n_h`` and ``n_grid`` are scalars.

    Args:
        alpha: learning rate ``> 0``.
        h_min: smallest curvature ``> 0``.
        h_max: largest curvature ``>= h_min``.
        n_workers: number of workers ``M >= 1``.
        n_h: curvatures sampled in ``[h_min, h_max]``, a single integer in ``[2, 1024]``.
        n_grid: momenta in the initial grid, a single integer in ``[3, 1024]``.

    Returns:
        ``(mu_l, rate)``: the optimal explicit momentum and the worst-case spectral radius there;
        Python floats when every array argument is a scalar, else float64 arrays of the broadcast
        shape.

    Example:
        >>> mu, rate = optimal_explicit_momentum(4 / 121, 1.0, 100.0, 1)
        >>> round(mu, 3), round(rate, 3)
        (0.669, 0.818)
        >>> mu, rate = optimal_explicit_momentum(4 / 121, 1.0, 100.0, [1, 4])
        >>> mu.shape
        (2,)
    """
    a = positive("alpha", alpha)
    lo = positive("h_min", h_min)
    hi = positive("h_max", h_max)
    m = _workers(n_workers)
    names = ("alpha", "h_min", "h_max", "n_workers")
    a, lo, hi, m = broadcast(names, a, lo, hi, m)
    ordered("h_min", lo, "h_max", hi)
    n_h_ = grid_size("n_h", n_h, 2, _MAX_GRID)
    n_grid_ = grid_size("n_grid", n_grid, 3, _MAX_GRID)
    return elementwise(
        lambda *args: _explicit_momentum_one(*args, n_h_, n_grid_),
        names,
        (a, lo, hi, m),
        (float, float),
    )


def _async_tuning_one(
    lo: float, hi: float, m: float, n_alpha: int, n_h: int, n_grid: int
) -> tuple[float, float, float]:
    def inner(log_alpha: float) -> tuple[float, float]:
        return _explicit_momentum_one(np.exp(log_alpha), lo, hi, m, n_h, n_grid)

    grid = np.linspace(np.log(0.01) - np.log(hi), np.log(4.0) + np.log(m) - np.log(hi), n_alpha)
    vals = np.array([inner(g)[1] for g in grid])
    i = int(np.argmin(vals))
    res = minimize_scalar(
        lambda g: inner(g)[1],
        bounds=(grid[max(i - 1, 0)], grid[min(i + 1, n_alpha - 1)]),
        method="bounded",
        options={"xatol": 1e-6},
    )
    log_alpha = float(res.x) if res.fun <= vals[i] else float(grid[i])
    mu, rate = inner(log_alpha)
    return float(np.exp(log_alpha)), mu, rate


def optimal_async_tuning(
    h_min: ArrayLike,
    h_max: ArrayLike,
    n_workers: ArrayLike,
    *,
    n_alpha: int = 41,
    n_h: int = 33,
    n_grid: int = 101,
) -> tuple[Any, Any, Any]:
    """Jointly optimal ``(alpha, mu_l)`` for the asynchronous mean dynamics on ``[h_min, h_max]``.

    Minimises the worst spectral radius of :func:`async_char_poly` over the spectrum. The learning
    rate is searched on a log grid of ``n_alpha`` points in ``[0.01/h_max, 4M/h_max]`` (the upper
    end exceeds the mean-stability limit ``2(2M-1)/h_max``), then refined by a bounded Brent search
    between the neighbouring grid points; the inner problem is :func:`optimal_explicit_momentum`.
    To first order (total momentum) the answer is Polyak's tuning with ``alpha = M alpha*`` and
    ``mu_l = 1 - M (1 - mu*)``; the exact optimum follows the same trend: ``mu_l`` falls as ``M``
    grows and turns negative (Mitliagkas et al. 2016, Sec. 5).

    Broadcasting: ``h_min``, ``h_max`` and ``n_workers`` broadcast together, one independent
    search per element (a loop, like ``np.vectorize``); the grid sizes are scalars.

    Args:
        h_min: smallest curvature ``> 0``.
        h_max: largest curvature ``>= h_min``.
        n_workers: number of workers ``M >= 1``.
        n_alpha: learning rates in the initial grid, a single integer in ``[3, 1024]``.
        n_h: curvatures sampled in the spectrum, a single integer in ``[2, 1024]``.
        n_grid: momenta in the inner grid, a single integer in ``[3, 1024]``; the product
            ``n_alpha * n_h * n_grid`` is at most ``2^22``.

    Raises:
        ValueError: naming ``n_workers`` and ``h_max`` when the end ``4 M / h_max`` of the
            learning-rate search lies beyond float64, and ``h_max`` when ``0.01 / h_max`` does.

    Returns:
        ``(alpha, mu_l, rate)``: Python floats when every array argument is a scalar, else
        float64 arrays of the broadcast shape.

    Example:
        >>> alpha, mu, rate = optimal_async_tuning(1.0, 100.0, 1)
        >>> round(alpha, 3), round(mu, 2), round(rate, 2)
        (0.033, 0.67, 0.82)
    """
    lo = positive("h_min", h_min)
    hi = positive("h_max", h_max)
    m = _workers(n_workers)
    names = ("h_min", "h_max", "n_workers")
    lo, hi, m = broadcast(names, lo, hi, m)
    ordered("h_min", lo, "h_max", hi)
    n_alpha_ = grid_size("n_alpha", n_alpha, 3, _MAX_GRID)
    n_h_ = grid_size("n_h", n_h, 2, _MAX_GRID)
    n_grid_ = grid_size("n_grid", n_grid, 3, _MAX_GRID)
    if n_alpha_ * n_h_ * n_grid_ > _MAX_TUNING_WORK:
        raise ValueError(
            f"n_alpha * n_h * n_grid must be at most {_MAX_TUNING_WORK} "
            f"(got {n_alpha_} * {n_h_} * {n_grid_} = {n_alpha_ * n_h_ * n_grid_})"
        )
    with np.errstate(divide="ignore"):
        top = np.log(4.0) + np.log(m) - np.log(hi)  # log of the search's largest alpha
    if np.any(np.log(0.01) - np.log(hi) > np.log(FLOAT_MAX)):
        bad = float(hi[np.log(0.01) - np.log(hi) > np.log(FLOAT_MAX)].flat[0])
        raise ValueError(
            f"h_max must be at least {0.01 / FLOAT_MAX:.4g} so that the learning-rate search "
            f"[0.01 / h_max, 4 n_workers / h_max] lies in float64 (got {bad:g})"
        )
    if np.any(top > np.log(FLOAT_MAX)):
        i = np.flatnonzero(np.ravel(top > np.log(FLOAT_MAX)))[0]
        raise ValueError(
            f"n_workers / h_max must be at most {FLOAT_MAX / 4:.4g} so that the learning-rate "
            "search [0.01 / h_max, 4 n_workers / h_max] lies in float64 "
            f"(got n_workers={_shown_count(float(np.ravel(m)[i]))}, "
            f"h_max={float(np.ravel(hi)[i]):g})"
        )
    return elementwise(
        lambda *args: _async_tuning_one(*args, n_alpha_, n_h_, n_grid_),
        names,
        (lo, hi, m),
        (float, float, float),
    )
