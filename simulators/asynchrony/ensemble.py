"""Ensembles of asynchronous runs over seeds: vmapped, sharded over devices, chunked.

The seeds are one configuration axis, split over a mesh of devices (default: all devices of this
process) in chunks and, after ``jax.distributed.initialize``, over processes, as for
:func:`simulators.sweep` (see :mod:`simulators._sharding`); the runs are bit-identical to a
one-device run.

The ensemble mean of the iterates is the quantity that the asynchrony theory predicts: for ``M``
workers with geometric staleness it follows heavy ball with momentum ``1 - 1/M`` and step
``alpha/M`` after a full first step (Mitliagkas et al., arXiv 1605.09774, Theorem 2).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from simulators._sharding import config_mesh, map_rows, row_spec, shard_map
from simulators.asynchrony._checks import check_int, initial_point, make_config
from simulators.asynchrony._core import AsyncTrajectory, Config, run
from simulators.asynchrony.exact import buffer_len_for
from simulators.asynchrony.schedule import worker_schedule
from simulators.asynchrony.staleness import StalenessLaw


class AsyncEnsemble(NamedTuple):
    """Mean and standard error over seeds of an ensemble of asynchronous runs.

    Attributes:
        steps: recorded update counts.
        mean_iterates, sem_iterates: mean and standard error of ``w_t`` (recorded coordinates).
        mean_losses, sem_losses: same for the exact loss.
        mean_distances, sem_distances: same for ``||w_t - w_*||``.
        diverged_fraction: fraction of seeds that diverged.
        runs: the per-seed :class:`AsyncTrajectory` (leading axis = seed).
    """

    steps: np.ndarray
    mean_iterates: np.ndarray
    sem_iterates: np.ndarray
    mean_losses: np.ndarray
    sem_losses: np.ndarray
    mean_distances: np.ndarray
    sem_distances: np.ndarray
    diverged_fraction: float
    runs: AsyncTrajectory


def _runs(cfg: Config, batch: dict[str, jax.Array], x0: jax.Array) -> AsyncTrajectory:
    keys = jax.random.wrap_key_data(batch["key"])
    return jax.vmap(run, in_axes=(None, None, 0, 0))(cfg, x0, batch["staleness"], keys)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _run_many(cfg: Config, mesh: Mesh, batch: dict[str, jax.Array], x0: jax.Array) -> Any:
    # each device runs the vmapped one-device program on its seeds (no collectives)
    rows = row_spec(mesh)
    body = functools.partial(_runs, cfg)
    return shard_map(body, mesh, in_specs=(rows, P()), out_specs=rows)(batch, x0)


def _bytes_per_row(cfg: Config, batch: dict[str, np.ndarray], x0: jax.Array) -> int:
    """Twice one run's outputs and inputs plus two ring buffers of past iterates."""
    out = jax.eval_shape(functools.partial(_runs, cfg), batch, x0)
    leaves = [*jax.tree_util.tree_leaves(out), *batch.values()]
    size = sum(a.size * a.dtype.itemsize for a in leaves)
    return int(2 * size + 2 * cfg.buffer_len * x0.size * x0.dtype.itemsize)


def _mean_sem(a: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(a, dtype=np.float64)
    n = v.shape[0]
    with np.errstate(invalid="ignore"):  # diverged runs record inf
        sem = np.std(v, axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full(v.shape[1:], np.nan)
        return v.mean(axis=0), sem


def async_ensemble(
    objective: Any,
    optimizer: Any,
    steps: int,
    n_seeds: int,
    *,
    law: StalenessLaw | None = None,
    n_workers: int | None = None,
    seed: int = 0,
    compute: str = "exponential",
    rates: np.ndarray | None = None,
    x0: Any = None,
    record_every: int = 1,
    record_coords: Any = None,
    pass_value: bool = True,
    pass_staleness: bool = False,
    stochastic: bool = True,
    blowup: float = 1e10,
    devices: Sequence[jax.Device] | None = None,
    mesh: Mesh | None = None,
    chunk_size: int | None = None,
    out_dir: str | os.PathLike | None = None,
) -> AsyncEnsemble:
    """Run ``n_seeds`` asynchronous runs, vmapped and sharded over devices, and average them.

    Exactly one of ``law`` (fast mode: i.i.d. staleness from the law) and ``n_workers`` (exact
    mode: one event-driven schedule per seed, computed in NumPy, then one vmapped scan) is given.

    Args:
        objective, optimizer, steps: as for :func:`simulate_async_fast`.
        n_seeds: ensemble size (>= 2 for standard errors).
        law: staleness law (fast mode).
        n_workers: number of workers (exact mode), with ``compute`` and ``rates``.
        seed: int seed; fast mode splits ``jax.random.key(seed)``, exact mode spawns NumPy
            generators from ``np.random.default_rng(seed)``.
        x0, record_every, record_coords, pass_value, pass_staleness, stochastic, blowup:
            as for :func:`simulate_async_exact`.
        devices, mesh, chunk_size, out_dir: where and in what pieces the seeds run, as for
            :func:`simulators.sweep`.

    Returns:
        An :class:`AsyncEnsemble`.

    Example:
        >>> ens = async_ensemble(obj, optax.sgd(0.1), 200, 1000, law=geometric(4))  # doctest: +SKIP
    """
    n = check_int("n_seeds", n_seeds, 1)
    check_int("seed", seed, 0)
    if (law is None) == (n_workers is None):
        raise ValueError("give exactly one of law (fast mode) and n_workers (exact mode)")
    steps = check_int("steps", steps, 1)
    start = initial_point(objective, x0)
    kwargs = dict(
        record_every=record_every,
        record_coords=record_coords,
        record_grads=False,
        pass_value=pass_value,
        pass_staleness=pass_staleness,
        stochastic=stochastic,
        blowup=blowup,
    )
    keys = jax.random.split(jax.random.key(seed), 2 * n).reshape(2, n)
    if law is not None:
        if not isinstance(law, StalenessLaw):
            raise ValueError("law must be a StalenessLaw")
        cfg: Config = make_config(objective, optimizer, steps, law.max_lag + 1, **kwargs)
        staleness = jax.vmap(lambda k: law.sample(k, (steps,)))(keys[0])
    else:
        check_int("n_workers", n_workers, 1)
        rngs = np.random.default_rng(seed).spawn(n)
        sched = [worker_schedule(n_workers, steps, g, compute=compute, rates=rates) for g in rngs]
        stale_np = np.stack([s.staleness for s in sched])
        cfg = make_config(
            objective, optimizer, steps, buffer_len_for(int(stale_np.max())), **kwargs
        )
        staleness = jnp.asarray(stale_np, dtype=jnp.int32)
    mesh = config_mesh(devices, mesh)
    x0 = jnp.asarray(start)
    rows = {"staleness": np.asarray(staleness), "key": np.asarray(jax.random.key_data(keys[1]))}
    runs = map_rows(
        lambda m, batch: _run_many(cfg, m, batch, x0),
        rows,
        mesh=mesh,
        bytes_per_row=_bytes_per_row(cfg, {k: v[:1] for k, v in rows.items()}, x0),
        chunk_size=chunk_size,
        out_dir=out_dir,
    )
    mi, si = _mean_sem(runs.iterates)
    ml, sl = _mean_sem(runs.losses)
    md, sd = _mean_sem(runs.distances)
    return AsyncEnsemble(
        steps=np.asarray(runs.steps[0]),
        mean_iterates=mi,
        sem_iterates=si,
        mean_losses=ml,
        mean_distances=md,
        sem_losses=sl,
        sem_distances=sd,
        diverged_fraction=float(np.mean(np.asarray(runs.diverged))),
        runs=runs,
    )
