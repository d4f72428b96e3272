"""Spread of measurements: bootstrap intervals for means, ratios and medians over seeds.

Tolerances in this package come from the measured spread (DESIGN.md): a speedup or a best setting
is claimed only when its bootstrap interval excludes the alternative. The intervals are percentile
bootstrap intervals from :func:`scipy.stats.bootstrap` (Efron & Tibshirani, "An Introduction to the
Bootstrap", 1993, ch. 13), seeded explicitly so that a record is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 4000


def _sample(x: np.ndarray | list[float], name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size < 2:
        raise ValueError(f"{name} needs at least 2 values for a bootstrap interval (got {a.size})")
    return a


def bootstrap_interval(
    samples: np.ndarray | list[float],
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over independent ``samples`` (e.g. seeds).

    A sample with no spread gives the degenerate interval ``(s, s)``. Non-finite samples propagate
    (a NaN statistic gives a NaN interval, which :func:`experiments.checks.interval_check` reads as
    unresolved).

    Raises:
        ValueError: with fewer than two samples, or a confidence outside (0, 1).

    Example:
        >>> lo, hi = bootstrap_interval([1.0, 1.2, 0.9, 1.1, 1.05, 0.95, 1.0, 1.15])
        >>> bool(lo < 1.04 < hi)
        True
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1) (got {confidence})")
    a = _sample(samples, "samples")
    if np.all(a == a[0]):
        return float(a[0]), float(a[0])

    def stat(x: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.apply_along_axis(statistic, axis, x)

    res = stats.bootstrap(
        (a,),
        stat,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
        vectorized=True,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def ratio_interval(
    numerator: np.ndarray | list[float],
    denominator: np.ndarray | list[float],
    *,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
) -> tuple[float, tuple[float, float]]:
    """Ratio of means ``mean(numerator) / mean(denominator)`` and its bootstrap interval.

    The two samples are resampled independently (different seeds of two methods), so the interval
    carries the spread of both.

    Returns:
        ``(ratio, (lo, hi))``.

    Raises:
        ValueError: with fewer than two values in either sample.

    Example:
        >>> r, (lo, hi) = ratio_interval([200, 210, 190, 205], [100, 98, 103, 101])
        >>> round(r, 3), bool(lo < 2.0 < hi)
        (2.002, True)
    """
    a = _sample(numerator, "numerator")
    b = _sample(denominator, "denominator")
    ratio = float(np.mean(a) / np.mean(b))
    if np.all(a == a[0]) and np.all(b == b[0]):
        return ratio, (ratio, ratio)
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, a.size, size=(resamples, a.size))
    ib = rng.integers(0, b.size, size=(resamples, b.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = a[ia].mean(axis=1) / b[ib].mean(axis=1)
    tail = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.percentile(boot, [tail, 100.0 - tail])
    return ratio, (float(lo), float(hi))
