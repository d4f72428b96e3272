"""Late per-variable rates of a deterministic trajectory towards a known minimiser.

Given iterates ``w_t`` (rows) and the minimiser ``w*``:

1. Window: the steps whose global distance ``d_t = |w_t - w*|`` lies between ``lower d_0`` and
   ``upper d_0``: from the first step with ``d_t <= upper d_0`` (past the non-linear transient) to
   the last step with ``d_t >= lower d_0`` (above the float64 floor).
2. Each variable's distance ``r_{i,t} = |w_{i,t} - w*_i|`` over the window and its upper envelope
   ``e_{i,t} = max_{s >= t} r_{i,s}`` (runs through the oscillation peaks of complex modes).
3. Rate ``rho_i = exp(slope)`` of the least-squares line through ``log e_{i,t}`` over the window,
   and the same fit on each half of the window (``half_rates``): the two halves' disagreement is
   the measured spread of the fit (the envelope's offset from ``rho^t`` is bounded, so a fit's
   error falls like one over its length and a full-window fit errs by about half the halves'
   disagreement).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LateRates:
    """Result of :func:`late_rates`.

    Attributes:
        rates: ``rho_i`` per variable over the whole window, ``(K,)`` (NaN where a variable sits
            at its minimiser, ``r = 0``).
        half_rates: the fits over the first and the second half of the window, ``(2, K)``.
        window: ``(start, stop)`` steps of the window (``stop`` exclusive).
        distance: ``d_t`` for every step, ``(T + 1,)``.
    """

    rates: np.ndarray
    half_rates: np.ndarray
    window: tuple[int, int]
    distance: np.ndarray

    def log_spread(self, quantile: float = 0.95) -> float:
        """Half the ``quantile`` of ``|log rho_a - log rho_b|`` over variables (halves' fits):
        the error of a full-window fit (module docstring); NaN when no variable has a fit."""
        if not 0.0 < quantile <= 1.0:
            raise ValueError(f"quantile must lie in (0, 1] (got {quantile!r})")
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.abs(np.log(self.half_rates[0]) - np.log(self.half_rates[1]))
        gap = gap[np.isfinite(gap)]
        return float(0.5 * np.quantile(gap, quantile)) if gap.size else float("nan")


def _slopes(envelope: np.ndarray) -> np.ndarray:
    t = np.arange(envelope.shape[0], dtype=np.float64)
    with np.errstate(divide="ignore"):
        y = np.log(envelope)
    ok = np.all(np.isfinite(y), axis=0)
    out = np.full(envelope.shape[1], np.nan)
    if ok.any():
        out[ok] = np.polyfit(t, y[:, ok], 1)[0]
    return out


def late_rates(
    trajectory: np.ndarray,
    reference: np.ndarray,
    *,
    upper: float = 1e-4,
    lower: float = 1e-9,
    min_points: int = 20,
) -> LateRates:
    """Fit each variable's late linear rate towards ``reference`` (module docstring).

    Args:
        trajectory: ``(T + 1, K)`` iterates, row 0 the start.
        reference: ``(K,)`` the minimiser ``w*``.
        upper, lower: window levels relative to ``d_0``, ``0 < lower < upper < 1``.
        min_points: fewest steps the window must hold (>= 4); otherwise every rate is NaN.

    Raises:
        ValueError: naming the argument out of range.

    Example:
        >>> t = np.arange(3001)[:, None]
        >>> traj = np.array([1.0, -2.0]) * np.array([0.99, 0.995]) ** t
        >>> np.round(late_rates(traj, np.zeros(2), upper=0.5, lower=1e-6).rates, 6)
        array([0.99 , 0.995])
    """
    x = np.asarray(trajectory, np.float64)
    ref = np.asarray(reference, np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or ref.shape != x.shape[1:]:
        raise ValueError(
            f"trajectory must be (T + 1, K) and reference (K,) (got {x.shape}, {ref.shape})"
        )
    if not 0.0 < lower < upper < 1.0:
        raise ValueError(f"need 0 < lower < upper < 1 (got lower={lower!r}, upper={upper!r})")
    if isinstance(min_points, bool) or not isinstance(min_points, int) or min_points < 4:
        raise ValueError(f"min_points must be an integer >= 4 (got {min_points!r})")
    diff = np.abs(x - ref)
    d = np.linalg.norm(diff, axis=1)
    k = x.shape[1]
    nan = np.full(k, np.nan)
    below = np.nonzero(d <= upper * d[0])[0]
    above = np.nonzero(d >= lower * d[0])[0]
    start = int(below[0]) if below.size else x.shape[0]
    stop = int(above[-1]) + 1 if above.size else 0
    if stop - start < min_points:
        return LateRates(nan, np.stack([nan, nan]), (start, max(start, stop)), d)
    r = diff[start:stop]
    env = np.maximum.accumulate(r[::-1], axis=0)[::-1]
    half = env.shape[0] // 2
    slopes = _slopes(env)
    halves = np.stack([_slopes(env[:half]), _slopes(env[half:])])
    return LateRates(np.exp(slopes), np.exp(halves), (start, stop), d)
