"""Measurements on recorded trajectories: linear rates, stationary means, transient peaks.

All functions work on NumPy arrays on the host, after a run.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from simulators.objectives.base import check_positive_int


class RateEstimate(NamedTuple):
    """A linear rate ``rate`` (per step) with its standard error and the window it was fitted on.

    Fields are scalars for one series, arrays for a batch of series (``start``/``stop`` are record
    indices, ``stop`` exclusive; ``rate`` is NaN where fewer than ``min_points`` points were
    usable).
    """

    rate: np.ndarray | float
    stderr: np.ndarray | float
    start: np.ndarray | int
    stop: np.ndarray | int


def _weighted_slope(t: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Least-squares slope of ``y`` on ``t`` with 0/1 weights ``w`` along the last axis."""
    sw = w.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tm = (w * t).sum(-1) / sw
        ym = (w * y).sum(-1) / sw
        tc = t - tm[..., None]
        sxx = (w * tc * tc).sum(-1)
        sxy = (w * tc * (y - ym[..., None])).sum(-1)
        return sxy / sxx


def _check_index(name: str, value: object, n: int) -> int:
    """``value`` as an int in ``[0, n]`` or ``ValueError`` naming ``name`` and the range."""
    msg = f"{name} must be an integer in [0, {n}] (got {value!r})"
    try:
        v = check_positive_int(name, value, minimum=0)
    except ValueError as err:
        raise ValueError(msg) from err
    if v > n:
        raise ValueError(msg)
    return v


def measure_rate(
    distances: ArrayLike,
    *,
    start: int | None = None,
    stop: int | None = None,
    kappa: float | None = None,
    steps: ArrayLike | None = None,
    rel_floor: float | None = None,
    blocks: int = 8,
    min_points: int = 16,
) -> RateEstimate:
    """Asymptotic linear rate ``rho`` from ``||x_t - x*|| ~ C rho^t``, as ``exp(slope)`` of a late
    least-squares fit of ``log ||x_t - x*||`` on ``t`` (heavy-ball reference, "Transients": the
    window must start well after ``t ~ sqrt(kappa)``, where the peak effect has died out).

    Usable points: finite, positive, above ``rel_floor * max(distance)`` (the precision floor, by
    default ``1e3 * eps`` of the dtype) and before the first point that is not. The window of each
    series is ``[start, stop)`` within its usable prefix; by default it starts at the later of
    record ``end // 2`` (``end`` = usable length) and the first record ``10 sqrt(kappa)`` steps
    after the first, and stops at ``end``.

    Uncertainty: the residuals of the fit oscillate (complex eigenvalues) and are correlated, so
    the standard error is a delete-one-block jackknife over ``blocks`` contiguous blocks of the
    window, mapped to the rate by the delta method (``stderr(rho) = rho stderr(slope)``).

    Args:
        distances: ``(..., R)`` distances at the records.
        start: first record index of the window (overrides the default).
        stop: record index one past the window end (clipped to the usable prefix).
        kappa: condition number, used to place the default start.
        steps: step number of every record, ``(R,)``; default ``0..R-1``.
        rel_floor: relative precision floor, in ``[0, 1)``.
        blocks: jackknife blocks, >= 2.
        min_points: fewest usable points in the window, >= 3.

    Returns:
        :class:`RateEstimate` (scalars for a 1-D input).

    Example:
        >>> est = measure_rate(0.9 ** np.arange(200.0))
        >>> round(float(est.rate), 6)
        0.9
    """
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim < 1 or d.shape[-1] < 3:
        raise ValueError(f"distances must have shape (..., R) with R >= 3 (got {d.shape})")
    n = d.shape[-1]
    t = np.arange(n, dtype=np.float64) if steps is None else np.asarray(steps, dtype=np.float64)
    if t.shape != (n,) or not np.all(np.diff(t) > 0):
        raise ValueError(f"steps must be an increasing array of shape ({n},)")
    if kappa is not None and not (math.isfinite(kappa) and kappa >= 1):
        raise ValueError(f"kappa must lie in [1, inf) (got {kappa!r})")
    blocks = check_positive_int("blocks", blocks, minimum=2)
    min_points = check_positive_int("min_points", min_points, minimum=3)
    if start is not None:
        start = _check_index("start", start, n)
    if stop is not None:
        stop = _check_index("stop", stop, n)
    if rel_floor is None:
        src = np.asarray(distances).dtype
        rel_floor = 1e3 * float(np.finfo(src if src.kind == "f" else np.float64).eps)
    if not 0 <= rel_floor < 1:
        raise ValueError(f"rel_floor must lie in [0, 1) (got {rel_floor!r})")

    with np.errstate(invalid="ignore"):
        finite = np.isfinite(d) & (d > 0)
        peak = np.max(np.where(finite, d, 0.0), axis=-1, keepdims=True)
        good = finite & (d > rel_floor * peak)
    usable = np.cumprod(good, axis=-1).astype(bool)
    end = usable.sum(-1)
    if stop is not None:
        end = np.minimum(end, stop)
    if start is None:
        # 10 sqrt(kappa) is a number of steps: convert it to a record index
        first = int(np.searchsorted(t, t[0] + 10.0 * math.sqrt(kappa))) if kappa else 0
        lo = np.maximum(end // 2, first)
    else:
        lo = np.full_like(end, start)
    idx = np.arange(n)
    window = usable & (idx >= lo[..., None]) & (idx < end[..., None])
    w = window.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(window, np.log(np.where(window, d, 1.0)), 0.0)
    slope = _weighted_slope(t, y, w)

    # delete-one-block jackknife over contiguous blocks of each window
    count = window.sum(-1)
    rank = np.cumsum(window, axis=-1) - 1
    block_id = np.where(window, (rank * blocks) // np.maximum(count, 1)[..., None], -1)
    leave_out = np.stack(
        [_weighted_slope(t, y, w * (block_id != b)) for b in range(blocks)], axis=-1
    )
    jk_mean = leave_out.mean(-1)
    jk_var = (blocks - 1) / blocks * ((leave_out - jk_mean[..., None]) ** 2).sum(-1)
    rate = np.exp(slope)
    stderr = rate * np.sqrt(jk_var)
    bad = count < min_points
    rate = np.where(bad, np.nan, rate)
    stderr = np.where(bad, np.nan, stderr)
    if d.ndim == 1:
        return RateEstimate(float(rate), float(stderr), int(lo), int(end))
    return RateEstimate(rate, stderr, lo, end)


def per_coordinate_rates(
    iterates: ArrayLike,
    x_star: ArrayLike,
    **kwargs: object,
) -> RateEstimate:
    """Rate of every recorded coordinate: :func:`measure_rate` on ``|x_t[i] - x*[i]|``.

    Args:
        iterates: ``(..., R, k)`` recorded coordinates (``Trajectory.iterates``).
        x_star: the minimiser's values at those coordinates, broadcastable to ``(k,)``.
        **kwargs: passed to :func:`measure_rate` (``start``, ``stop``, ``kappa``, ``steps``...).

    Returns:
        :class:`RateEstimate` with arrays of shape ``(..., k)``.
    """
    it = np.asarray(iterates, dtype=np.float64)
    if it.ndim < 2:
        raise ValueError(f"iterates must have shape (..., R, k) (got {it.shape})")
    xs = np.asarray(x_star, dtype=np.float64)
    try:
        err = np.abs(it - xs)
    except ValueError as e:
        raise ValueError(f"x_star must broadcast to the coordinates {it.shape[-1:]}") from e
    est = measure_rate(np.moveaxis(err, -1, -2).reshape(-1, it.shape[-2]), **kwargs)
    shape = (*it.shape[:-2], it.shape[-1])
    return RateEstimate(*(np.asarray(f).reshape(shape) for f in est))


def integrated_autocorrelation_time(x: ArrayLike, c: float = 5.0) -> float:
    """Integrated autocorrelation time ``tau = 1 + 2 sum_k rho_k`` with Sokal's automatic window
    (smallest ``W`` with ``W >= c tau(W)``); the variance of a mean of ``n`` correlated values is
    ``tau var / n``. Autocorrelations come from an FFT.
    """
    v = np.asarray(x, dtype=np.float64)
    n = v.size
    v = v - v.mean()
    f = np.fft.rfft(v, 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n]
    if acf[0] <= 0:
        return 1.0
    rho = acf / acf[0]
    taus = 2.0 * np.cumsum(rho) - 1.0
    window = np.arange(n) >= c * taus
    w = int(np.argmax(window)) if np.any(window) else n - 1
    return float(max(taus[w], 1.0))


def stationary_estimate(values: ArrayLike, burn_in: int) -> tuple[float, float]:
    """Stationary mean of a recorded series after ``burn_in`` records, with its standard error.

    For ``(seeds, R)`` input with at least two seeds, the seeds are independent, so the error is the
    sample standard deviation of the per-seed time averages over ``sqrt(seeds)``. For one series
    ``(R,)`` it is ``sqrt(tau var / n)`` with the integrated autocorrelation time ``tau``
    (:func:`integrated_autocorrelation_time`).

    Args:
        values: ``(R,)`` or ``(seeds, R)`` (e.g. ``Trajectory.losses``), finite after burn-in.
        burn_in: records dropped at the start, in ``[0, R - 2]``.

    Returns:
        ``(mean, stderr)``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> mean, err = stationary_estimate(rng.normal(size=(8, 1000)), burn_in=100)
        >>> abs(mean) < 4 * err
        True
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim not in (1, 2):
        raise ValueError(f"values must have shape (R,) or (seeds, R) (got {v.shape})")
    n = v.shape[-1]
    if isinstance(burn_in, bool) or not isinstance(burn_in, int | np.integer):
        raise ValueError(f"burn_in must be an integer in [0, {n - 2}] (got {burn_in!r})")
    if not 0 <= burn_in <= n - 2:
        raise ValueError(f"burn_in must be an integer in [0, {n - 2}] (got {burn_in!r})")
    tail = v[..., burn_in:]
    if not np.all(np.isfinite(tail)):
        raise ValueError("values must be finite after burn_in (a diverged run?)")
    if v.ndim == 2 and v.shape[0] >= 2:
        per_seed = tail.mean(-1)
        return float(per_seed.mean()), float(per_seed.std(ddof=1) / math.sqrt(per_seed.size))
    series = tail.reshape(-1)
    tau = integrated_autocorrelation_time(series)
    return float(series.mean()), float(math.sqrt(tau * series.var(ddof=1) / series.size))


def peak_transient(distances: ArrayLike, steps: ArrayLike | None = None) -> tuple[float, int]:
    """Peak of the error gain ``max_t ||x_t - x*|| / ||x_0 - x*||`` and the step where it occurs.

    Args:
        distances: ``(R,)`` distances, the first one at the start (> 0).
        steps: step number of every record, default ``0..R-1``.

    Returns:
        ``(peak, t_peak)``; the peak is at least 1 (the start itself).

    Example:
        >>> peak_transient([1.0, 1.5, 2.0, 0.5])
        (2.0, 2)
    """
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 1 or d.size < 1:
        raise ValueError(f"distances must be a non-empty 1-D array (got shape {d.shape})")
    if not (np.isfinite(d[0]) and d[0] > 0):
        raise ValueError("distances[0] must be finite and > 0")
    t = np.arange(d.size) if steps is None else np.asarray(steps)
    if t.shape != d.shape:
        raise ValueError(f"steps must have shape {d.shape}")
    gains = np.where(np.isfinite(d), d, -np.inf) / d[0]
    i = int(np.argmax(gains))
    return float(gains[i]), int(t[i])
