"""Domain checks shared by the theory modules.

Every public function of :mod:`theory` validates its inputs with these helpers so that bad input
raises a :class:`ValueError` that names the parameter and its valid range.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def as_finite(name: str, value: ArrayLike) -> FloatArray:
    """Return ``value`` as a float64 array, rejecting NaN and infinities.

    Args:
        name: parameter name used in the error message.
        value: scalar or array-like.

    Raises:
        ValueError: if ``value`` is not numeric or contains NaN or inf.
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a real number or array of real numbers") from err
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (got NaN or inf)")
    return arr


def _fmt(bound: float) -> str:
    return "inf" if bound == np.inf else ("-inf" if bound == -np.inf else f"{bound:g}")


def in_range(
    name: str,
    value: ArrayLike,
    lo: float = -np.inf,
    hi: float = np.inf,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> FloatArray:
    """Return ``value`` as float64 after checking every element lies in the given interval.

    Args:
        name: parameter name used in the error message.
        value: scalar or array-like.
        lo: lower bound.
        hi: upper bound.
        lo_open: exclude ``lo`` itself.
        hi_open: exclude ``hi`` itself.

    Raises:
        ValueError: naming ``name`` and the interval when an element falls outside it or is
            not finite.

    Example:
        >>> float(in_range("mu", 0.5, -1.0, 1.0, lo_open=True, hi_open=True))
        0.5
    """
    arr = as_finite(name, value)
    ok_lo = arr > lo if lo_open else arr >= lo
    ok_hi = arr < hi if hi_open else arr <= hi
    if not (np.all(ok_lo) and np.all(ok_hi)):
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        bad = arr[~(ok_lo & ok_hi)] if arr.ndim else arr
        shown = float(np.ravel(bad)[0])
        raise ValueError(f"{name} must lie in {left}{_fmt(lo)}, {_fmt(hi)}{right} (got {shown:g})")
    return arr


def positive(name: str, value: ArrayLike) -> FloatArray:
    """Check ``value > 0`` elementwise (finite)."""
    return in_range(name, value, 0.0, np.inf, lo_open=True)


def nonnegative(name: str, value: ArrayLike) -> FloatArray:
    """Check ``value >= 0`` elementwise (finite)."""
    return in_range(name, value, 0.0, np.inf)


def momentum(name: str, value: ArrayLike) -> FloatArray:
    """Check ``-1 < value < 1`` elementwise, the domain of a convergent heavy-ball momentum."""
    return in_range(name, value, -1.0, 1.0, lo_open=True, hi_open=True)


def ordered(lo_name: str, lo: FloatArray, hi_name: str, hi: FloatArray) -> None:
    """Check ``lo <= hi`` elementwise."""
    if np.any(np.asarray(lo) > np.asarray(hi)):
        raise ValueError(f"{lo_name} must not exceed {hi_name}")


def integer(name: str, value: ArrayLike, lo: int = 0) -> NDArray[np.int64]:
    """Check that ``value`` holds integers ``>= lo`` and return them as int64."""
    arr = as_finite(name, value)
    if np.any(arr != np.round(arr)) or np.any(arr < lo):
        raise ValueError(f"{name} must be an integer >= {lo}")
    return arr.astype(np.int64)
