"""Domain checks shared by the theory modules.

Every public function of :mod:`theory` validates its inputs with these helpers so that bad input
raises a :class:`ValueError` that names the parameter and its valid range. Messages start with the
parameter name, e.g. ``"mu must lie in (-1, 1) (got 1.5)"``; infinite ends are always written open
(``"[0, inf)"``) because NaN and infinities are rejected everywhere.

Python integers beyond the float64 range (``|x| > 1.8e308``) are handled in one documented way:

* a *count* (steps ``t``, a lag, a delay, a number of workers or iterations) is exact at any size:
  one beyond the range is taken as ``+inf`` and every function returns the limit of its formula as
  the count grows (e.g. ``chebyshev_bound(0.5, 10**400) == 0.0``); an explicit float ``inf`` is
  still rejected;
* any other real parameter raises a :class:`ValueError` naming the parameter and the float64
  range;
* a *grid size* (``n``, ``n_h``, ``n_grid``, ``n_alpha``, ``steps``, ``dim``, ``t_max``) is a single
  integer with a stated upper bound (:func:`grid_size`), so that no call allocates without limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

FLOAT_MAX = float(np.finfo(np.float64).max)


def _fmt(bound: float) -> str:
    return "inf" if bound == np.inf else ("-inf" if bound == -np.inf else f"{bound:g}")


def _shown(arr: FloatArray, bad: NDArray[np.bool_]) -> str:
    return f"{float(np.ravel(arr[bad] if arr.ndim else arr)[0]):g}"


def _as_float(name: str, value: ArrayLike) -> FloatArray:
    try:
        return np.asarray(value, dtype=np.float64)
    except OverflowError:
        raise ValueError(
            f"{name} must lie in the float64 range [-{FLOAT_MAX:.4g}, {FLOAT_MAX:.4g}] "
            "(got an integer beyond it)"
        ) from None
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a real number or array of real numbers") from err


def _saturate(x: object) -> float:
    """``float(x)``; an integer beyond the float64 range becomes ``+-inf`` (its limit)."""
    try:
        return float(x)  # type: ignore[arg-type]
    except OverflowError:
        return math.inf if x > 0 else -math.inf  # type: ignore[operator]


def _as_count(name: str, value: ArrayLike) -> tuple[FloatArray, NDArray[np.bool_]]:
    """``value`` as float64 with integers beyond the range as ``+-inf``; the mask marks those."""
    try:
        arr = np.asarray(value, dtype=np.float64)
        return arr, np.zeros(arr.shape, dtype=bool)
    except OverflowError:
        pass
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a real number or array of real numbers") from err
    try:
        obj = np.asarray(value, dtype=object)
        arr = np.array([_saturate(x) for x in obj.ravel()], dtype=np.float64).reshape(obj.shape)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a real number or array of real numbers") from err
    return arr, np.isinf(arr)


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
    """Check that ``value`` holds integer counts ``>= lo``; return them as float64.

    Float64 holds every integer up to ``2^53`` exactly and every float above that is an integer,
    so no count is wrapped or rounded (an int64 cast would wrap values ``>= 2^63``). A Python
    integer beyond the float64 range is returned as ``+inf`` (module docstring: the caller
    returns its limit); a float ``inf`` is rejected. Use ``int(...)`` on a scalar result where a
    Python integer is needed.

    Example:
        >>> float(integer("t", 1e20)), float(integer("t", 10**400))
        (1e+20, inf)
    """
    arr, big = _as_count(name, value)
    with np.errstate(invalid="ignore"):
        bad = (~np.isfinite(arr) & ~big) | (arr != np.round(arr)) | (arr < lo)
    if np.any(bad):
        raise ValueError(f"{name} must be an integer >= {lo} (got {_shown(arr, bad)})")
    return arr


def count(name: str, value: ArrayLike, lo: float) -> FloatArray:
    """A real count ``>= lo`` (e.g. a number of workers, whose real values extend the formula).

    Like :func:`in_range` with the interval ``[lo, inf)``, except that a Python integer beyond the
    float64 range is returned as ``+inf`` (module docstring).

    Example:
        >>> float(count("n_workers", 10**400, 1.0))
        inf
    """
    arr, big = _as_count(name, value)
    with np.errstate(invalid="ignore"):
        ok = (big & (arr > 0.0)) | (np.isfinite(arr) & (arr >= lo))
    if not np.all(ok):
        raise ValueError(f"{name} must lie in {interval(lo, np.inf)} (got {_shown(arr, ~ok)})")
    return arr


def grid_size(name: str, value: ArrayLike, lo: int, hi: int) -> int:
    """A single integer in ``[lo, hi]``: a grid size or a number of steps that sets the work.

    The upper bound keeps the memory and time of one call bounded; each function states its bound
    in its docstring.

    Raises:
        ValueError: naming ``name`` when ``value`` is an array, not an integer, or outside
            ``[lo, hi]``.

    Example:
        >>> grid_size("n", [3, 4], 2, 10)
        Traceback (most recent call last):
        ...
        ValueError: n must be a single integer in [2, 10] (got an array of shape (2,))
    """
    where = f"[{lo}, {hi}]"
    if np.ndim(value) != 0:
        raise ValueError(
            f"{name} must be a single integer in {where} (got an array of shape {np.shape(value)})"
        )
    arr, big = _as_count(name, value)
    x = float(arr)
    if big.any() or not (np.isfinite(x) and x == round(x) and lo <= x <= hi):
        shown = "an integer beyond the float64 range" if big.any() else f"{x:g}"
        raise ValueError(f"{name} must be an integer in {where} (got {shown})")
    return int(x)


def scalar(name: str, value: FloatArray) -> float:
    """``float(value)`` for a 0-d array; an array raises a :class:`ValueError` naming ``name``."""
    if value.ndim != 0:
        raise ValueError(f"{name} must be a single number (got an array of shape {value.shape})")
    return float(value)


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
