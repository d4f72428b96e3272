"""Generalised curvature of a 1-D function and the robust region beyond quadratics.

For a 1-D function with minimiser ``x*`` the generalised curvature is ``h(x) = f'(x) / (x - x*)``,
so the gradient step reads ``f'(x_t) = h(x_t) (x_t - x*)`` and heavy ball is ``e_{t+1} = A_t e_t``
with ``A_t`` the quadratic operator at curvature ``h(x_t)``. If ``alpha h(x)`` stays in the robust
interval ``[(1 - sqrt(mu))^2, (1 + sqrt(mu))^2]`` on the region visited, every ``A_t`` has spectral
radius ``sqrt(mu)``. Zhang & Mitliagkas (arXiv 1706.03471), Sec. 2.3, Eq. (9)-(10). This does not
guarantee the rate (spectral radius is not sub-multiplicative); it is what YellowFin relies on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize_scalar

from theory import _validate as v
from theory.heavy_ball import _edges

FloatArray = NDArray[np.float64]
Derivative = Callable[[FloatArray], ArrayLike]

__all__ = ["curvature_range", "generalized_curvature", "robust_on_interval"]

_TIE_ULPS = 8.0
FLOAT_MAX = float(np.finfo(np.float64).max)
_MAX_N = 10**6  # grid size of the curvature search: at most 8 MB per grid array


def _call(fprime: Derivative, x: FloatArray) -> FloatArray:
    """Evaluate ``fprime`` elementwise; scalar-only callables are applied point by point."""
    if not callable(fprime):
        raise ValueError("fprime must be a callable returning f'(x)")
    try:
        out = np.asarray(fprime(x), dtype=np.float64)
        if out.shape != x.shape:
            raise TypeError
    except (TypeError, ValueError):
        out = np.array([float(fprime(float(xi))) for xi in x.ravel()]).reshape(x.shape)
    if not np.all(np.isfinite(out)):
        raise ValueError("fprime must return finite values (got NaN or inf)")
    return out


def generalized_curvature(fprime: Derivative, x_star: float, x: ArrayLike) -> FloatArray:
    """Generalised curvature ``h(x) = f'(x) / (x - x*)``.

    At ``x = x*`` the value is the limit ``f''(x*)``, estimated by a central difference of ``f'``
    with step ``eps^(1/3) max(1, |x*|)``. Zhang & Mitliagkas (arXiv 1706.03471), Eq. (9).

    Args:
        fprime: derivative ``f'`` of the function (array-aware or scalar callable).
        x_star: minimiser of ``f`` (finite).
        x: evaluation points (finite).

    Returns:
        Float64 array shaped like ``x``.

    Example:
        >>> generalized_curvature(lambda x: x + x**3, 0.0, [1.0, 2.0]).tolist()
        [2.0, 5.0]
    """
    x_star = float(v.as_finite("x_star", x_star))
    x = v.as_finite("x", x)
    flat = np.atleast_1d(x).astype(np.float64)
    at_min = flat == x_star
    safe = np.where(at_min, x_star + 1.0, flat)
    with np.errstate(over="ignore"):  # x - x* beyond float64: halve both (exact) instead
        dx = safe - x_star
        h = np.where(
            np.isinf(dx),
            (0.5 * _call(fprime, safe)) / (0.5 * safe - 0.5 * x_star),
            _call(fprime, safe) / np.where(np.isinf(dx), 1.0, dx),
        )
    if np.any(at_min):
        step = np.cbrt(np.finfo(np.float64).eps) * max(1.0, abs(x_star))
        fp = _call(fprime, np.array([x_star + step, x_star - step]))
        h = np.where(at_min, (fp[0] - fp[1]) / (2.0 * step), h)
    return h.reshape(x.shape)


def _check_ends(lo: FloatArray, hi: FloatArray) -> None:
    """Check ``lo < hi`` elementwise (broadcast, finite arrays); the message names ``lo``.

    Raises:
        ValueError: ``"lo must lie in (-inf, hi) (got lo=..., hi=...)"`` for the first pair with
            ``lo >= hi``.
    """
    bad = ~(lo < hi)
    if np.any(bad):
        lo_bad, hi_bad = float(lo[bad].flat[0]), float(hi[bad].flat[0])
        raise ValueError(f"lo must lie in (-inf, hi) (got lo={lo_bad:g}, hi={hi_bad:g})")


def _refine(h: Callable[[float], float], grid: FloatArray, i: int, sign: float) -> float:
    """Polish an extremum of ``sign * h`` found at grid index ``i`` within its neighbour cells."""
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    if hi <= lo:
        return sign * h(float(grid[i]))
    # ends whose sum leaves float64 (|x| near 1.8e308): search over x / 2 (halving is exact)
    scale = 1.0 if max(abs(lo), abs(hi)) < 0.5 * FLOAT_MAX else 2.0
    res = minimize_scalar(
        lambda s: sign * h(scale * s),
        bounds=(lo / scale, hi / scale),
        method="bounded",
        options={"xatol": 1e-12 * max(1.0, abs(hi)) / scale},
    )
    return float(res.fun)


def _range_one(
    fprime: Derivative, x_star: float, lo: float, hi: float, n: int
) -> tuple[float, float]:
    with np.errstate(over="ignore"):
        wide = not np.isfinite(hi - lo)
    if wide:  # hi - lo beyond float64: weights instead of a step, clipped against rounding
        s = np.linspace(0.0, 1.0, n)
        grid = np.clip(lo * (1.0 - s) + hi * s, lo, hi)
    else:
        grid = np.linspace(lo, hi, n)
    if lo < x_star < hi:
        grid = np.unique(np.append(grid, x_star))
    values = generalized_curvature(fprime, x_star, grid)

    def h(s: float) -> float:
        return float(generalized_curvature(fprime, x_star, s))

    h_min = min(float(values.min()), _refine(h, grid, int(np.argmin(values)), 1.0))
    h_max = max(float(values.max()), -_refine(h, grid, int(np.argmax(values)), -1.0))
    return h_min, h_max


def curvature_range(
    fprime: Derivative,
    x_star: ArrayLike,
    lo: ArrayLike,
    hi: ArrayLike,
    *,
    n: int = 2001,
) -> tuple[Any, Any]:
    """Range ``(h_min, h_max)`` of the generalised curvature over ``[lo, hi]``.

    A grid of ``n`` points (plus ``x*`` when inside) locates the extrema, which are then polished by
    bounded Brent minimisation between the neighbouring grid points. Extrema narrower than the grid
    spacing can be missed; raise ``n`` for rough functions.

    Broadcasting: ``x_star``, ``lo`` and ``hi`` broadcast together (one search per element, a
    loop like ``np.vectorize``); the one callable ``fprime`` and the grid size ``n`` are shared
    by all elements, since broadcasting over functions has no meaning.

    Args:
        fprime: derivative ``f'`` of the function.
        x_star: minimiser of ``f`` (finite).
        lo: left end of the interval (finite).
        hi: right end, ``> lo`` (finite).
        n: grid size, a single integer in ``[2, 10^6]``.

    Returns:
        ``(h_min, h_max)``: Python floats when ``x_star``, ``lo`` and ``hi`` are scalars, else
        float64 arrays of their broadcast shape.

    Example:
        >>> [round(x, 9) for x in curvature_range(lambda x: x + x**3, 0.0, -1.0, 2.0)]
        [1.0, 5.0]
        >>> curvature_range(lambda x: x + x**3, 0.0, 0.0, [1.0, 2.0])[1].round(9).tolist()
        [2.0, 5.0]
    """
    names = ("x_star", "lo", "hi")
    x_star_, lo_, hi_ = v.broadcast(
        names, v.as_finite("x_star", x_star), v.as_finite("lo", lo), v.as_finite("hi", hi)
    )
    _check_ends(lo_, hi_)
    n_ = v.grid_size("n", n, 2, _MAX_N)
    return v.elementwise(
        lambda xs, a, b: _range_one(fprime, xs, a, b, n_),
        names,
        (x_star_, lo_, hi_),
        (float, float),
    )


def _robust_one(
    alpha: float, mu: float, fprime: Derivative, x_star: float, lo: float, hi: float, n: int
) -> tuple[bool]:
    h_min, h_max = _range_one(fprime, x_star, lo, hi, n)
    edge_lo, edge_hi = (float(e) for e in _edges(np.array(mu)))
    slack = _TIE_ULPS * np.finfo(np.float64).eps  # ties such as Polyak's tuning count as robust
    inside = edge_lo * (1 - slack) <= alpha * h_min and alpha * h_max <= edge_hi * (1 + slack)
    return (bool(inside),)


def robust_on_interval(
    alpha: ArrayLike,
    mu: ArrayLike,
    fprime: Derivative,
    x_star: ArrayLike,
    lo: ArrayLike,
    hi: ArrayLike,
    *,
    n: int = 2001,
) -> Any:
    """Whether ``(1 - sqrt(mu))^2 <= alpha h(x) <= (1 + sqrt(mu))^2`` for all ``x`` in ``[lo, hi]``.

    Uses :func:`curvature_range`; the comparison allows 8 ulps so that exact ties (the extreme
    curvatures on the region edges, as with Polyak's tuning) count as robust. A non-positive
    curvature anywhere gives ``False``.
    Zhang & Mitliagkas (arXiv 1706.03471), Eq. (10).

    Broadcasting: ``alpha``, ``mu``, ``x_star``, ``lo`` and ``hi`` broadcast together (a loop over
    the broadcast shape, one curvature search per element); ``fprime`` and ``n`` are shared.

    Args:
        alpha: learning rate, ``> 0``.
        mu: momentum in ``[0, 1)``.
        fprime: derivative ``f'`` of the function.
        x_star: minimiser of ``f``.
        lo: left end of the interval.
        hi: right end, ``> lo``.
        n: grid size of :func:`curvature_range` (a single integer in ``[2, 10^6]``).

    Returns:
        A Python ``bool`` when every array argument is a scalar, else a boolean array of the
        broadcast shape.

    Example:
        >>> robust_on_interval(0.3, 0.5, lambda x: x + x**3, 0.0, -1.0, 2.0)
        True
        >>> robust_on_interval([0.3, 0.7], 0.5, lambda x: x + x**3, 0.0, -1.0, 2.0).tolist()
        [True, False]
    """
    alpha_ = v.positive("alpha", alpha)
    mu_ = v.in_range("mu", mu, 0.0, 1.0, hi_open=True)
    names = ("alpha", "mu", "x_star", "lo", "hi")
    arrays = v.broadcast(
        names,
        alpha_,
        mu_,
        v.as_finite("x_star", x_star),
        v.as_finite("lo", lo),
        v.as_finite("hi", hi),
    )
    _check_ends(arrays[3], arrays[4])
    n_ = v.grid_size("n", n, 2, _MAX_N)
    (out,) = v.elementwise(
        lambda a, m, xs, l, h: _robust_one(a, m, fprime, xs, l, h, n_), names, arrays, (bool,)
    )
    return out
