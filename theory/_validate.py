"""Domain checks shared by the theory modules.

Every public function of :mod:`theory` validates its inputs with these helpers so that bad input
raises a :class:`ValueError` that names the parameter and its valid range. Messages start with the
parameter name, e.g. ``"mu must lie in (-1, 1) (got 1.5)"``; infinite ends are always written open
(``"[0, inf)"``) because NaN and infinities are rejected everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def _fmt(bound: float) -> str:
    return "inf" if bound == np.inf else ("-inf" if bound == -np.inf else f"{bound:g}")


def _shown(arr: FloatArray, bad: NDArray[np.bool_]) -> str:
    return f"{float(np.ravel(arr[bad] if arr.ndim else arr)[0]):g}"


def _as_float(name: str, value: ArrayLike) -> FloatArray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a real number or array of real numbers") from err


def interval(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> str:
    """Text of an interval; infinite ends are open since infinities are never accepted.

    Example:
        >>> interval(0.0, np.inf)
        '[0, inf)'
    """
    left = "(" if lo_open or lo == -np.inf else "["
    right = ")" if hi_open or hi == np.inf else "]"
    return f"{left}{_fmt(lo)}, {_fmt(hi)}{right}"


def as_finite(name: str, value: ArrayLike) -> FloatArray:
    """Return ``value`` as a float64 array, rejecting NaN and infinities.

    Args:
        name: parameter name used in the error message.
        value: scalar or array-like.

    Raises:
        ValueError: if ``value`` is not numeric or contains NaN or inf.
    """
    arr = _as_float(name, value)
    finite = np.isfinite(arr)
    if not np.all(finite):
        raise ValueError(f"{name} must be a finite real number (got {_shown(arr, ~finite)})")
    return arr


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

    NaN and infinities are outside every interval.

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
    arr = _as_float(name, value)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(arr) & (arr > lo if lo_open else arr >= lo)
        ok &= arr < hi if hi_open else arr <= hi
    if not np.all(ok):
        where = interval(lo, hi, lo_open=lo_open, hi_open=hi_open)
        if lo == -np.inf and hi == np.inf:
            raise ValueError(f"{name} must be a finite real number (got {_shown(arr, ~ok)})")
        raise ValueError(f"{name} must lie in {where} (got {_shown(arr, ~ok)})")
    return arr


def positive(name: str, value: ArrayLike) -> FloatArray:
    """Check ``value > 0`` elementwise (finite): the range ``(0, inf)``."""
    return in_range(name, value, 0.0, np.inf, lo_open=True)


def nonnegative(name: str, value: ArrayLike) -> FloatArray:
    """Check ``value >= 0`` elementwise (finite): the range ``[0, inf)``."""
    return in_range(name, value, 0.0, np.inf)


def momentum(name: str, value: ArrayLike) -> FloatArray:
    """Check ``-1 < value < 1`` elementwise, the domain of a convergent heavy-ball momentum."""
    return in_range(name, value, -1.0, 1.0, lo_open=True, hi_open=True)


def ordered(lo_name: str, lo: ArrayLike, hi_name: str, hi: ArrayLike, *, floor: str = "(0") -> None:
    """Check ``lo <= hi`` elementwise; the message gives ``lo``'s range as ``floor, hi_name]``.

    Example:
        >>> ordered("h_min", 3.0, "h_max", 2.0)
        Traceback (most recent call last):
        ...
        ValueError: h_min must lie in (0, h_max] (got h_min=3 > h_max=2)
    """
    lo_, hi_ = np.broadcast_arrays(np.asarray(lo, dtype=np.float64), np.asarray(hi, np.float64))
    bad = lo_ > hi_
    if np.any(bad):
        raise ValueError(
            f"{lo_name} must lie in {floor}, {hi_name}] "
            f"(got {lo_name}={_shown(lo_, bad)} > {hi_name}={_shown(hi_, bad)})"
        )


def integer(name: str, value: ArrayLike, lo: int = 0) -> FloatArray:
    """Check that ``value`` holds integers ``>= lo``; return them as float64.

    Float64 holds every integer up to ``2^53`` exactly and every float above that is an integer,
    so no count is wrapped or rounded (an int64 cast would wrap values ``>= 2^63``). Use
    ``int(...)`` on a scalar result where a Python integer is needed.

    Example:
        >>> float(integer("t", 1e20))
        1e+20
    """
    arr = _as_float(name, value)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(arr) | (arr != np.round(arr)) | (arr < lo)
    if np.any(bad):
        raise ValueError(f"{name} must be an integer >= {lo} (got {_shown(arr, bad)})")
    return arr


def broadcast(names: Sequence[str], *values: FloatArray) -> tuple[FloatArray, ...]:
    """``np.broadcast_arrays`` whose shape error names the parameters and their shapes.

    Example:
        >>> broadcast(("alpha", "mu"), np.zeros(2), np.zeros(3))
        Traceback (most recent call last):
        ...
        ValueError: alpha, mu must have broadcastable shapes (got (2,), (3,))
    """
    try:
        return tuple(np.broadcast_arrays(*values))
    except ValueError as err:
        shapes = ", ".join(str(np.shape(x)) for x in values)
        raise ValueError(
            f"{', '.join(names)} must have broadcastable shapes (got {shapes})"
        ) from err


def elementwise(
    fn: Callable[..., tuple[Any, ...]],
    names: Sequence[str],
    values: Sequence[FloatArray],
    dtypes: Sequence[type],
) -> tuple[Any, ...]:
    """Apply a scalar function over broadcast arrays (the loop behind the root-finding functions).

    ``fn`` takes one Python float per array and returns one value per entry of ``dtypes``. With
    all inputs 0-d the results are returned as Python scalars (``dtype(value)``), otherwise as
    arrays of the broadcast shape.
    """
    arrays = broadcast(names, *values)
    shape = arrays[0].shape if arrays else ()
    if not shape:
        return tuple(t(r) for t, r in zip(dtypes, fn(*(float(a) for a in arrays)), strict=True))
    outs = [np.empty(shape, dtype=t) for t in dtypes]
    for idx in np.ndindex(shape):
        for out, r in zip(outs, fn(*(float(a[idx]) for a in arrays)), strict=True):
            out[idx] = r
    return tuple(outs)
