"""Event schedule of an M-worker parameter server, computed exactly and vectorised in NumPy.

Model (Mitliagkas et al., arXiv 1605.09774, Section 3): ``M`` workers loop forever: read the current
model version, compute a gradient for a random time, send it; the server applies updates in the
order they arrive and the worker immediately reads the new model. Update ``n`` (0-based) turns model
version ``n`` into version ``n + 1``. If worker ``j`` writes update ``n`` and its previous write was
update ``p``, it read version ``p + 1`` (version 0 for its first write), so the staleness of update
``n`` is ``tau_n = n - (p + 1)`` (``tau_n = n`` for a first write): the number of updates written by
other workers in between.

Each worker's completion times are the cumulative sums of its compute times; merging all workers'
completions by time gives the order of updates. Ties (deterministic times) are broken by worker
index, so with equal deterministic times the workers write round-robin and ``tau = M - 1`` after the
first round. With equal exponential rates the writer of each update is uniform and independent of
the past, hence ``P(tau = l) = (1/M)(1 - 1/M)^l`` after start-up; with rates ``r_j`` the staleness
is the mixture ``sum_j (r_j / R) Geom(r_j / R)`` with ``R = sum_j r_j`` (mean still ``M - 1``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Schedule(NamedTuple):
    """The order of updates of an event-driven run.

    Attributes:
        staleness: int64 ``(n_updates,)``, ``tau_n`` as defined in the module docstring.
        worker: int64 ``(n_updates,)``, the worker that wrote update ``n``.
        times: float64 ``(n_updates,)``, the (non-decreasing) arrival time of update ``n``.
    """

    staleness: np.ndarray
    worker: np.ndarray
    times: np.ndarray


def _check_rates(n_workers: int, rates: np.ndarray | None) -> np.ndarray:
    if rates is None:
        return np.ones(n_workers)
    r = np.asarray(rates, dtype=np.float64)
    if r.shape != (n_workers,):
        raise ValueError(f"rates must have shape ({n_workers},) = (n_workers,) (got {r.shape})")
    if not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise ValueError("rates must be finite and > 0")
    return r


def staleness_from_writers(worker: np.ndarray) -> np.ndarray:
    """Staleness of each update given the sequence of writers (vectorised, no Python loop).

    Example:
        >>> staleness_from_writers(np.array([0, 1, 0, 0, 1])).tolist()
        [0, 1, 1, 0, 2]
    """
    w = np.asarray(worker)
    n = w.size
    idx = np.arange(n)
    order = np.lexsort((idx, w))  # grouped by worker, chronological inside each group
    prev = np.full(n, -1, dtype=np.int64)
    same = w[order[1:]] == w[order[:-1]]
    prev[order[1:][same]] = order[:-1][same]
    return idx - (prev + 1)


def worker_schedule(
    n_workers: int,
    n_updates: int,
    rng: np.random.Generator,
    *,
    compute: str = "exponential",
    rates: np.ndarray | None = None,
) -> Schedule:
    """Exact event-driven schedule of ``n_updates`` updates by ``n_workers`` workers.

    Args:
        n_workers: ``M >= 1``.
        n_updates: number of updates ``>= 1``.
        rng: the only source of randomness.
        compute: ``"exponential"`` (compute time of worker ``j`` ~ Exp(rate ``r_j``)) or
            ``"deterministic"`` (compute time exactly ``1 / r_j``).
        rates: per-worker speeds ``r_j > 0``, shape ``(M,)``; default all 1.

    Returns:
        A :class:`Schedule`.

    Example:
        >>> s = worker_schedule(3, 7, np.random.default_rng(0), compute="deterministic")
        >>> s.staleness.tolist(), s.worker.tolist()
        ([0, 1, 2, 2, 2, 2, 2], [0, 1, 2, 0, 1, 2, 0])
    """
    if isinstance(n_workers, bool) or not isinstance(n_workers, (int, np.integer)) or n_workers < 1:
        raise ValueError(f"n_workers must be an integer >= 1 (got {n_workers!r})")
    if isinstance(n_updates, bool) or not isinstance(n_updates, (int, np.integer)) or n_updates < 1:
        raise ValueError(f"n_updates must be an integer >= 1 (got {n_updates!r})")
    if compute not in ("exponential", "deterministic"):
        raise ValueError(f"compute must be 'exponential' or 'deterministic' (got {compute!r})")
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng must be a numpy.random.Generator")
    m, n = int(n_workers), int(n_updates)
    r = _check_rates(m, rates)
    share = r / r.sum()
    # Enough completions per worker to cover the first n arrivals (extended below if not).
    per = np.ceil(n * share * 1.1 + 6.0 * np.sqrt(n * share) + 8.0).astype(np.int64)
    k = int(per.max())
    finish = np.zeros((m, 0))
    while True:
        # Extend every worker's sequence of completions (a prefix of one infinite process, so the
        # stopping rule below does not bias the first n arrivals).
        extra = k - finish.shape[1]
        if compute == "exponential":
            durations = rng.standard_exponential((m, extra)) / r[:, None]
        else:
            durations = np.broadcast_to(1.0 / r[:, None], (m, extra))
        start = finish[:, -1:] if finish.shape[1] else np.zeros((m, 1))
        finish = np.concatenate([finish, start + np.cumsum(durations, axis=1)], axis=1)
        flat = finish.ravel()  # worker-major, so a stable sort breaks ties by worker index
        order = np.argsort(flat, kind="stable")[:n]
        t_last = flat[order[-1]]
        # Valid iff every worker's generated completions extend beyond the n-th arrival time.
        if np.all(finish[:, -1] > t_last) or k >= n + 1:
            break
        k *= 2
    worker = order // k
    times = flat[order]
    return Schedule(staleness_from_writers(worker), worker.astype(np.int64), times)
