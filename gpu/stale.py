"""Stale-gradient emulation of M asynchronous workers on one device.

Asynchronous SGD (Mitliagkas et al. 2016, arXiv 1605.09774, Sec. 2) applies at step t a gradient
read at the parameters of step ``t - tau_t``: ``w_{t+1} = w_t - alpha grad f(w_{t - tau_t})``. The
trainer keeps a ring buffer of the last ``R = max_tau + 1`` parameter snapshots, evaluates the
gradient (and the loss handed to the optimizer as ``value=``) at ``w_{t - tau_t}`` and applies the
update to ``w_t``. Start-up follows the paper's convention ``w_s = w_0`` for ``s < 0``: the delay is
clipped to ``min(tau_t, t)``.

Staleness laws (sampled here, in JAX, from an explicit key):

- ``geometric(M)``: ``P(tau = l) = (1 - q) q^l``, ``q = 1 - 1/M``, mean ``M - 1`` -- the queueing
  model of M workers with exponential compute times (paper, Sec. 3). Its support is unbounded;
  delays above ``max_tau`` are set to ``max_tau`` (default: the smallest ``max_tau`` with tail mass
  ``q^(max_tau + 1) <= 1e-4``).
- ``fixed(tau)``: round-robin workers, every gradient ``tau`` steps old.
- ``uniform(max_tau)``: ``tau`` uniform on ``{0, ..., max_tau}``.
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
    :func:`fixed` or :func:`uniform`."""

    kind: str
    max_tau: int
    workers: int = 1
    tau: int = 0

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
        q = 1.0 - 1.0 / self.workers
        p = (1.0 - q) * q ** np.arange(self.max_tau + 1, dtype=np.float64)
        p[-1] = q**self.max_tau
        return p


def _check_int(name: str, value: int, lo: int, hi: int = 1 << 20) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}] (got {value!r})")
    return int(value)


def geometric(workers: int, max_tau: int | None = None) -> StalenessLaw:
    """Geometric staleness of ``workers`` = M asynchronous workers (mean ``M - 1``).

    Example:
        >>> geometric(16).max_tau
        142
    """
    M = _check_int("workers", workers, 1)
    if max_tau is None:
        max_tau = 0 if M == 1 else math.ceil(math.log(GEOMETRIC_TAIL) / math.log(1 - 1 / M)) - 1
    return StalenessLaw("geometric", _check_int("max_tau", max_tau, 0), workers=M)


def fixed(tau: int) -> StalenessLaw:
    """Every gradient is exactly ``tau`` steps old (``tau = 0``: synchronous)."""
    t = _check_int("tau", tau, 0)
    return StalenessLaw("fixed", t, tau=t)


def uniform(max_tau: int) -> StalenessLaw:
    """Delay uniform on ``{0, ..., max_tau}`` (mean ``max_tau / 2``)."""
    return StalenessLaw("uniform", _check_int("max_tau", max_tau, 0))


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
