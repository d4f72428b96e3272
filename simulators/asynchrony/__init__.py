"""Asynchronous SGD simulators: exact event-driven parameter server and fast staleness laws.

Mitliagkas, Zhang, Hadjis, Ré, "Asynchrony begets momentum, with an application to deep learning"
(arXiv 1605.09774). Exact mode simulates the ``M``-worker parameter server event by event (schedule
in NumPy, updates in one jitted scan); fast mode draws the staleness from a law inside JAX and is
vmappable over seeds. Both apply any optax optimizer and record the staleness of every update.
"""

from __future__ import annotations

from simulators.asynchrony._core import AsyncTrajectory
from simulators.asynchrony.ensemble import AsyncEnsemble, async_ensemble
from simulators.asynchrony.exact import simulate_async_exact
from simulators.asynchrony.fast import simulate_async_fast
from simulators.asynchrony.schedule import Schedule, staleness_from_writers, worker_schedule
from simulators.asynchrony.sensor import SensorReading, total_momentum_from_trajectory
from simulators.asynchrony.staleness import (
    StalenessLaw,
    empirical,
    fixed,
    geometric,
    staleness_histogram,
    uniform,
)

__all__ = [
    "AsyncEnsemble",
    "AsyncTrajectory",
    "Schedule",
    "SensorReading",
    "StalenessLaw",
    "async_ensemble",
    "empirical",
    "fixed",
    "geometric",
    "simulate_async_exact",
    "simulate_async_fast",
    "staleness_from_writers",
    "staleness_histogram",
    "total_momentum_from_trajectory",
    "uniform",
    "worker_schedule",
]
