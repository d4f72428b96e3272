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
from theory.heavy_ball import _discriminant, _edges, _root_disc, spectral_radius

FloatArray = NDArray[np.float64]
Start = Literal["zero_velocity", "matched"]

__all__ = ["chebyshev_bound", "error_gain", "peak_transient"]

_STARTS = ("zero_velocity", "matched")
_T_CAP = 1 << 22  # longest horizon the search for the peak will scan
_WORK_CAP = 1 << 22  # gains (curvatures x steps) one peak search may evaluate: about a second
_MAX_N_H = 1 << 16
_CHUNK = 2048
_CHUNK_CELLS = 1 << 20  # curvatures x steps per vectorised block: bounded memory


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
    root_d = _root_disc(a, mu, b, d)
    a, mu, c, t, b, d, root_d = np.broadcast_arrays(a, mu, c, t, b, d, root_d)
    sigma = np.where(b >= 0.0, 1.0, -1.0)
    bb = np.abs(b)
    k = t.astype(np.float64)  # U_t and U_{t-1} are needed; factor z^(t-1) out of both
    with np.errstate(all="ignore"):
        # complex roots: r = sqrt(mu), U_k = r^k sin((k+1) theta) / sin(theta)
        r = np.sqrt(np.maximum(mu, 0.0))
        theta = np.arctan2(np.where(d < 0.0, root_d, 0.0), bb)
        sin_theta = np.where(d < 0.0, np.sin(theta), 1.0)
        w_t = np.sin((k + 1.0) * theta) / sin_theta
        w_tm1 = np.sin(k * theta) / sin_theta
        gain_c = r ** (k - 1.0) * np.abs(r * w_t - sigma * mu * c * w_tm1)

        # real roots: z1 >= |z2|, U_k = z1^k S_k, S_k = (1 - r^{k+1}) / (1 - r)
        sq = np.where(d >= 0.0, root_d, 0.0)
        z1 = 0.5 * bb + 0.5 * sq
        zero = z1 == 0.0
        z1s = np.where(zero, 1.0, z1)
        ratio = mu / z1s**2  # r = z2 / z1
        delta = sq / z1s  # 1 - r; may round above 1 when r is below eps
        delta = np.where(ratio >= 0.0, np.minimum(delta, 1.0), delta)

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
        t: number of steps, integers ``>= 0``; a Python integer beyond the float64 range gives
            the limit ``t -> inf``: 0 where stable (``alpha h < 2 (1 + mu)``, decided exactly),
            ``inf`` beyond, ``|1 + mu c| / (1 - mu)`` on the edge (roots ``-1`` and ``-mu``).
        start: ``"zero_velocity"`` or ``"matched"``.

    Returns:
        Float64 array of the broadcast shape; never NaN (a gain beyond float64 is ``inf``).

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
    c = _start_c(start, a, mu)
    limit = np.isinf(t)  # a count beyond float64: the limit t -> inf
    gain = _gain(a, mu, c, np.where(limit, 0.0, t))
    if np.any(limit):
        with np.errstate(over="ignore"):
            edge = 2.0 * (1.0 + mu)  # a = edge: roots -1 and -mu, |e_t| -> |1 + mu c| / (1 - mu)
            at_edge = np.abs(1.0 + mu * c) / (1.0 - mu)
        gain = np.where(limit, np.where(a < edge, 0.0, np.where(a > edge, np.inf, at_edge)), gain)
    return gain


def chebyshev_bound(mu: ArrayLike, t: ArrayLike) -> FloatArray:
    """Bound on the matched-start gain over the robust region: ``sqrt(mu)^t (1 + t (1-mu)/(1+mu))``.

    It is attained at the lazy edge ``alpha h = (1 - sqrt(mu))^2`` (double root ``sqrt(mu)``).
    Pedregosa et al., "A Hitchhiker's guide to momentum" (2023), Sec. 3 (Chebyshev polynomials).

    Args:
        mu: momentum in ``[0, 1)``.
        t: number of steps, integers ``>= 0``; beyond the float64 range the limit, 0.

    Example:
        >>> round(float(chebyshev_bound(0.25, 2)), 12)  # 0.5^2 * (1 + 2 * 0.6)
        0.55
        >>> float(chebyshev_bound(0.5, 10**400))
        0.0
    """
    mu = v.in_range("mu", mu, 0.0, 1.0, hi_open=True)
    k = v.integer("t", t)  # float64: exact for every integer, no int64 wrap; inf: the limit
    mu, k = v.broadcast(("mu", "t"), mu, k)
    finite = np.where(np.isinf(k), 0.0, k)
    return np.where(
        np.isinf(k), 0.0, np.sqrt(mu) ** finite * (1.0 + finite * (1.0 - mu) / (1.0 + mu))
    )


def _h_grid(alpha: float, mu: float, h_min: float, h_max: float, n_h: int) -> FloatArray:
    grid = np.geomspace(h_min, h_max, n_h) if h_max > h_min else np.array([h_min])
    if mu >= 0.0:  # the region edges, where the transient of the matched start is largest
        with np.errstate(over="ignore"):  # an edge beyond float64 lies outside [h_min, h_max]
            edges = np.concatenate(_edges(np.array([mu]))) / alpha
        grid = np.concatenate([grid, edges[(edges >= h_min) & (edges <= h_max)]])
    return np.unique(grid)


def _peak_one(
    alpha: float, mu: float, h_min: float, h_max: float, start: str, t_max: int | None, n_h: int
) -> tuple[float, int]:
    h = _h_grid(alpha, mu, h_min, h_max, n_h)
    with np.errstate(over="ignore"):
        a = alpha * h
    c = _start_c(start, a, np.full_like(a, mu))
    cap = min(_T_CAP, max(_CHUNK, _WORK_CAP // h.size))  # last step the search may reach
    if t_max is not None and t_max >= cap:
        raise ValueError(
            f"t_max must be below {cap} for {h.size} curvatures (the scan evaluates at most "
            f"2^22 gains, curvatures x steps; got t_max={t_max})"
        )
    rho = float(np.max(spectral_radius(alpha, mu, h[[0, -1]])))
    # |e_t| <= |U_t| + |mu c| |U_{t-1}| <= rho^(t-1) ((t+1) rho + |mu c| t) =: B(t), decreasing
    # once t >= 1/(-log rho); the scan stops when B(T) is below the peak already found.
    c_abs = float(np.max(np.abs(mu * c)))
    if t_max is None and rho >= 1.0:
        raise ValueError(
            "t_max is required (an integer >= 0) when (alpha, mu) is not stable on "
            "[h_min, h_max] (radius >= 1 in float64)"
        )
    t_turn = 0.0 if rho == 0.0 else (np.inf if rho >= 1.0 else 1.0 / -np.log(rho))
    if t_max is None and t_turn >= cap:  # B(t) still grows at the cap: decided before scanning
        raise ValueError(
            f"t_max is required: the radius {rho:.12g} on [h_min, h_max] needs a scan beyond "
            f"{t_turn:.3g} steps (1 / -log(radius)) to bound the peak, more than the {cap} "
            "this search may scan; pass t_max for a peak over a finite horizon"
        )
    # blocks of steps start at _CHUNK and double up to _CHUNK_CELLS cells (curvatures x steps)
    chunk, chunk_max = _CHUNK, max(16, _CHUNK_CELLS // h.size)
    peak, t_peak, t0 = -1.0, 0, 0
    while True:
        chunk = max(16, min(2 * chunk if t0 else chunk, chunk_max))
        stop = t0 + chunk if t_max is None else min(t0 + chunk, t_max + 1)
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
        if t0 >= cap:
            raise ValueError(
                f"t_max is required: the peak is not resolved within {cap} steps (the tail "
                f"bound at radius {rho:.12g} is still above it); pass t_max explicitly"
            )


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

    Work is bounded: one search evaluates at most ``2^22`` gains (curvatures x steps, about a
    second) and scans at most ``min(2^22, max(2048, 2^22 / (n_h + 2)))`` steps. Without
    ``t_max`` a radius so close to 1 that the tail bound still grows at that cap
    (``1 / -log(rho)`` beyond it, e.g. ``alpha = 1e-6`` on ``[1, 10]``) is refused before any
    scan; a search that reaches the cap without resolving the peak raises too. Both errors name
    ``t_max``.

    Args:
        alpha: learning rate, ``> 0``.
        mu: momentum in ``(-1, 1)``.
        h_min: smallest curvature, ``> 0``.
        h_max: largest curvature, ``>= h_min``.
        start: ``"zero_velocity"`` or ``"matched"``.
        t_max: last step scanned, a single integer ``>= 0`` below the cap above (required when
            the radius on the spectrum is ``>= 1``).
        n_h: number of grid curvatures, a single integer in ``[2, 65536]``.

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
        t_max = v.grid_size("t_max", t_max, 0, _T_CAP)
    n_h = v.grid_size("n_h", n_h, 2, _MAX_N_H)
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
