"""Momentum and learning rate that minimise the worst asynchronous mean rate over a spectrum.

The mean dynamics of :mod:`theory.async_mean_dynamics` converge at the largest root modulus of
their characteristic polynomial; these searches minimise its maximum over curvatures in
``[h_min, h_max]``, the question behind Mitliagkas et al. (arXiv 1605.09774, Sec. 5): the optimal
explicit momentum falls as the number of workers ``M`` grows and can become negative.

The searches bound their grids: ``n_h``, ``n_grid``, ``n_alpha`` are single integers up to
``1024``, and ``n_alpha * n_h * n_grid <= 2^22``.
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
    elementwise,
    grid_size,
    ordered,
    positive,
)
from theory.async_mean_dynamics import async_spectral_radius
from theory.async_staleness import workers

__all__ = ["optimal_async_tuning", "optimal_explicit_momentum"]


_MAX_GRID = 1024  # n_h, n_grid, n_alpha: at most 1024^2 companion matrices (75 MB) per grid
_MAX_TUNING_WORK = 1 << 22  # n_alpha * n_h * n_grid of one optimal_async_tuning search


def _shown_count(x: float) -> str:
    return "an integer beyond float64" if np.isinf(x) else f"{x:g}"


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
    m = workers(n_workers)
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
    m = workers(n_workers)
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
