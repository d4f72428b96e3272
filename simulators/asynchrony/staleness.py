"""Staleness laws for the fast asynchronous simulator and the staleness histogram.

A staleness ``tau`` is the number of updates written by other workers between the moment a worker
read the model and the moment its gradient was applied (Mitliagkas et al., "Asynchrony begets
momentum", arXiv 1605.09774, Section 3). With ``M`` workers whose compute times are i.i.d.
exponential the staleness is geometric, ``P(tau = l) = (1 - q) q^l`` with ``q = 1 - 1/M``
(their Theorem 1 and its queueing model).

Every law has a finite support ``0..max_lag`` so that the simulator can keep a ring buffer of the
last ``max_lag + 1`` iterates. Laws with an infinite support (the geometric one) are truncated: the
tail mass beyond ``max_lag`` is put on ``max_lag`` itself (sampling draws from the infinite law and
clips). By default ``max_lag`` is chosen so that the clipped tail mass is below ``1e-6``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

_DEFAULT_TAIL = 1e-6


@dataclass(frozen=True)
class StalenessLaw:
    """A distribution of staleness on ``{0, ..., max_lag}`` that can be sampled inside ``jit``.

    Attributes:
        name: ``"geometric"``, ``"fixed"``, ``"uniform"`` or ``"empirical"``.
        probs: probabilities of the lags ``0..max_lag`` (after truncation), a tuple of floats.
        q: the geometric ratio for ``"geometric"`` (``1 - 1/M``), otherwise ``nan``.
    """

    name: str
    probs: tuple[float, ...]
    q: float = math.nan

    @property
    def max_lag(self) -> int:
        """Largest staleness of the law (the ring buffer keeps ``max_lag + 1`` iterates)."""
        return len(self.probs) - 1

    def pmf(self, lag: np.ndarray | int) -> np.ndarray:
        """Probability of each lag (zero outside ``0..max_lag``), as float64 NumPy."""
        lag = np.asarray(lag)
        p = np.asarray(self.probs, dtype=np.float64)
        inside = (lag >= 0) & (lag <= self.max_lag)
        return np.where(inside, p[np.clip(lag, 0, self.max_lag)], 0.0)

    @property
    def mean(self) -> float:
        """Mean staleness of the (truncated) law."""
        p = np.asarray(self.probs, dtype=np.float64)
        return float(np.dot(np.arange(p.size), p))

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Draw int32 staleness values of the given shape from ``key`` (jittable, no host sync).

        The geometric law is sampled by inversion, ``floor(log U / log q)``, then clipped to
        ``max_lag``; the other laws by inverting their cumulative distribution.
        """
        if self.name == "fixed":
            return jnp.full(shape, self.max_lag, dtype=jnp.int32)
        u = jax.random.uniform(key, shape, dtype=jnp.float32, minval=0.0, maxval=1.0)
        if self.name == "geometric":
            if self.q == 0.0:
                return jnp.zeros(shape, dtype=jnp.int32)
            u = jnp.maximum(1.0 - u, jnp.finfo(jnp.float32).tiny)  # in (0, 1]
            lag = jnp.floor(jnp.log(u) / jnp.float32(math.log(self.q)))
            return jnp.clip(lag, 0, self.max_lag).astype(jnp.int32)
        cdf = np.cumsum(np.asarray(self.probs, dtype=np.float64))
        cdf = jnp.asarray(cdf / cdf[-1], dtype=jnp.float32)
        lag = jnp.searchsorted(cdf, u, side="right")
        return jnp.clip(lag, 0, self.max_lag).astype(jnp.int32)


def _check_int(name: str, value: object, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo} (got {value!r})")
    return int(value)


def geometric(
    n_workers: int, *, max_lag: int | None = None, tail: float = _DEFAULT_TAIL
) -> StalenessLaw:
    """Geometric staleness of ``M`` exponential workers, ``P(tau = l) = (1/M) (1 - 1/M)^l``.

    Mean ``M - 1`` (arXiv 1605.09774, Section 3). Truncated at ``max_lag`` (tail mass moved onto
    ``max_lag``); by default ``max_lag`` is the smallest lag whose tail ``q^(max_lag+1)`` is below
    ``tail``.

    Args:
        n_workers: number of workers ``M >= 1`` (``M = 1`` is synchronous: staleness 0).
        max_lag: truncation lag (>= 0); default from ``tail``.
        tail: tail mass allowed beyond the default ``max_lag``, in (0, 1).

    Example:
        >>> round(geometric(4).mean, 3)
        3.0
    """
    m = _check_int("n_workers", n_workers, 1)
    if not 0.0 < tail < 1.0:
        raise ValueError(f"tail must lie in (0, 1) (got {tail!r})")
    q = 1.0 - 1.0 / m
    if max_lag is None:
        max_lag = 0 if q == 0.0 else max(0, math.ceil(math.log(tail) / math.log(q)) - 1)
    lmax = _check_int("max_lag", max_lag, 0)
    lags = np.arange(lmax + 1)
    p = (1.0 - q) * q**lags
    p[-1] = q**lmax  # tail mass P(tau >= max_lag)
    return StalenessLaw("geometric", tuple(float(v) for v in p), q)


def fixed(tau: int) -> StalenessLaw:
    """Constant staleness ``tau`` (round-robin workers with equal deterministic compute times).

    Example:
        >>> fixed(3).max_lag
        3
    """
    t = _check_int("tau", tau, 0)
    p = np.zeros(t + 1)
    p[t] = 1.0
    return StalenessLaw("fixed", tuple(float(v) for v in p))


def uniform(low: int, high: int) -> StalenessLaw:
    """Staleness uniform on the integers ``low..high`` (inclusive).

    Example:
        >>> uniform(1, 3).mean
        2.0
    """
    lo = _check_int("low", low, 0)
    hi = _check_int("high", high, 0)
    if hi < lo:
        raise ValueError(f"high must be >= low (got low={lo}, high={hi})")
    p = np.zeros(hi + 1)
    p[lo:] = 1.0 / (hi - lo + 1)
    return StalenessLaw("uniform", tuple(float(v) for v in p))


def empirical(histogram: np.ndarray) -> StalenessLaw:
    """Staleness law from a histogram of counts (or weights) over lags ``0..len-1``.

    Typically ``staleness_histogram`` of an exact run, to replay the measured law in fast mode.
    Trailing zero bins are dropped so that the ring buffer is no longer than needed.

    Example:
        >>> empirical(np.array([1, 3, 0])).probs
        (0.25, 0.75)
    """
    h = np.asarray(histogram, dtype=np.float64)
    if h.ndim != 1 or h.size == 0:
        raise ValueError(f"histogram must be a non-empty 1-D array (got shape {h.shape})")
    if not np.all(np.isfinite(h)) or np.any(h < 0) or h.sum() <= 0:
        raise ValueError("histogram must be finite, >= 0 and have a positive total")
    last = int(np.flatnonzero(h)[-1])
    p = h[: last + 1] / h.sum()
    return StalenessLaw("empirical", tuple(float(v) for v in p))


def staleness_histogram(
    staleness: np.ndarray | jax.Array, *, burn_in: int = 0, max_lag: int | None = None
) -> np.ndarray:
    """Counts of each staleness value after ``burn_in`` updates.

    Args:
        staleness: integer staleness per update, shape ``(steps,)`` or ``(seeds, steps)`` (pooled).
        burn_in: number of leading updates to drop (start-up, when every worker read ``w_0``).
        max_lag: last bin; counts of larger values are added to it (a tail bin). Default: the
            largest observed value.

    Returns:
        int64 counts of lags ``0..max_lag``.

    Example:
        >>> staleness_histogram(np.array([0, 1, 1, 5]), max_lag=2).tolist()
        [1, 2, 1]
    """
    s = np.asarray(staleness)
    if s.ndim not in (1, 2) or not np.issubdtype(s.dtype, np.integer):
        raise ValueError(f"staleness must be a 1-D or 2-D integer array (got {s.dtype}, {s.shape})")
    b = _check_int("burn_in", burn_in, 0)
    if b >= s.shape[-1]:
        raise ValueError(f"burn_in must be < the number of updates {s.shape[-1]} (got {b})")
    s = s[..., b:].ravel()
    if np.any(s < 0):
        raise ValueError("staleness must be >= 0")
    top = int(s.max()) if max_lag is None else _check_int("max_lag", max_lag, 0)
    return np.bincount(np.minimum(s, top), minlength=top + 1).astype(np.int64)
