"""Argument validation shared by the asynchronous simulators."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from simulators.asynchrony._core import Config, _ById


def check_int(name: str, value: Any, lo: int) -> int:
    """Return ``value`` as int or raise ``ValueError`` naming ``name`` and the range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo} (got {value!r})")
    return int(value)


def initial_point(objective: Any, x0: Any) -> jax.Array:
    """The start ``x0`` (default ``objective.x0``), checked against the objective's shape."""
    x_star = jnp.asarray(objective.x_star)
    start = objective.x0 if x0 is None else x0
    if isinstance(start, jax.core.Tracer):
        return start
    arr = np.asarray(start)
    if arr.shape != x_star.shape:
        raise ValueError(f"x0 must have the objective's shape {x_star.shape} (got {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise ValueError("x0 must be finite (got NaN or inf)")
    dtype = x_star.dtype if jnp.issubdtype(x_star.dtype, jnp.floating) else jnp.float32
    return jnp.asarray(arr, dtype=dtype)


def make_config(
    objective: Any,
    optimizer: Any,
    steps: int,
    buffer_len: int,
    *,
    record_every: int,
    record_coords: Any,
    record_grads: bool,
    pass_value: bool,
    pass_staleness: bool,
    stochastic: bool,
    blowup: float,
) -> Config:
    """Validate the common keyword arguments and build the static run configuration."""
    steps = check_int("steps", steps, 1)
    r = check_int("record_every", record_every, 1)
    if steps % r:
        raise ValueError(f"record_every must divide steps (got steps={steps}, record_every={r})")
    dim = int(np.asarray(objective.x_star).size)
    coords = None
    if record_coords is not None:
        coords = tuple(int(c) for c in np.atleast_1d(np.asarray(record_coords)))
        if not coords or min(coords) < 0 or max(coords) >= dim:
            raise ValueError(f"record_coords must be non-empty indices in [0, {dim - 1}]")
    if not (isinstance(blowup, (int, float)) and not np.isnan(blowup) and blowup > 1):
        raise ValueError(f"blowup must be a number in (1, inf] (got {blowup!r})")
    if not hasattr(optimizer, "update") or not hasattr(optimizer, "init"):
        raise ValueError("optimizer must be an optax GradientTransformation")
    return Config(
        objective=_ById(objective),
        optimizer=_ById(optimizer),
        steps=steps,
        buffer_len=check_int("buffer_len", buffer_len, 1),
        record_every=r,
        record_coords=coords,
        record_grads=bool(record_grads),
        pass_value=bool(pass_value),
        pass_staleness=bool(pass_staleness),
        stochastic=bool(stochastic),
        blowup=float(blowup),
    )
