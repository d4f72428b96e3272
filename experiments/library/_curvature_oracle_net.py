"""The real-network bed of yellowfin-curvature-oracle: a ``tanh`` MLP on the digits.

The objective is :func:`gpu.fullbatch.digits_mlp_problem` (float64, cross-entropy plus weight decay
``lambda``, so a strict minimiser exists). Measurements, each on its own code path:

- The minimiser ``x*``: :func:`gpu.fullbatch.polish` (L-BFGS then exact Newton steps) from the
  network's initialisation; the curvature of the objective there: the extreme eigenvalues of the
  exact full-batch Hessian (``Polished.eigenvalues``; the objective's curvature, which SingleStep's
  robust region is about).
- The noise there: ``C = (1 / B) (1 / N) sum_i ||grad l_i(x*) - grad f(x*)||^2``, the exact
  variance of a with-replacement minibatch gradient of ``B`` examples (the runs draw with
  replacement), from per-example gradients over the whole training set (the weight decay's gradient
  is the same for every example and cancels).
- Why an oracle of the minibatch Hessian may not see that curvature: the lowest eigenvalue of the
  exact Hessian of the minibatch loss at ``x*`` over ``truth_batches`` batches, and of the full
  Hessian at each seed's last iterate.
- The runs: YellowFin with the Hessian oracle (``curvature="hessian"``, the step's minibatch loss
  passed as ``loss_fn``), the official ``||g||^2`` curvature for comparison, and minibatch heavy
  ball on a learning-rate x momentum grid; a ``lax.scan`` over steps vmapped over seeds (and grid
  points), the full-batch loss, ``||x - x*||`` and the logged statistics recorded every
  ``net_record_every`` steps.

Nothing here imports a prediction; SingleStep is evaluated in :mod:`._curvature_oracle_checks`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import runtime
from experiments.library import _singlestep_nqm_runs as nqm_runs
from gpu.data import load_digits
from gpu.fullbatch import FlatProblem, digits_mlp_problem, polish
from optimizers import heavy_ball, logged_stats, yellowfin

STATS = ("learning_rate", "momentum", "h_min", "h_max", "grad_var", "dist_to_opt")
ARMS = ("hessian", "gradient_norm")


def net_problem(cfg: Any) -> FlatProblem:
    """The digits ``tanh`` MLP of the configuration (initialisation seed 0)."""
    return digits_mlp_problem(
        load_digits(), hidden=cfg.net_hidden, weight_decay=cfg.net_weight_decay, n_train=cfg.net_n
    )


def minibatch_grad_var(problem: FlatProblem, points: np.ndarray, batch: int) -> np.ndarray:
    """Exact with-replacement minibatch gradient variance at each row of ``points``.

    ``C(x) = (1 / B) mean_i ||grad l_i(x) - mean_j grad l_j(x)||^2`` (per-example gradients of the
    ``N`` training examples; YellowFin's C, arXiv 1706.03471 Sec. 3.2, is an estimate of it).
    """
    rows = jnp.arange(problem.num_examples)
    with jax.enable_x64(True):
        one = jax.grad(lambda w, i: problem.batch_loss(w, i[None]))

        @jax.jit
        def var(w: jax.Array) -> jax.Array:
            g = jax.vmap(one, (None, 0))(w, rows)
            return jnp.mean(jnp.sum((g - g.mean(0)) ** 2, -1)) / batch

        return np.array([float(var(jnp.asarray(p, jnp.float64))) for p in np.atleast_2d(points)])


def _hessian_extremes(hess: Any, points: np.ndarray, *extra: Any) -> np.ndarray:
    """Lowest and highest eigenvalue ``(len(points), 2)`` of ``hess(point, *extra_i)`` at each
    point, compiled once (:func:`gpu.fullbatch.hessian_eigenvalues` compiles per call and takes
    the full-batch loss only)."""
    with jax.enable_x64(True):
        f = jax.jit(hess)
        out = []
        for i, p in enumerate(points):
            h = np.asarray(f(jnp.asarray(p, jnp.float64), *(e[i] for e in extra)), np.float64)
            out.append(np.linalg.eigvalsh(0.5 * (h + h.T))[[0, -1]])
    return np.array(out)


def truth(cfg: Any, problem: FlatProblem) -> dict[str, np.ndarray]:
    """The minimiser and the true statistics there (module docstring)."""
    pol = polish(problem, problem.init)
    rng = np.random.default_rng(cfg.net_truth_seed)
    rows = rng.integers(0, problem.num_examples, (cfg.truth_batches, cfg.net_batch))
    mb = _hessian_extremes(
        jax.hessian(problem.batch_loss),
        np.repeat(pol.point[None], cfg.truth_batches, 0),
        jnp.asarray(rows),
    )
    return {
        "x_star": pol.point,
        "f_star": np.asarray(pol.loss),
        "grad_norm": np.asarray(pol.grad_norm),
        "h_min": np.asarray(pol.eigenvalues[0]),
        "h_max": np.asarray(pol.eigenvalues[-1]),
        "grad_var": minibatch_grad_var(problem, pol.point, cfg.net_batch)[0],
        "minibatch_h_min": mb[:, 0],
        "minibatch_h_max": mb[:, 1],
        "f_init": np.asarray(float(jax.jit(problem.loss)(jnp.asarray(problem.init)))),
    }


def _minibatch_scan(
    problem: FlatProblem,
    opt: optax.GradientTransformationExtraArgs,
    key: jax.Array,
    *,
    batch: int,
    steps: int,
    every: int,
    record: Any,
) -> tuple[jax.Array, Any]:
    """One run of ``opt`` on with-replacement minibatches of ``batch`` examples from the
    initialisation: ``steps`` steps scanned in blocks of ``every``, ``record(x)`` (and the logged
    statistics when ``opt`` keeps them) after each block. Each step passes the minibatch's value
    and loss function (``update(..., value=, loss_fn=)``). Returns ``(last x, records)``."""
    x0 = jnp.asarray(problem.init)

    def step(carry, _):
        x, s, k = carry
        k, sub = jax.random.split(k)
        rows = jax.random.randint(sub, (batch,), 0, problem.num_examples)

        def f(w: jax.Array) -> jax.Array:
            return problem.batch_loss(w, rows)

        value, g = jax.value_and_grad(f)(x)
        u, s = opt.update(g, s, x, value=value, loss_fn=f)
        return (optax.apply_updates(x, u), s, k), None

    def block(carry, _):
        carry, _ = jax.lax.scan(step, carry, None, length=every)
        return carry, record(carry[0], carry[1])

    carry, rec = jax.lax.scan(block, (x0, opt.init(x0), key), None, length=steps // every)
    return carry[0], rec


def _yellowfin_scan(cfg: Any, problem: FlatProblem, arm: str, x_star: np.ndarray, key: jax.Array):
    if arm == "hessian":
        opt = yellowfin(
            curvature="hessian",
            curvature_every=cfg.curvature_every,
            lanczos_steps=cfg.lanczos_steps,
        )
    else:
        opt = yellowfin()
    xs = jnp.asarray(x_star)

    def one_run(k: jax.Array) -> tuple:
        return _minibatch_scan(
            problem,
            opt,
            k,
            batch=cfg.net_batch,
            steps=cfg.net_steps,
            every=cfg.net_record_every,
            record=lambda x, s: (problem.loss(x), jnp.linalg.norm(x - xs), logged_stats(s)),
        )

    return jax.jit(jax.vmap(one_run))(jax.random.split(key, cfg.net_seeds))


def yellowfin_arm(
    cfg: Any, problem: FlatProblem, arm: str, tr: dict, key: jax.Array
) -> dict[str, np.ndarray]:
    """One YellowFin arm: full-batch loss, distance to ``x*``, logged statistics; the exact noise
    and the full Hessian's extreme eigenvalues at each seed's last iterate."""
    with jax.enable_x64(True):
        x_last, (loss, dist, st) = _yellowfin_scan(cfg, problem, arm, tr["x_star"], key)
        out = {k: np.asarray(st[k], np.float64) for k in STATS}
        out["loss"], out["dist"] = np.asarray(loss, np.float64), np.asarray(dist, np.float64)
        x_last = np.asarray(x_last, np.float64)
    out["x_last"] = x_last
    out["grad_var_last"] = minibatch_grad_var(problem, x_last, cfg.net_batch)
    out["hessian_extremes_last"] = _hessian_extremes(jax.hessian(problem.loss), x_last)
    return out


def heavy_ball_grid(
    cfg: Any, problem: FlatProblem, key: jax.Array
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minibatch heavy ball on the ``net_hb_alphas x net_hb_mus`` grid, ``net_seeds`` seeds each,
    ``2 max(net_horizons)`` steps: full-batch losses ``(alphas, mus, seeds, records)``."""
    alphas = np.geomspace(*cfg.net_hb_alphas[:2], int(cfg.net_hb_alphas[2]))
    mus = np.asarray(cfg.net_hb_mus, np.float64)
    steps = 2 * max(cfg.net_horizons)
    a, m = np.meshgrid(alphas, mus, indexing="ij")
    keys = jax.random.split(key, cfg.net_seeds)

    def one_run(lr: jax.Array, mu: jax.Array, k: jax.Array) -> jax.Array:
        opt = optax.with_extra_args_support(heavy_ball(lr, mu))
        return _minibatch_scan(
            problem,
            opt,
            k,
            batch=cfg.net_batch,
            steps=steps,
            every=cfg.net_record_every,
            record=lambda x, s: problem.loss(x),
        )[1]

    runs = jax.vmap(jax.vmap(one_run, (None, None, 0)), (0, 0, None))
    with jax.enable_x64(True):
        flat = jax.jit(runs)(jnp.asarray(a.ravel()), jnp.asarray(m.ravel()), keys)
        losses = np.asarray(flat, np.float64).reshape(len(alphas), len(mus), cfg.net_seeds, -1)
    return losses, alphas, mus


def ladder(
    cfg: Any,
    hb: np.ndarray,
    alphas: np.ndarray,
    mus: np.ndarray,
    curves: np.ndarray,
    f_init: float,
) -> list[dict[str, Any]]:
    """Iterations to each target against heavy ball re-tuned per target (the rule of
    :func:`._singlestep_nqm_runs.speed_ladder`): the target of horizon ``T`` is the lowest
    seed-mean smoothed loss of the grid at ``T``, heavy ball's best setting reaches it in the fewest
    mean iterations; an edge is a learning rate on either end or the top momentum."""
    rec = cfg.net_record_every

    def with_start(x: np.ndarray) -> np.ndarray:
        return np.concatenate([np.full((*x.shape[:-1], 1), f_init), x], -1)

    s_hb = nqm_runs.smoothed(with_start(hb))
    t_hb = np.arange(s_hb.shape[-1]) * rec
    s_yf = nqm_runs.smoothed(with_start(curves))
    t_yf = np.arange(s_yf.shape[-1]) * rec
    return nqm_runs.ladder_rows(s_hb, t_hb, s_yf, t_yf, cfg.net_horizons, alphas, mus)


def network_runs(cfg: Any, key: jax.Array) -> dict[str, Any]:
    """The truth, both YellowFin arms and the heavy-ball grid, each a resumable stage; progress
    from one half (the NQM part before it) to the end, in gradient evaluations."""
    problem = net_problem(cfg)
    hb_steps = 2 * max(cfg.net_horizons)
    g_hess = 1.0 + (1.0 + 2.0 * cfg.lanczos_steps) / cfg.curvature_every
    work = cfg.net_seeds * cfg.net_steps * (g_hess + 1.0)
    work += cfg.net_seeds * hb_steps * int(cfg.net_hb_alphas[2]) * len(cfg.net_hb_mus) / 4
    done = 0.0
    tr = runtime.stage("network_truth", lambda: truth(cfg, problem))
    k_yf, k_hb = jax.random.split(key)
    arms = {}
    for arm, cost in zip(ARMS, (g_hess, 1.0), strict=True):
        arms[arm] = runtime.stage(
            f"network_yellowfin_{arm}", lambda arm=arm: yellowfin_arm(cfg, problem, arm, tr, k_yf)
        )
        done += cfg.net_seeds * cfg.net_steps * cost
        runtime.progress(0.5 + 0.5 * done / work, 1.0, f"network: YellowFin ({arm})")

    def grid() -> dict[str, np.ndarray]:
        losses, alphas, mus = heavy_ball_grid(cfg, problem, k_hb)
        return {"losses": losses, "alphas": alphas, "mus": mus}

    hb = runtime.stage("network_heavy_ball", grid)
    runtime.progress(1.0, 1.0, "network: heavy-ball grid")
    t = np.arange(1, cfg.net_steps // cfg.net_record_every + 1) * cfg.net_record_every
    return {"problem": problem, "truth": tr, "arms": arms, "hb": hb, "t": t}
