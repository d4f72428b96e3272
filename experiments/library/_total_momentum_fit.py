"""Extrapolation of a reading to a vanishing step, for ``total-momentum``.

A reading taken at step factor ``c`` carries a step bias that is a series in ``c``,
``r(c) = r0 + a_k c^k + a_(k+1) c^(k+1) + ...``. Richardson extrapolation (L. F. Richardson, "The
deferred approach to the limit", Phil. Trans. R. Soc. A 226, 1927) removes the first terms from
readings at several steps. The leading order ``k`` is measured from three readings at geometric
steps (:func:`apparent_order`, :func:`leading_order`); :func:`step_extrapolation` removes the
orders given and :func:`step_weights` gives the linear weights it applies to the readings.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apparent_order", "leading_order", "step_extrapolation", "step_weights"]


def apparent_order(steps: np.ndarray, readings: np.ndarray) -> float:
    """Order ``p`` of a step bias ``a c^p`` from three readings at geometric steps ``c1 > c2 > c3``.

    ``p = log((r1 - r2) / (r2 - r3)) / log(c1 / c2)``; NaN when the ratio is not positive.

    Example:
        >>> c = np.array([0.1, 0.05, 0.025])
        >>> round(apparent_order(c, 0.9 + 3 * c**2), 12)
        2.0
    """
    c, r = np.asarray(steps, float), np.asarray(readings, float)
    if c.shape != (3,) or r.shape != (3,) or not np.isclose(c[0] / c[1], c[1] / c[2]):
        raise ValueError(f"need three readings at three geometric steps (got {c}, {r.shape})")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (r[0] - r[1]) / (r[1] - r[2])
        return float(np.log(ratio) / np.log(c[0] / c[1])) if ratio > 0 else float("nan")


def leading_order(p: float) -> int:
    """The integer leading order of the step bias from the apparent order: ``round(p)`` in
    ``[1, 3]``, and 1 when ``p`` is NaN or below 1.5 (the general, linear case)."""
    return 1 if not np.isfinite(p) or p < 1.5 else int(min(round(p), 3))


def step_extrapolation(
    steps: np.ndarray, readings: np.ndarray, orders: tuple[int, ...]
) -> np.ndarray:
    """Value at a vanishing step of ``r(c) = r0 + sum_j a_j c^orders[j]`` through the readings.

    Richardson extrapolation with the orders given, as the least-squares (exact when the number of
    readings is ``1 + len(orders)``) solution of the linear system in ``(r0, a_j)``.

    Args:
        steps: ``(n,)`` step factors ``c``.
        readings: ``(..., n)`` readings at those steps.
        orders: the powers removed, ``n >= 1 + len(orders)``.

    Returns:
        ``r0`` with the leading shape of ``readings``.

    Example:
        >>> c = np.array([0.1, 0.05, 0.025])
        >>> r = 0.99 + 0.04 * c - 0.3 * c**2
        >>> float(np.round(step_extrapolation(c, r, (1, 2)), 12))
        0.99
    """
    c = np.asarray(steps, float)
    r = np.asarray(readings, float)
    if c.ndim != 1 or r.shape[-1] != c.size or c.size < 1 + len(orders):
        raise ValueError(f"need {1 + len(orders)} readings per series (got {r.shape}, steps {c})")
    basis = np.stack([np.ones_like(c)] + [c**p for p in orders], axis=1)
    flat = r.reshape(-1, c.size).T
    coef = np.linalg.lstsq(basis, flat, rcond=None)[0]
    return coef[0].reshape(r.shape[:-1])


def step_weights(steps: np.ndarray, orders: tuple[int, ...]) -> np.ndarray:
    """The weights ``w`` of :func:`step_extrapolation`: ``r0 = w . r`` (they sum to 1).

    Example:
        >>> step_weights(np.array([0.1, 0.05]), (1,)).round(12).tolist()
        [-1.0, 2.0]
    """
    c = np.asarray(steps, float)
    basis = np.stack([np.ones_like(c)] + [c**p for p in orders], axis=1)
    return np.linalg.pinv(basis)[0]
