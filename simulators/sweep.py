"""Vectorised sweeps over a grid of hyper-parameters and a set of seeds, on every device.

One compiled call per chunk of configurations, sharded over a :class:`jax.sharding.Mesh` of the
local devices and, after ``jax.distributed.initialize``, split over processes (see
:mod:`simulators._sharding`); results are bit-identical to a one-device run.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P
from numpy.typing import ArrayLike

from simulators._sharding import auto_chunk_size, config_mesh, map_rows, row_spec, shard_map
from simulators.objectives.base import Objective, check_positive_int
from simulators.run import Trajectory, check_run_args, run_core


def product_grid(**axes: ArrayLike) -> dict[str, np.ndarray]:
    """Cartesian product of 1-D axes as arrays of shape ``(len(a1), len(a2), ...)`` ("ij" order).

    Example:
        >>> g = product_grid(learning_rate=[0.1, 0.2, 0.3], momentum=[0.0, 0.9])
        >>> g["learning_rate"].shape
        (3, 2)
    """
    if not axes:
        raise ValueError("product_grid needs at least one axis")
    vectors = []
    for name, values in axes.items():
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 1 or v.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array (got shape {v.shape})")
        vectors.append(v)
    meshes = np.meshgrid(*vectors, indexing="ij")
    return dict(zip(axes, meshes, strict=True))


def check_grid_names(make_optimizer: Callable[..., object], names: Sequence[str]) -> None:
    """Raise ``ValueError`` when ``make_optimizer`` cannot be called with exactly these keywords.

    A name the factory does not accept, or a required parameter the grid does not give, is named
    together with the accepted names. Factories without an inspectable signature are not checked.

    Example:
        >>> def make(learning_rate, momentum=0.0):
        ...     return optax.sgd(learning_rate, momentum)
        >>> check_grid_names(make, ["learning_rate", "momentum"])  # accepted: returns None
        >>> check_grid_names(make, ["lr"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: grid key 'lr' is not a parameter of make; accepted names: ['learning_rate', ...]
        >>> check_grid_names(make, ["momentum"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: grid must give the required parameter(s) ['learning_rate'] of make ...
    """
    try:
        sig = inspect.signature(make_optimizer)
    except (TypeError, ValueError):
        return
    params = sig.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        accepted = None
    else:
        accepted = [
            p.name
            for p in params
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        ]
    fname = getattr(make_optimizer, "__name__", repr(make_optimizer))
    if accepted is not None:
        unknown = [n for n in names if n not in accepted]
        if unknown:
            raise ValueError(
                f"grid key {unknown[0]!r} is not a parameter of {fname}; accepted names: {accepted}"
            )
    required = [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        and p.name not in names
    ]
    if required:
        raise ValueError(
            f"grid must give the required parameter(s) {required} of {fname} "
            f"(got grid keys {list(names)})"
        )


def sweep(
    make_optimizer: Callable[..., optax.GradientTransformation],
    grid: Mapping[str, ArrayLike],
    objective: Objective,
    steps: int,
    key: jax.Array,
    *,
    seeds: int = 1,
    record_every: int = 1,
    x0: ArrayLike | None = None,
    record_coords: Sequence[int] | None = (),
    pass_value: bool = True,
    blowup: float = 1e10,
    devices: Sequence[jax.Device] | None = None,
    mesh: Mesh | None = None,
    chunk_size: int | None = None,
    out_dir: str | os.PathLike | None = None,
) -> Trajectory:
    """Run ``make_optimizer(**point)`` for every grid point and seed, sharded over devices.

    The grid arrays are broadcast to a common shape ``G`` and flattened with the seeds into one
    configuration axis (point-major, seed-minor); run ``(p, s)`` is the run of
    :func:`simulators.simulate` at point ``p`` with key ``jax.random.split(key, seeds)[s]`` (the
    keys are shared by all grid points: common random numbers). The configuration axis is split
    over a mesh of devices (default: all devices this process addresses) and run in chunks of
    ``chunk_size`` configurations; after ``jax.distributed.initialize(...)`` it is also split
    over the processes, and every process returns the whole sweep (see :mod:`simulators._sharding`).
    Each configuration is computed by the same program whatever the devices, chunks or processes,
    so the result is bit-identical to a one-device run. Diverging points are flagged and frozen
    inside the loop, so they never spoil the others.

    Compilation is cached by ``jax.jit`` on the static arguments: the factory object, the mesh,
    the run shape (chunk size, seeds, steps, records) and the objective's static fields, which
    include its loss function, a closure made by each constructor call. Repeated sweeps with the
    same factory and objective instance (new grid values, keys or starts of the same shapes) reuse
    the compiled run; a new objective instance compiles again, even when built identically.

    Args:
        make_optimizer: factory called with traced hyper-parameters, e.g.
            ``lambda learning_rate, momentum: optax.sgd(learning_rate, momentum)``.
        grid: hyper-parameter name -> values (see :func:`product_grid`).
        objective: the problem.
        steps: number of steps, a multiple of ``record_every``.
        key: JAX PRNG key.
        seeds: number of independent seeds, >= 1.
        record_every: stride of the records.
        x0: start, default ``objective.x0``.
        record_coords: coordinates to record (default none, to save memory; ``None`` = all).
        pass_value: pass ``value=loss`` to the optimizer.
        blowup: divergence threshold, as in :func:`simulators.simulate`.
        devices: devices of this process to shard over (default ``jax.local_devices()``).
        mesh: a :class:`jax.sharding.Mesh` of this process's devices instead of ``devices``; the
            configurations are split over all its axes.
        chunk_size: configurations per compiled call (rounded up to a multiple of the device
            count); default from the free device memory
            (:func:`simulators._sharding.auto_chunk_size`). Peak device memory is about two
            chunks' arrays.
        out_dir: with several processes, merge through one ``.npz`` per process in this folder
            instead of ``multihost_utils.process_allgather`` (no cross-process collectives).

    Returns:
        A :class:`Trajectory` whose per-run fields have leading axes ``G + (seeds,)``.

    Raises:
        ValueError: bad run arguments, an empty or non-finite grid, incompatible grid shapes, a
            grid key that ``make_optimizer`` does not accept (or a required parameter it lacks),
            bad devices, mesh or chunk size.

    Example:
        >>> import jax, optax
        >>> from simulators.objectives import quadratic
        >>> g = product_grid(learning_rate=[0.1, 0.5, 1.9], momentum=[0.0, 0.5])
        >>> tr = sweep(lambda learning_rate, momentum: optax.sgd(learning_rate, momentum),
        ...            g, quadratic([1.0]), 20, jax.random.key(0))
        >>> tr.distances.shape
        (3, 2, 1, 21)
    """
    start, coords = check_run_args(objective, steps, x0, record_every, record_coords, blowup)
    seeds = check_positive_int("seeds", seeds)
    if not grid:
        raise ValueError("grid must name at least one hyper-parameter")
    check_grid_names(make_optimizer, list(grid))
    try:
        arrays = np.broadcast_arrays(*[np.asarray(v, dtype=np.float64) for v in grid.values()])
    except ValueError as err:
        raise ValueError("grid arrays must have broadcast-compatible shapes") from err
    shape = arrays[0].shape
    for name, arr in zip(grid, arrays, strict=True):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"grid[{name!r}] must be finite")
    mesh = config_mesh(devices, mesh)

    x0j = jnp.asarray(start)
    dtype = np.dtype(x0j.dtype)
    # configuration c = (point c // seeds, seed c % seeds)
    rows = {
        name: np.repeat(arr.reshape(-1).astype(dtype), seeds)
        for name, arr in zip(grid, arrays, strict=True)
    }
    rows[_SEED] = np.tile(np.arange(seeds, dtype=np.int32), arrays[0].size)
    static = _static(make_optimizer, steps, seeds, record_every, coords, pass_value, blowup)

    def call(m: Mesh, batch: dict[str, jax.Array]) -> Trajectory:
        return _sweep_jit(batch, key, objective, x0j, mesh=m, **static)

    bytes_per_row = _bytes_per_row(objective, x0j, {k: v[:1] for k, v in rows.items()}, static)
    out = map_rows(
        call, rows, mesh=mesh, bytes_per_row=bytes_per_row, chunk_size=chunk_size, out_dir=out_dir
    )

    def unflatten(a: np.ndarray) -> np.ndarray:
        return a.reshape((*shape, seeds, *a.shape[1:]))

    return Trajectory(
        steps=out.steps[0],
        losses=unflatten(out.losses),
        distances=unflatten(out.distances),
        iterates=unflatten(out.iterates),
        stats={k: unflatten(v) for k, v in out.stats.items()},
        diverged=unflatten(out.diverged),
        diverged_at=unflatten(out.diverged_at),
    )


_SEED = "__seed__"


def _static(
    make_optimizer: Callable[..., optax.GradientTransformation],
    steps: int,
    seeds: int,
    record_every: int,
    coords: Sequence[int],
    pass_value: bool,
    blowup: float,
) -> dict[str, Any]:
    """The static (compile-time) arguments of one sweep's compiled runs."""
    return dict(
        make_optimizer=make_optimizer,
        steps=steps,
        seeds=seeds,
        record_every=record_every,
        coords=tuple(int(c) for c in coords),
        pass_value=pass_value,
        blowup=float(blowup),
    )


def sweep_memory(
    make_optimizer: Callable[..., optax.GradientTransformation],
    names: Sequence[str],
    objective: Objective,
    steps: int,
    *,
    seeds: int = 1,
    record_every: int = 1,
    x0: ArrayLike | None = None,
    record_coords: Sequence[int] = (),
    pass_value: bool = True,
    blowup: float = 1e10,
    devices: Sequence[jax.Device] | None = None,
    mesh: Mesh | None = None,
) -> dict[str, int]:
    """Memory of one configuration row of :func:`sweep`, and the chunk size it would choose.

    Same arguments as :func:`sweep` (``names``: the grid's hyper-parameter names). Nothing runs:
    the shapes come from ``jax.eval_shape``.

    Returns:
        ``device_bytes_per_row`` (optimizer state, iterate and outputs on the device),
        ``host_bytes_per_row`` (the row's inputs and returned arrays on the host) and
        ``auto_chunk_size`` (the ``chunk_size`` that ``sweep`` picks when none is given).

    Example:
        >>> from optimizers import heavy_ball
        >>> from simulators.objectives.quadratic import quadratic
        >>> m = sweep_memory(heavy_ball, ["learning_rate", "momentum"], quadratic([1.0, 2.0]), 8)
        >>> sorted(m), m["device_bytes_per_row"] > 0
        (['auto_chunk_size', 'device_bytes_per_row', 'host_bytes_per_row'], True)
    """
    x0j = jnp.asarray(objective.x0 if x0 is None else x0)
    row: dict[str, np.ndarray] = {n: np.zeros(1, np.dtype(x0j.dtype)) for n in names}
    row[_SEED] = np.zeros(1, np.int32)
    static = _static(make_optimizer, steps, seeds, record_every, record_coords, pass_value, blowup)
    per_row = _bytes_per_row(objective, x0j, row, static)
    shapes = jax.eval_shape(
        lambda b: _run_rows(b, jax.random.key(0), objective, x0j, **static), row
    )
    outputs = sum(a.size * a.dtype.itemsize for a in jax.tree_util.tree_leaves(shapes))
    inputs = sum(a.nbytes for a in row.values())
    return {
        "device_bytes_per_row": int(per_row),
        "host_bytes_per_row": int(inputs + outputs),
        "auto_chunk_size": int(auto_chunk_size(per_row, config_mesh(devices, mesh))),
    }


def _run_rows(
    batch: dict[str, jax.Array], key: jax.Array, objective: Objective, x0: jax.Array, **static
) -> Trajectory:
    """The runs of a batch of configurations (vmapped :func:`simulators.run.run_core`)."""
    keys = jax.random.split(key, static["seeds"])

    def one(row: dict[str, jax.Array]) -> Trajectory:
        point = {k: v for k, v in row.items() if k != _SEED}
        return run_core(
            objective,
            static["make_optimizer"](**point),
            static["steps"],
            keys[row[_SEED]],
            x0,
            record_every=static["record_every"],
            coords=np.asarray(static["coords"], dtype=np.int64),
            pass_value=static["pass_value"],
            blowup=static["blowup"],
        )

    return jax.vmap(one)(batch)


def _bytes_per_row(objective: Objective, x0: jax.Array, row: dict, static: dict) -> int:
    """Device bytes of one configuration: twice its outputs (records are stacked once) plus
    eight copies of the iterate and the optimizer state (the step's working set)."""
    out = jax.eval_shape(lambda b: _run_rows(b, jax.random.key(0), objective, x0, **static), row)
    state = jax.eval_shape(
        lambda b: static["make_optimizer"](**{k: v[0] for k, v in b.items() if k != _SEED}).init(
            x0
        ),
        row,
    )
    size = sum(a.size * a.dtype.itemsize for a in jax.tree_util.tree_leaves(out))
    work = sum(a.size * a.dtype.itemsize for a in jax.tree_util.tree_leaves(state))
    return int(2 * size + 8 * (work + x0.size * x0.dtype.itemsize))


@functools.partial(
    jax.jit,
    static_argnames=(
        "mesh",
        "make_optimizer",
        "steps",
        "seeds",
        "record_every",
        "coords",
        "pass_value",
        "blowup",
    ),
)
def _sweep_jit(
    batch: dict[str, jax.Array],
    key: jax.Array,
    objective: Objective,
    x0: jax.Array,
    *,
    mesh: Mesh,
    **static: Any,
) -> Trajectory:
    # compiled once per (mesh, factory, objective structure, chunk size, run shape); each device
    # runs the one-device program on its rows (no collectives)
    rows = row_spec(mesh)
    body = functools.partial(_run_rows, **static)
    return shard_map(body, mesh, in_specs=(rows, P(), P(), P()), out_specs=rows)(
        batch, key, objective, x0
    )
