"""Vectorised sweeps: one compiled call over a grid of hyper-parameters and a set of seeds."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpy.typing import ArrayLike

from simulators.objectives.base import Objective, check_positive_int
from simulators.run import Trajectory, check_run_args, run_core, to_numpy


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
) -> Trajectory:
    """Run ``make_optimizer(**point)`` for every grid point and seed in one compiled call.

    The grid arrays are broadcast to a common shape ``G``; the run of :func:`simulators.simulate`
    is vmapped over the seeds (``jax.random.split(key, seeds)``, shared by all grid points: common
    random numbers) and over the flattened grid, then jitted once. Diverging points are flagged and
    frozen inside the loop, so they never spoil the others.

    Compilation is cached by ``jax.jit`` on the static arguments: the factory object, the run
    shape (grid size, seeds, steps, records) and the objective's static fields, which include its
    loss function, a closure made by each constructor call. Repeated sweeps with the same factory
    and objective instance (new grid values, keys or starts of the same shapes) reuse the compiled
    run; a new objective instance compiles again, even when it is built with identical arguments.

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

    Returns:
        A :class:`Trajectory` whose per-run fields have leading axes ``G + (seeds,)``.

    Raises:
        ValueError: bad run arguments, an empty or non-finite grid, incompatible grid shapes, or a
            grid key that ``make_optimizer`` does not accept (or a required parameter it lacks).

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
    flat = {name: arr.reshape(-1) for name, arr in zip(grid, arrays, strict=True)}

    dtype = jnp.asarray(start).dtype
    points = {name: jnp.asarray(v, dtype) for name, v in flat.items()}
    out = to_numpy(
        _sweep_jit(
            points,
            key,
            objective,
            jnp.asarray(start),
            make_optimizer=make_optimizer,
            steps=steps,
            seeds=seeds,
            record_every=record_every,
            coords=tuple(int(c) for c in coords),
            pass_value=pass_value,
            blowup=float(blowup),
        )
    )

    def unflatten(a: np.ndarray) -> np.ndarray:
        return a.reshape(shape + a.shape[1:])

    return Trajectory(
        steps=out.steps[0, 0],
        losses=unflatten(out.losses),
        distances=unflatten(out.distances),
        iterates=unflatten(out.iterates),
        stats={k: unflatten(v) for k, v in out.stats.items()},
        diverged=unflatten(out.diverged),
        diverged_at=unflatten(out.diverged_at),
    )


@functools.partial(
    jax.jit,
    static_argnames=(
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
    points: dict[str, jax.Array],
    key: jax.Array,
    objective: Objective,
    x0: jax.Array,
    *,
    make_optimizer: Callable[..., optax.GradientTransformation],
    steps: int,
    seeds: int,
    record_every: int,
    coords: tuple[int, ...],
    pass_value: bool,
    blowup: float,
) -> Trajectory:
    # compiled once per (factory, objective structure, grid size, run shape)
    def one(point: dict[str, jax.Array], k: jax.Array) -> Trajectory:
        return run_core(
            objective,
            make_optimizer(**point),
            steps,
            k,
            x0,
            record_every=record_every,
            coords=np.asarray(coords, dtype=np.int64),
            pass_value=pass_value,
            blowup=blowup,
        )

    keys = jax.random.split(key, seeds)
    over_seeds = jax.vmap(one, in_axes=(None, 0))
    return jax.vmap(over_seeds, in_axes=(0, None))(points, keys)
