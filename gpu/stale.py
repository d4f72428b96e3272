"""Stale-gradient emulation of M asynchronous workers on one device.

Asynchronous SGD (Mitliagkas et al. 2016, arXiv 1605.09774, Sec. 2) applies at step t a gradient
read at the parameters of step ``t - tau_t``: ``w_{t+1} = w_t - alpha grad f(w_{t - tau_t})``. The
trainer keeps a ring buffer of the last ``R = max_tau + 1`` parameter snapshots, evaluates the
gradient (and the loss handed to the optimizer as ``value=``) at ``w_{t - tau_t}`` and applies the
update to ``w_t``. Start-up follows the paper's convention ``w_s = w_0`` for ``s < 0``: the delay is
clipped to ``min(tau_t, t)``.

Staleness laws (sampled here, in JAX, from an explicit key), the same laws as the simulators'
fast mode (``simulators.asynchrony``; ``gpu`` may not import ``simulators``, so they are defined
again here):

- ``geometric(M)``: ``P(tau = l) = (1 - q) q^l``, ``q = 1 - 1/M``, mean ``M - 1`` -- the queueing
  model of M workers with exponential compute times (paper, Sec. 3). Its support is unbounded;
  delays above ``max_tau`` are set to ``max_tau`` (default: the smallest ``max_tau`` with tail mass
  ``q^(max_tau + 1) <= tail``, ``tail = 1e-4``). The simulators truncate at ``1e-6``; here every
  lag costs one snapshot of all parameters, so the default is coarser (``M = 16``: 143 snapshots
  instead of 215). Pass ``tail=1e-6`` (or the same ``max_tau``) to get the simulators' law.
- ``fixed(tau)``: round-robin workers, every gradient ``tau`` steps old.
- ``uniform(max_tau)``: ``tau`` uniform on ``{0, ..., max_tau}``.
- ``empirical(histogram)``: a measured histogram of delays (e.g. ``staleness_histogram`` of the
  simulators' exact mode), replayed here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

#: Tail mass of the geometric law allowed beyond the default truncation.
GEOMETRIC_TAIL = 1e-4


@dataclass(frozen=True)
class StalenessLaw:
    """A distribution of delays on ``{0, ..., max_tau}``; build with :func:`geometric`,
    :func:`fixed`, :func:`uniform` or :func:`empirical`.

    Attributes:
        kind: ``"geometric"``, ``"fixed"``, ``"uniform"`` or ``"empirical"``.
        max_tau: largest delay.
        workers: ``M`` of the geometric law.
        tau: the delay of the fixed law.
        probs: probabilities of ``0..max_tau`` of the empirical law (empty otherwise).
    """

    kind: str
    max_tau: int
    workers: int = 1
    tau: int = 0
    probs: tuple[float, ...] = ()

    @property
    def buffer_size(self) -> int:
        """Snapshots the ring buffer holds: ``max_tau + 1``."""
        return self.max_tau + 1

    def sample(self, key: jax.Array) -> jax.Array:
        """One delay (int32 scalar) drawn from ``key``."""
        if self.kind == "fixed":
            return jnp.asarray(self.tau, jnp.int32)
        if self.kind == "uniform":
            return jax.random.randint(key, (), 0, self.max_tau + 1, dtype=jnp.int32)
        if self.kind == "empirical":
            # inversion of the cumulative distribution: tau = #{l : F(l) <= U}, U uniform on [0, 1)
            cdf = np.cumsum(np.asarray(self.probs, dtype=np.float64))
            cdf = jnp.asarray(cdf / cdf[-1], jnp.float32)
            u = jax.random.uniform(key, (), jnp.float32)
            tau = jnp.searchsorted(cdf, u, side="right")
            return jnp.minimum(tau, self.max_tau).astype(jnp.int32)
        if self.workers == 1:
            return jnp.asarray(0, jnp.int32)
        # inversion: P(floor(log U / log q) >= l) = P(U <= q^l) = q^l for U uniform on (0, 1]
        u = 1.0 - jax.random.uniform(key, (), jnp.float32)
        tau = jnp.floor(jnp.log(u) / math.log(1.0 - 1.0 / self.workers))
        return jnp.minimum(tau, self.max_tau).astype(jnp.int32)

    def pmf(self) -> np.ndarray:
        """Probabilities of ``tau = 0, ..., max_tau`` (the truncated tail lumped at ``max_tau``)."""
        if self.kind == "fixed":
            p = np.zeros(self.max_tau + 1)
            p[self.tau] = 1.0
            return p
        if self.kind == "uniform":
            return np.full(self.max_tau + 1, 1.0 / (self.max_tau + 1))
        if self.kind == "empirical":
            return np.asarray(self.probs, dtype=np.float64)
        q = 1.0 - 1.0 / self.workers
        p = (1.0 - q) * q ** np.arange(self.max_tau + 1, dtype=np.float64)
        p[-1] = q**self.max_tau
        return p


def _check_int(name: str, value: int, lo: int, hi: int = 1 << 20) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}] (got {value!r})")
    return int(value)


def geometric(
    workers: int, max_tau: int | None = None, *, tail: float = GEOMETRIC_TAIL
) -> StalenessLaw:
    """Geometric staleness of ``workers`` = M asynchronous workers (mean ``M - 1``).

    ``P(tau = l) = (1/M) (1 - 1/M)^l`` (arXiv 1605.09774, Sec. 3), truncated at ``max_tau``, by
    default the smallest lag with tail mass ``(1 - 1/M)^(max_tau + 1) <= tail``.

    Args:
        workers: ``M >= 1`` (1: synchronous).
        max_tau: truncation lag, >= 0 (overrides ``tail``).
        tail: tail mass allowed beyond the default truncation, in (0, 1); the simulators use 1e-6.

    Example:
        >>> geometric(16).max_tau, geometric(16, tail=1e-6).max_tau
        (142, 214)
    """
    M = _check_int("workers", workers, 1)
    if isinstance(tail, bool) or not isinstance(tail, int | float) or not 0.0 < tail < 1.0:
        raise ValueError(f"tail must be a number in (0, 1) (got {tail!r})")
    if max_tau is None:
        max_tau = 0 if M == 1 else math.ceil(math.log(tail) / math.log(1 - 1 / M)) - 1
    return StalenessLaw("geometric", _check_int("max_tau", max_tau, 0), workers=M)


def fixed(tau: int) -> StalenessLaw:
    """Every gradient is exactly ``tau`` steps old (``tau = 0``: synchronous)."""
    t = _check_int("tau", tau, 0)
    return StalenessLaw("fixed", t, tau=t)


def uniform(max_tau: int) -> StalenessLaw:
    """Delay uniform on ``{0, ..., max_tau}`` (mean ``max_tau / 2``)."""
    return StalenessLaw("uniform", _check_int("max_tau", max_tau, 0))


def empirical(histogram: Any) -> StalenessLaw:
    """Delays drawn from a histogram of counts (or weights) over the lags ``0..len - 1``.

    Typically a staleness histogram measured by the simulators' exact mode, replayed on a real
    network. Trailing zero bins are dropped, so the ring buffer is no longer than needed.

    Raises:
        ValueError: when the histogram is not a non-empty 1-D array of finite values >= 0 with a
            positive total, or has more than ``2**20`` bins.

    Example:
        >>> law = empirical([1, 3, 0])
        >>> law.max_tau, law.pmf().tolist()
        (1, [0.25, 0.75])
    """
    h = np.asarray(histogram, dtype=np.float64)
    if h.ndim != 1 or h.size == 0:
        raise ValueError(f"histogram must be a non-empty 1-D array (got shape {h.shape})")
    if not np.all(np.isfinite(h)) or np.any(h < 0) or h.sum() <= 0:
        raise ValueError("histogram must be finite, >= 0 and have a positive total")
    last = int(np.flatnonzero(h)[-1])
    _check_int("histogram length (max_tau)", last, 0)
    p = h[: last + 1] / h.sum()
    return StalenessLaw("empirical", last, probs=tuple(float(v) for v in p))


def init_buffer(params: Any, law: StalenessLaw) -> Any:
    """A ring buffer of ``law.buffer_size`` copies of ``params`` (leading axis: slot)."""
    return jax.tree_util.tree_map(
        lambda p: jnp.broadcast_to(p, (law.buffer_size, *p.shape)).copy(), params
    )


def push_and_read(
    buffer: Any, params: Any, step: jax.Array, tau: jax.Array, size: int
) -> tuple[Any, Any, jax.Array]:
    """Write ``params`` (those of ``step``) into slot ``step % size`` and read the snapshot of step
    ``step - min(tau, step)``. Returns ``(buffer, stale_params, effective_tau)``."""
    tau = jnp.minimum(tau, step).astype(jnp.int32)
    slot = step % size
    buffer = jax.tree_util.tree_map(
        lambda b, p: jax.lax.dynamic_update_index_in_dim(b, p.astype(b.dtype), slot, 0),
        buffer,
        params,
    )
    read = (step - tau) % size
    stale = jax.tree_util.tree_map(
        lambda b: jax.lax.dynamic_index_in_dim(b, read, 0, keepdims=False), buffer
    )
    return buffer, stale, tau
