"""Measurements of yellowfin-curvature-oracle: YellowFin with Hessian-vector curvature.

:func:`optimizers.yellowfin` with ``curvature="hessian"`` needs the minibatch loss at every step
(``update(..., loss_fn=f)``), which :func:`simulators.sweep` does not pass; the loops here are a
``lax.scan`` over steps, vmapped over seeds, that draw the minibatch, pass its loss and its
gradient, and record the exact loss, the distance to the optimum (NQM) and the logged statistics.
Nothing here imports a prediction: the spectrum of the NQM is read from the objective, the
Hessian of the network from ``jax.hessian``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.library import _singlestep_nqm_runs as nqm_runs
from optimizers import logged_stats, yellowfin

STATS = ("learning_rate", "momentum", "h_min", "h_max", "grad_var", "dist_to_opt")


def oracle_yellowfin(every: int, steps: int) -> optax.GradientTransformationExtraArgs:
    """YellowFin, official defaults, curvature from ``steps`` Lanczos steps every ``every``."""
    return yellowfin(curvature="hessian", curvature_every=every, lanczos_steps=steps)


def gradient_evaluations_per_step(every: int, steps: int) -> float:
    """What one step costs, counted in gradient evaluations ``g``.

    1 (the step's gradient) + (1 + 2 m) / k: every k-th step one linearisation of the gradient
    (counted as one g: a forward and backward pass that keeps its residuals) and m
    Hessian-vector products (forward-over-reverse, counted as 2 g each: a tangent forward and a
    tangent backward pass through the same graph).
    """
    return 1.0 + (1.0 + 2.0 * steps) / every


@functools.partial(jax.jit, static_argnames=("cfg_key", "steps", "record_every", "seeds"))
def _nqm_scan(obj, key, *, cfg_key, steps, record_every, seeds):
    every, m = cfg_key
    opt = oracle_yellowfin(every, m)
    x_star = jnp.asarray(obj.x_star)

    def one_run(k: jax.Array) -> tuple:
        x0 = jnp.asarray(obj.x0)

        def step(carry, _):
            x, s, k = carry
            k, sub = jax.random.split(k)
            value, g = obj.value_and_grad(x, sub)
            u, s = opt.update(g, s, x, value=value, loss_fn=lambda q: obj.loss(q, sub))
            return (optax.apply_updates(x, u), s, k), None

        def block(carry, _):
            carry, _ = jax.lax.scan(step, carry, None, length=record_every)
            x, s, _ = carry
            return carry, (obj.loss(x), jnp.linalg.norm(x - x_star), logged_stats(s))

        carry0 = (x0, opt.init(x0), k)
        _, rec = jax.lax.scan(block, carry0, None, length=steps // record_every)
        return rec

    return jax.vmap(one_run)(jax.random.split(key, seeds))


def nqm_run(cfg: Any, dim: int, key: jax.Array) -> dict[str, Any]:
    """YellowFin with the Hessian oracle on the NQM of ``dim`` directions (``kappa = dim^p``)."""
    obj = nqm_runs.nqm(dim, cfg.p, cfg.batch_size, cfg.start)
    with jax.enable_x64(True):
        loss, dist, st = _nqm_scan(
            obj,
            key,
            cfg_key=(cfg.curvature_every, cfg.lanczos_steps),
            steps=cfg.steps,
            record_every=cfg.record_every,
            seeds=cfg.seeds,
        )
        loss, dist = np.asarray(loss, np.float64), np.asarray(dist, np.float64)
        st = {k: np.asarray(st[k], np.float64) for k in STATS}
    t = np.arange(1, cfg.steps // cfg.record_every + 1) * cfg.record_every
    j0 = int(np.searchsorted(t, cfg.read_from))
    late = {k: v[:, j0:].mean(-1) for k, v in st.items()}
    late["dist"], late["loss"] = dist[:, j0:].mean(-1), loss[:, j0:].mean(-1)
    finite = bool(np.all(np.isfinite(loss)))
    moved = nqm_runs.drift(st["learning_rate"][:, j0:], st["momentum"][:, j0:])
    h = np.asarray(obj.params["h"], np.float64)
    c = np.asarray(obj.params["noise_std"], np.float64) ** 2
    return {
        "dim": dim,
        "t": t,
        "j0": j0,
        "loss": loss,
        "dist": dist,
        "st": st,
        "late": late,
        "h": h,
        "c": c,
        "drift": moved,
        "settled": bool(finite and moved <= cfg.drift_tol),
    }


def nqm_speed(cfg: Any, main: dict[str, Any], key: jax.Array) -> list[dict[str, Any]]:
    """Iterations to the ladder of targets against heavy ball re-tuned per target (the grid of
    singlestep-yellowfin-nqm), at the main dimension; the records start at step 0."""
    ladder_cfg = _LadderConfig(
        dim=main["dim"],
        p=cfg.p,
        batch_size=cfg.batch_size,
        start=cfg.start,
        steps=cfg.steps,
        seeds=cfg.seeds,
        record_every=cfg.record_every,
        hb_alphas=cfg.hb_alphas,
        hb_mus=cfg.hb_mus,
        horizons=cfg.horizons,
    )
    obj = nqm_runs.nqm(main["dim"], cfg.p, cfg.batch_size, cfg.start)
    loss0 = float(obj.loss(jnp.asarray(obj.x0)))
    losses = np.concatenate([np.full((cfg.seeds, 1), loss0), main["loss"]], -1)
    t = np.concatenate([[0], main["t"]])
    rows, _ = nqm_runs.speed_ladder(ladder_cfg, losses, t, key)
    return rows


class _LadderConfig:
    """The fields :func:`_singlestep_nqm_runs.speed_ladder` reads."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)
