"""Exact asynchronous simulation: event-driven parameter server, then one jitted scan.

The schedule of updates (who writes when, and which model version each gradient was computed
on) comes from :func:`simulators.asynchrony.schedule.worker_schedule`; the updates themselves are
applied by the scan of :mod:`simulators.asynchrony._core` with a ring buffer just long enough for
the largest staleness of the schedule, so no staleness is ever truncated. This reproduces the
parameter-server model of Mitliagkas et al. (arXiv 1605.09774, Section 3) with any optax optimizer
at the server.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from simulators.asynchrony._checks import check_int, initial_point, make_config
from simulators.asynchrony._core import AsyncTrajectory, run_jit
from simulators.asynchrony.schedule import worker_schedule


def buffer_len_for(max_staleness: int) -> int:
    """Ring-buffer length for a largest staleness, rounded up to a power of two (>= 8).

    Rounding keeps the number of distinct compiled shapes small across seeds.
    """
    need = int(max_staleness) + 1
    return max(8, 1 << (need - 1).bit_length())


def rng_and_key(seed: int | np.random.Generator) -> tuple[np.random.Generator, jax.Array]:
    """NumPy generator for the schedule and a JAX key for gradient noise, both from ``seed``."""
    if isinstance(seed, np.random.Generator):
        rng = seed
    else:
        rng = np.random.default_rng(check_int("seed", seed, 0))
    key = jax.random.key(int(rng.integers(0, 2**31 - 1)))
    return rng, key


def simulate_async_exact(
    objective: Any,
    optimizer: Any,
    steps: int,
    n_workers: int,
    seed: int | np.random.Generator,
    *,
    compute: str = "exponential",
    rates: np.ndarray | None = None,
    x0: Any = None,
    record_every: int = 1,
    record_coords: Any = None,
    record_grads: bool = False,
    pass_value: bool = True,
    pass_staleness: bool = False,
    stochastic: bool = True,
    blowup: float = 1e10,
) -> AsyncTrajectory:
    """Run ``steps`` worker-updates of an ``n_workers`` parameter server on ``objective``.

    Update ``n`` applies ``optimizer`` to the gradient evaluated at the model version that its
    worker read, ``w_{n - tau_n}`` (arXiv 1605.09774, Eq. (1)); the staleness ``tau_n`` follows
    from the exact event schedule (exponential or deterministic compute times, equal or
    heterogeneous rates).

    Args:
        objective: has ``x_star``, ``x0``, ``loss(x, key=None)`` and ``value_and_grad(x, key=None)``
            (or ``grad``); a key selects a noisy/minibatch gradient when the objective has noise.
        optimizer: any optax transformation (wrapped with ``optax.with_extra_args_support``).
        steps: number of worker-updates (>= 1).
        n_workers: ``M >= 1`` (``M = 1`` is synchronous).
        seed: int or ``np.random.Generator`` for the schedule (and the gradient-noise key).
        compute: ``"exponential"`` or ``"deterministic"`` compute times.
        rates: per-worker speeds, shape ``(M,)``; default equal.
        x0: start; default ``objective.x0``.
        record_every: record losses/distances/iterates every this many updates (must divide steps).
        record_coords: indices of the coordinates to record in ``iterates`` (default all).
        record_grads: also record the applied (stale) gradient and the fresh exact gradient.
        pass_value: pass ``value=loss`` (loss at the read version) to the optimizer.
        pass_staleness: pass ``staleness=tau_n`` (int32) to the optimizer.
        stochastic: evaluate gradients with a per-update key (minibatch noise, if any).
        blowup: the run counts as diverged when ``||w - w_*||`` exceeds this factor times
            ``max(||w_0 - w_*||, 1)`` or becomes non-finite; it is then frozen.

    Returns:
        An :class:`AsyncTrajectory` of NumPy arrays with ``worker`` and ``times`` of every update.

    Example:
        >>> import optax
        >>> from simulators.asynchrony import simulate_async_exact
        >>> tr = simulate_async_exact(obj, optax.sgd(0.01), 1000, 8, seed=0)  # doctest: +SKIP
    """
    check_int("n_workers", n_workers, 1)
    start = initial_point(objective, x0)
    steps = check_int("steps", steps, 1)
    rng, key = rng_and_key(seed)
    sched = worker_schedule(n_workers, steps, rng, compute=compute, rates=rates)
    cfg = make_config(
        objective,
        optimizer,
        steps,
        buffer_len_for(int(sched.staleness.max())),
        record_every=record_every,
        record_coords=record_coords,
        record_grads=record_grads,
        pass_value=pass_value,
        pass_staleness=pass_staleness,
        stochastic=stochastic,
        blowup=blowup,
    )
    tr = run_jit(cfg, start, jnp.asarray(sched.staleness, dtype=jnp.int32), key)
    # one transfer at the end: host NumPy arrays, like simulators.simulate
    host = AsyncTrajectory(*jax.device_get(tuple(tr)))
    return host._replace(worker=sched.worker, times=sched.times)
