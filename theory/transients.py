"""Finite-step behaviour of heavy ball: exact error gains, the Chebyshev bound, the peak transient.

On one curvature direction the error obeys ``e_{t+1} = b e_t - mu e_{t-1}`` with
``b = 1 + mu - alpha h``. With the roots ``z_1, z_2`` of ``z^2 - b z + mu`` and
``U_k = (z_1^{k+1} - z_2^{k+1}) / (z_1 - z_2)`` (``U_{-1} = 0``, ``U_0 = 1``; ``(k+1) z^k`` for a
double root) the closed form for powers of a 2x2 matrix gives
``A^t = [[U_t, -mu U_{t-1}], [U_{t-1}, -mu U_{t-2}]]``, hence, for a start ``e_0 = 1``,
``e_{-1} = c``:

    e_t = U_t - mu c U_{t-1}.

Starts: *zero velocity* ``x_1 = x_0 - alpha f'(x_0)`` is ``c = 1``; the *matched* (Chebyshev) start
``x_1 = x_0 - alpha / (1 + mu) f'(x_0)`` is ``c = 1 - alpha h / (1 + mu)`` (the virtual ``x_{-1}``
that produces that ``x_1``). Pedregosa et al., "A Hitchhiker's guide to momentum" (2023), Sec. 2-3.

Numerics (no cancellation near the double root): with ``b`` replaced by ``|b|`` (``U_k`` picks up
``sign(b)^k``), complex roots use ``U_k = r^k sin((k+1) theta) / sin(theta)`` with
``theta = atan2(sqrt(-D), |b|)``; real roots use ``U_k = z_1^k (1 - r^{k+1}) / (1 - r)`` with
``r = z_2 / z_1``, ``1 - r = sqrt(D) / z_1`` and ``1 - r^{k+1} = -expm1((k+1) log1p(-(1 - r)))``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from theory import _validate as v
from theory.heavy_ball import _discriminant, _edges, spectral_radius

FloatArray = NDArray[np.float64]
Start = Literal["zero_velocity", "matched"]

__all__ = ["chebyshev_bound", "error_gain", "peak_transient"]

_STARTS = ("zero_velocity", "matched")
_T_CAP = 1 << 22  # longest horizon the default search for the peak will scan
_CHUNK = 2048


def _start_c(start: str, a: FloatArray, mu: FloatArray) -> FloatArray:
    if start not in _STARTS:
        raise ValueError(f"start must be one of {', '.join(_STARTS)} (got {start!r})")
    if start == "zero_velocity":
        return np.ones_like(a)
    return 1.0 - a / (1.0 + mu)


def _gain(a: FloatArray, mu: FloatArray, c: FloatArray, t: NDArray[np.generic]) -> FloatArray:
    """``|e_t|`` for broadcastable ``a = alpha h``, ``mu`` in (-1, 1), start ``c``, ``t >= 0``.

    ``t`` holds integer values (any dtype); it is used as float64, so horizons beyond ``2^63``
    are exact too.
    """
    b, d = _discriminant(a, mu)
    a, mu, c, t, b, d = np.broadcast_arrays(a, mu, c, t, b, d)
    sigma = np.where(b >= 0.0, 1.0, -1.0)
    bb = np.abs(b)
    k = t.astype(np.float64)  # U_t and U_{t-1} are needed; factor z^(t-1) out of both
    with np.errstate(all="ignore"):
        # complex roots: r = sqrt(mu), U_k = r^k sin((k+1) theta) / sin(theta)
        r = np.sqrt(np.maximum(mu, 0.0))
        theta = np.arctan2(np.sqrt(np.maximum(-d, 0.0)), bb)
        sin_theta = np.where(d < 0.0, np.sin(theta), 1.0)
        w_t = np.sin((k + 1.0) * theta) / sin_theta
        w_tm1 = np.sin(k * theta) / sin_theta
        gain_c = r ** (k - 1.0) * np.abs(r * w_t - sigma * mu * c * w_tm1)

        # real roots: z1 >= |z2|, U_k = z1^k S_k, S_k = (1 - r^{k+1}) / (1 - r)
        sq = np.sqrt(np.maximum(d, 0.0))
        z1 = 0.5 * (bb + sq)
        zero = z1 == 0.0
        z1s = np.where(zero, 1.0, z1)
        delta = sq / z1s  # 1 - r
        ratio = mu / z1s**2  # r = z2 / z1

        def s_k(kk: FloatArray) -> FloatArray:
            pos = -np.expm1(kk * np.log1p(-delta)) / np.where(delta > 0.0, delta, 1.0)
            pos = np.where(delta > 0.0, pos, kk)
            neg = (1.0 - ratio**kk) / (1.0 - ratio)
            out = np.where(ratio >= 0.0, pos, neg)
            return np.where(kk == 0.0, 0.0, out)

        s_t = np.where(zero, 1.0, s_k(k + 1.0))
        s_tm1 = np.where(zero, 1.0, s_k(k))
        gain_r = z1 ** (k - 1.0) * np.abs(z1 * s_t - sigma * mu * c * s_tm1)
        gain_r = np.where(zero & (t >= 1), np.where(t == 1, np.abs(b - mu * c), 0.0), gain_r)

    gain = np.where(d < 0.0, gain_c, gain_r)
    return np.where(t == 0, 1.0, gain)


def error_gain(
    alpha: ArrayLike,
    mu: ArrayLike,
    h: ArrayLike,
    t: ArrayLike,
    start: Start = "zero_velocity",
) -> FloatArray:
    """Exact finite-step error gain ``|x_t - x*| / |x_0 - x*|`` of heavy ball on one direction.

    ``e_t = U_t - mu c U_{t-1}`` from the closed form of 2x2 matrix powers (module docstring),
    with ``c = 1`` (zero-velocity start) or ``c = 1 - alpha h / (1 + mu)`` (matched start).

    Args:
        alpha: learning rate, ``> 0``.
        mu: momentum in ``(-1, 1)``.
        h: curvature, ``> 0``.
        t: number of steps, integers ``>= 0``.
        start: ``"zero_velocity"`` or ``"matched"``.

    Returns:
        Float64 array of the broadcast shape.

    Example:
        >>> round(float(error_gain(0.5, 0.0, 1.0, 3)), 12)  # gradient descent: (1 - 0.5)^3
        0.125
    """
    alpha = v.positive("alpha", alpha)
    mu = v.momentum("mu", mu)
    h = v.positive("h", h)
    t = v.integer("t", t)
    alpha, mu, h, t = v.broadcast(("alpha", "mu", "h", "t"), alpha, mu, h, t)
    with np.errstate(over="ignore"):
        a = alpha * h
    return _gain(a, mu, _start_c(start, a, mu), t)


def chebyshev_bound(mu: ArrayLike, t: ArrayLike) -> FloatArray:
    """Bound on the matched-start gain over the robust region: ``sqrt(mu)^t (1 + t (1-mu)/(1+mu))``.

    It is attained at the lazy edge ``alpha h = (1 - sqrt(mu))^2`` (double root ``sqrt(mu)``).
    Pedregosa et al., "A Hitchhiker's guide to momentum" (2023), Sec. 3 (Chebyshev polynomials).

    Args:
        mu: momentum in ``[0, 1)``.
        t: number of steps, integers ``>= 0``.

    Example:
        >>> round(float(chebyshev_bound(0.25, 2)), 12)  # 0.5^2 * (1 + 2 * 0.6)
        0.55
    """
    mu = v.in_range("mu", mu, 0.0, 1.0, hi_open=True)
    k = v.integer("t", t)  # float64: exact for every integer, no int64 wrap
    mu, k = v.broadcast(("mu", "t"), mu, k)
    return np.sqrt(mu) ** k * (1.0 + k * (1.0 - mu) / (1.0 + mu))


def _h_grid(alpha: float, mu: float, h_min: float, h_max: float, n_h: int) -> FloatArray:
    grid = np.geomspace(h_min, h_max, n_h) if h_max > h_min else np.array([h_min])
    if mu >= 0.0:  # the region edges, where the transient of the matched start is largest
        edges = np.concatenate(_edges(np.array([mu]))) / alpha
        grid = np.concatenate([grid, edges[(edges >= h_min) & (edges <= h_max)]])
    return np.unique(grid)


def _peak_one(
    alpha: float, mu: float, h_min: float, h_max: float, start: str, t_max: int | None, n_h: int
) -> tuple[float, int]:
    h = _h_grid(alpha, mu, h_min, h_max, n_h)
    a = alpha * h
    c = _start_c(start, a, np.full_like(a, mu))
    rho = float(np.max(spectral_radius(alpha, mu, h[[0, -1]])))
    # |e_t| <= |U_t| + |mu c| |U_{t-1}| <= rho^(t-1) ((t+1) rho + |mu c| t) =: B(t), decreasing
    # once t >= 1/(-log rho); the scan stops when B(T) is below the peak already found.
    c_abs = float(np.max(np.abs(mu * c)))
    if t_max is None and rho >= 1.0:
        raise ValueError(
            "t_max is required (an integer >= 0) when (alpha, mu) is not stable on "
            "[h_min, h_max] (radius >= 1)"
        )
    t_turn = 0.0 if rho == 0.0 else 1.0 / -np.log(rho)
    peak, t_peak, t0 = -1.0, 0, 0
    while True:
        stop = t0 + _CHUNK if t_max is None else min(t0 + _CHUNK, t_max + 1)
        t = np.arange(t0, stop, dtype=np.int64)
        g = _gain(a[:, None], np.float64(mu), c[:, None], t[None, :])
        col = np.max(g, axis=0)
        i = int(np.argmax(col))
        if col[i] > peak:
            peak, t_peak = float(col[i]), int(t[i])
        t0 = stop
        if t_max is not None:
            if t0 > t_max:
                return peak, t_peak
            continue
        tail = rho ** (t0 - 1) * ((t0 + 1) * rho + c_abs * t0) if rho > 0.0 else 0.0
        if t0 >= t_turn and tail <= peak:
            return peak, t_peak
        if t0 >= _T_CAP:
            raise ValueError(f"peak not resolved within {_T_CAP} steps; pass t_max explicitly")


def peak_transient(
    alpha: ArrayLike,
    mu: ArrayLike,
    h_min: ArrayLike,
    h_max: ArrayLike,
    *,
    start: Start = "zero_velocity",
    t_max: int | None = None,
    n_h: int = 257,
) -> tuple[FloatArray, NDArray[np.int64]]:
    """Largest error gain over steps ``t`` and curvatures in ``[h_min, h_max]`` (the peak effect).

    ``peak = max_t max_h |e_t(h)|`` with ``e_t`` from :func:`error_gain`. The curvatures are a
    geometric grid of ``n_h`` points plus the robust-region edges ``(1 -+ sqrt(mu))^2 / alpha``
    that lie in the interval. Without ``t_max`` the scan runs until the tail bound
    ``B(t) = rho^(t-1) ((t+1) rho + |mu c| t)`` (``|U_k| <= (k+1) rho^k``) falls below the
    peak found, so the maximum over all ``t`` is exact on the grid. With the zero-velocity start the
    peak grows roughly like ``sqrt(kappa)`` at Polyak's tuning (Hitchhiker's guide, Sec. 4).

    Args:
        alpha: learning rate, ``> 0``.
        mu: momentum in ``(-1, 1)``.
        h_min: smallest curvature, ``> 0``.
        h_max: largest curvature, ``>= h_min``.
        start: ``"zero_velocity"`` or ``"matched"``.
        t_max: last step scanned (required when the radius on the spectrum is ``>= 1``).
        n_h: number of grid curvatures, ``>= 2``.

    Returns:
        ``(peak, t_peak)`` arrays of the broadcast shape of the four array arguments.

    Example:
        >>> peak, t_peak = peak_transient(0.5, 0.0, 1.0, 1.0)
        >>> float(peak), int(t_peak)
        (1.0, 0)
    """
    alpha = v.positive("alpha", alpha)
    mu = v.momentum("mu", mu)
    h_min = v.positive("h_min", h_min)
    h_max = v.positive("h_max", h_max)
    alpha, mu, h_min, h_max = v.broadcast(
        ("alpha", "mu", "h_min", "h_max"), alpha, mu, h_min, h_max
    )
    v.ordered("h_min", h_min, "h_max", h_max)
    if start not in _STARTS:
        raise ValueError(f"start must be one of {', '.join(_STARTS)} (got {start!r})")
    if t_max is not None:
        t_max = int(v.integer("t_max", t_max))
    n_h = int(v.integer("n_h", n_h, lo=2))
    peak = np.empty(alpha.shape)
    t_peak = np.empty(alpha.shape, dtype=np.int64)
    for idx in np.ndindex(alpha.shape):
        peak[idx], t_peak[idx] = _peak_one(
            float(alpha[idx]),
            float(mu[idx]),
            float(h_min[idx]),
            float(h_max[idx]),
            start,
            t_max,
            n_h,
        )
    return peak, t_peak
