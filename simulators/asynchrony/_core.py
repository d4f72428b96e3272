"""The jitted update loop shared by the exact and the fast asynchronous simulators.

Given the staleness ``tau_n`` of every update, update ``n`` evaluates the gradient at model version
``v_n = max(n - tau_n, 0)`` (versions before the start are ``w_0``: every worker first reads the
initial model) and the optimizer applies it to the current iterate:
``w_{n+1} = w_n + optimizer.update(grad f(w_{v_n}; z_n), state, w_n)``
(arXiv 1605.09774, Eq. (1) for plain SGD). Past versions live in a ring buffer of ``buffer_len``
iterates; a staleness larger than ``buffer_len - 1`` is clipped to it (the exact simulator sizes the
buffer so that this never happens; the fast one documents the truncation of its law).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from optimizers import logged_stats


class AsyncTrajectory(NamedTuple):
    """Record of one asynchronous run (like ``simulators.Trajectory`` plus the staleness).

    Attributes:
        steps: update counts ``t = 0, r, 2r, ..., steps`` at which the run was recorded.
        losses: exact loss ``f(w_t)`` at the recorded steps (``inf`` after divergence).
        distances: ``||w_t - w_*||`` at the recorded steps (``inf`` after divergence).
        iterates: ``w_t`` (or the selected coordinates) at the recorded steps.
        stats: ``optimizers.logged_stats`` of the optimizer state at the recorded steps.
        diverged: whether an update produced a non-finite iterate or left the divergence ball.
        diverged_at: the first bad update count (iterate version), or -1.
        staleness: staleness of every update actually used, ``n - v_n``, shape ``(steps,)``.
        grads: when recorded, the gradient applied in the step from ``steps[i]`` to ``steps[i] + 1``
            (stale, possibly noisy), shape ``(len(steps) - 1, dim)``; else None.
        fresh_grads: when recorded, the exact gradient at ``w_{steps[i]}`` (same shape); else None.
        worker: exact mode only: the worker that wrote each update; else None.
        times: exact mode only: the arrival time of each update; else None.
    """

    steps: Any
    losses: Any
    distances: Any
    iterates: Any
    stats: dict[str, Any]
    diverged: Any
    diverged_at: Any
    staleness: Any
    grads: Any = None
    fresh_grads: Any = None
    worker: Any = None
    times: Any = None


class _ById:
    """Hashable-by-identity holder: objectives and optimizers become static jit arguments."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ById) and other.obj is self.obj


def _select(pred: jax.Array, a: Any, b: Any) -> Any:
    return jax.tree_util.tree_map(lambda u, v: jnp.where(pred, u, v), a, b)


def _value_and_grad(objective: Any, x: jax.Array, key: jax.Array | None) -> tuple[Any, Any]:
    if hasattr(objective, "value_and_grad"):
        return objective.value_and_grad(x, key)
    return objective.loss(x, key), objective.grad(x, key)


class Config(NamedTuple):
    """Static configuration of one compiled run (hashable)."""

    objective: _ById
    optimizer: _ById
    steps: int
    buffer_len: int
    record_every: int
    record_coords: tuple[int, ...] | None
    record_grads: bool
    pass_value: bool
    pass_staleness: bool
    stochastic: bool
    blowup: float


def run(cfg: Config, x0: jax.Array, staleness: jax.Array, key: jax.Array) -> AsyncTrajectory:
    """Traceable body of a run (vmappable over ``x0``, ``staleness`` and ``key``)."""
    objective = cfg.objective.obj
    opt = optax.with_extra_args_support(cfg.optimizer.obj)
    lb = cfg.buffer_len
    r = cfg.record_every
    n_chunks = cfg.steps // r
    x_star = jnp.asarray(objective.x_star, dtype=x0.dtype)
    radius = cfg.blowup * jnp.maximum(jnp.linalg.norm(x0 - x_star), 1.0)

    def step(carry, tau):
        x, state, buf, div_at, n = carry
        tau_e = jnp.minimum(jnp.minimum(tau, n), lb - 1).astype(jnp.int32)
        x_read = lax.dynamic_index_in_dim(buf, (n - tau_e) % lb, keepdims=False)
        k = jax.random.fold_in(key, n) if cfg.stochastic else None
        loss, g = _value_and_grad(objective, x_read, k)
        extra: dict[str, Any] = {}
        if cfg.pass_value:
            extra["value"] = loss
        if cfg.pass_staleness:
            extra["staleness"] = tau_e
        upd, new_state = opt.update(g, state, x, **extra)
        x_new = optax.apply_updates(x, upd)
        ok = jnp.all(jnp.isfinite(x_new)) & (jnp.linalg.norm(x_new - x_star) <= radius)
        ok = ok & (div_at < 0)
        div_at = jnp.where((div_at < 0) & ~ok, n + 1, div_at)
        x_next = jnp.where(ok, x_new, x)
        state = _select(ok, new_state, state)
        buf = lax.dynamic_update_index_in_dim(buf, x_next, (n + 1) % lb, 0)
        return (x_next, state, buf, div_at, n + 1), (tau_e, g)

    def record(x, state, div_at):
        bad = div_at >= 0
        loss = jnp.where(bad, jnp.inf, objective.loss(x))
        dist = jnp.where(bad, jnp.inf, jnp.linalg.norm(x - x_star))
        it = x if cfg.record_coords is None else x[jnp.asarray(cfg.record_coords)]
        return loss, dist, it, logged_stats(state)

    def step_tau(carry, tau):
        carry, (tau_e, _) = step(carry, tau)
        return carry, tau_e

    def chunk(carry, taus):
        x = carry[0]
        carry, (t0, g0) = step(carry, taus[0])
        if r > 1:
            carry, t_rest = lax.scan(step_tau, carry, taus[1:])
            used = jnp.concatenate([t0[None], t_rest])
        else:
            used = t0[None]
        out = record(carry[0], carry[1], carry[3])
        if cfg.record_grads:
            out = (*out, g0, _value_and_grad(objective, x, None)[1])
        return carry, (used, out)

    state0 = opt.init(x0)
    buf0 = jnp.broadcast_to(x0, (lb, *x0.shape))
    carry0 = (x0, state0, buf0, jnp.asarray(-1, jnp.int32), jnp.asarray(0, jnp.int32))
    rec0 = record(x0, state0, carry0[3])
    carry, (used, recs) = lax.scan(chunk, carry0, staleness.reshape(n_chunks, r))
    div_at = carry[3]

    def cat(first, rest):
        return jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), first, rest)

    losses, dists, its, stats = cat(rec0, recs[:4])
    grads, fresh = (recs[4], recs[5]) if cfg.record_grads else (None, None)
    return AsyncTrajectory(
        steps=jnp.arange(n_chunks + 1, dtype=jnp.int32) * r,
        losses=losses,
        distances=dists,
        iterates=its,
        stats=stats,
        diverged=div_at >= 0,
        diverged_at=div_at,
        staleness=used.reshape(-1),
        grads=grads,
        fresh_grads=fresh,
    )


run_jit = jax.jit(run, static_argnums=0)
