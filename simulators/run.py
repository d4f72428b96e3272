"""Jitted runs of any optax optimizer on an :class:`~simulators.objectives.Objective`.

One run is a single ``lax.scan`` (an outer scan over records, an inner scan over the
``record_every`` steps between them), so long runs stay within memory and nothing in the loop
talks to the host. Divergence is detected inside the loop: once the iterate stops being finite or
its distance to ``x*`` exceeds ``blowup * max(||x0 - x*||, 1)``, the run is frozen (state kept at
its last accepted value), flagged, and its later records read ``inf``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpy.typing import ArrayLike

from optimizers import logged_stats
from simulators.objectives.base import Objective, as_vector, check_positive_int


class Trajectory(NamedTuple):
    """Recorded history of a run (NumPy arrays; a sweep adds leading grid and seed axes).

    Attributes:
        steps: step index of every record, ``(R,)``: ``0, r, 2r, ..., steps``.
        losses: exact loss ``f(x_t)`` at each record (``inf`` after divergence), ``(..., R)``.
        distances: ``||x_t - x*||`` at each record (``inf`` after divergence), ``(..., R)``.
        iterates: recorded coordinates of ``x_t``, ``(..., R, k)`` (frozen after divergence).
        stats: the optimizer's logged statistics (:func:`optimizers.logged_stats`), ``(..., R)``.
        diverged: whether the run diverged, ``(...)``.
        diverged_at: first step at which it diverged, ``-1`` if it did not, ``(...)``.
    """

    steps: np.ndarray
    losses: np.ndarray
    distances: np.ndarray
    iterates: np.ndarray
    stats: dict[str, np.ndarray]
    diverged: np.ndarray
    diverged_at: np.ndarray


def check_run_args(
    objective: Objective,
    steps: int,
    x0: ArrayLike | None,
    record_every: int,
    record_coords: Sequence[int] | None,
    blowup: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate the common run arguments; return ``(x0, coords)`` as NumPy arrays."""
    if not isinstance(objective, Objective):
        raise ValueError("objective must be a simulators.objectives.Objective")
    steps = check_positive_int("steps", steps)
    record_every = check_positive_int("record_every", record_every)
    if steps % record_every:
        raise ValueError(
            f"record_every must divide steps (got steps={steps}, record_every={record_every})"
        )
    start = np.asarray(objective.x0) if x0 is None else as_vector("x0", x0, objective.dim)
    if not np.all(np.isfinite(start)):
        raise ValueError("x0 must be finite (got NaN or inf)")
    if record_coords is None:
        coords = np.arange(objective.dim)
    else:
        coords = np.asarray(record_coords, dtype=np.int64).reshape(-1)
        if coords.size and (coords.min() < 0 or coords.max() >= objective.dim):
            raise ValueError(f"record_coords must lie in [0, {objective.dim - 1}]")
    if not (isinstance(blowup, int | float) and not math.isnan(blowup) and blowup > 1):
        raise ValueError(f"blowup must be a number in (1, inf] (got {blowup!r})")
    return start, coords


def _select(pred: jax.Array, a: Any, b: Any) -> Any:
    return jax.tree_util.tree_map(lambda u, v: jnp.where(pred, u, v), a, b)


def run_core(
    objective: Objective,
    optimizer: optax.GradientTransformation,
    steps: int,
    key: jax.Array,
    x0: jax.Array,
    *,
    record_every: int,
    coords: np.ndarray,
    pass_value: bool,
    blowup: float,
) -> Trajectory:
    """Traceable body of a run (no validation, no jit): used by :func:`simulate` and sweeps."""
    opt = optax.with_extra_args_support(optimizer)
    x0 = jnp.asarray(x0)
    x_star = jnp.asarray(objective.x_star, x0.dtype)
    limit = blowup * jnp.maximum(jnp.linalg.norm(x0 - x_star), 1.0)
    noisy = objective.noisy
    coords = jnp.asarray(coords, jnp.int32)

    def one_step(carry: tuple, _: None) -> tuple[tuple, None]:
        x, state, k, alive, div_at, t = carry
        if noisy:
            k, sub = jax.random.split(k)
            value, g = objective.value_and_grad(x, sub)
        else:
            value, g = objective.value_and_grad(x)
        extra = {"value": value} if pass_value else {}
        updates, new_state = opt.update(g, state, x, **extra)
        new_x = optax.apply_updates(x, updates)
        d = jnp.linalg.norm(new_x - x_star)
        # a non-finite loss at x_t means the run has left the representable range even when the
        # iterate has not; an optimizer that skips such steps would otherwise freeze it unflagged
        ok = jnp.all(jnp.isfinite(new_x)) & (d <= limit) & jnp.isfinite(value)
        div_at = jnp.where(alive & ~ok, t + 1, div_at)
        keep = alive & ok
        x = jnp.where(keep, new_x, x)
        state = _select(keep, new_state, state)
        return (x, state, k, keep, div_at, t + 1), None

    def record(x: jax.Array, state: Any, alive: jax.Array) -> tuple:
        inf = jnp.asarray(jnp.inf, x.dtype)
        loss = jnp.where(alive, objective.loss(x), inf)
        dist = jnp.where(alive, jnp.linalg.norm(x - x_star), inf)
        return loss, dist, x[coords], logged_stats(state)

    def block(carry: tuple, _: None) -> tuple[tuple, tuple]:
        carry, _ = jax.lax.scan(one_step, carry, None, length=record_every)
        x, state, _, alive, _, _ = carry
        return carry, record(x, state, alive)

    state0 = opt.init(x0)
    alive0 = jnp.asarray(True)
    carry0 = (x0, state0, key, alive0, jnp.asarray(-1, jnp.int32), jnp.asarray(0, jnp.int32))
    first = record(x0, state0, alive0)
    carry, rest = jax.lax.scan(block, carry0, None, length=steps // record_every)
    stacked = jax.tree_util.tree_map(
        lambda a, b: jnp.concatenate([a[None], b], axis=0), first, rest
    )
    losses, dists, iters, stats = stacked
    div_at = carry[4]
    return Trajectory(
        steps=jnp.arange(0, steps + 1, record_every),
        losses=losses,
        distances=dists,
        iterates=iters,
        stats=stats,
        diverged=div_at >= 0,
        diverged_at=div_at,
    )


def to_numpy(traj: Trajectory) -> Trajectory:
    """Copy a trajectory to host NumPy arrays (one transfer at the end of a run)."""
    return Trajectory(*jax.device_get(tuple(traj)))


def simulate(
    objective: Objective,
    optimizer: optax.GradientTransformation,
    steps: int,
    key: jax.Array,
    *,
    x0: ArrayLike | None = None,
    record_every: int = 1,
    record_coords: Sequence[int] | None = None,
    pass_value: bool = True,
    blowup: float = 1e10,
) -> Trajectory:
    """Run ``optimizer`` on ``objective`` for ``steps`` steps as one jitted ``lax.scan``.

    Each step evaluates the (noisy, when the objective has noise) loss and gradient at ``x_t`` with
    a fresh sub-key, calls ``optimizer.update(g, state, x_t, value=loss)`` (``value`` only when
    ``pass_value``; optax transformations are wrapped with ``optax.with_extra_args_support``) and
    applies the update. Records are taken at ``t = 0, record_every, ..., steps``; losses there are
    exact (key-free).

    Args:
        objective: the problem.
        optimizer: any optax transformation, including those of :mod:`optimizers`.
        steps: number of steps, >= 1 and a multiple of ``record_every``.
        key: JAX PRNG key (used for the objective's noise).
        x0: start, default ``objective.x0``; must be finite.
        record_every: stride of the records, >= 1.
        record_coords: indices of the coordinates to record; default all.
        pass_value: pass ``value=loss`` to the optimizer.
        blowup: divergence threshold on ``||x_t - x*|| / max(||x0 - x*||, 1)``; ``inf`` flags
            only non-finite iterates. A non-finite loss at ``x_t`` also flags the run, at step
            ``t + 1`` (the step that could not be taken).

    Returns:
        A :class:`Trajectory` of NumPy arrays.

    Example:
        >>> import jax, optax
        >>> from simulators.objectives import quadratic
        >>> traj = simulate(quadratic([1.0, 4.0]), optax.sgd(0.4, 0.25), 50, jax.random.key(0))
        >>> bool(traj.distances[-1] < 1e-6), bool(traj.diverged)
        (True, False)
    """
    start, coords = check_run_args(objective, steps, x0, record_every, record_coords, blowup)
    out = _simulate_jit(
        objective,
        key,
        jnp.asarray(start),
        optimizer=optimizer,
        steps=steps,
        record_every=record_every,
        coords=tuple(int(c) for c in coords),
        pass_value=pass_value,
        blowup=float(blowup),
    )
    return to_numpy(out)


@functools.partial(
    jax.jit,
    static_argnames=("optimizer", "steps", "record_every", "coords", "pass_value", "blowup"),
)
def _simulate_jit(
    objective: Objective,
    key: jax.Array,
    x0: jax.Array,
    *,
    optimizer: optax.GradientTransformation,
    steps: int,
    record_every: int,
    coords: tuple[int, ...],
    pass_value: bool,
    blowup: float,
) -> Trajectory:
    # compiled once per (objective structure, optimizer object, run shape): repeated runs with new
    # keys or starts reuse it
    return run_core(
        objective,
        optimizer,
        steps,
        key,
        x0,
        record_every=record_every,
        coords=np.asarray(coords, dtype=np.int64),
        pass_value=pass_value,
        blowup=blowup,
    )
