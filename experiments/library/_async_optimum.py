"""Part (c) of experiment 8 (asynchrony-momentum): the rate of the mean dynamics vs momentum.

Fast-mode runs with geometric staleness (:func:`simulators.simulate_async_fast`, float64), vmapped
over seeds and mapped over a grid of explicit momenta ``mu_L``; the rate of the ensemble-mean
error ``||E w_t - w_*||`` (:func:`simulators.measure_rate`) on the records where the mean is
resolved above its Monte-Carlo error, against the largest root modulus of the mean recursion
``z^3 - (1 + mu_L + q - a) z^2 + (mu_L + q + mu_L q) z - mu_L q`` with ``q = 1 - 1/M`` and
``a = alpha h / M`` (:func:`theory.async_spectral_radius`; Mitliagkas et al. 2016, arXiv 1605.09774,
Theorem 2 with explicit momentum; reference asynchrony.md). Past the mean-dynamics optimum the
spread of single runs decays more slowly than their mean, so there the mean cannot be resolved
and the rate is left out (NaN): this part verifies the mean model where it is measurable; the best
momentum of single runs is measured in :mod:`experiments.library._async_best`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import theory
from simulators import measure_rate, quadratic, simulate_async_fast
from simulators.asynchrony import geometric


def _mean_and_sem(cfg: Any, m: int, key: jax.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ensemble-mean distance, its standard error and the diverged fraction, per momentum.

    Returns:
        ``(dist, sem, diverged)`` of shapes ``(n_mu, R)``, ``(n_mu, R)``, ``(n_mu,)``.
    """
    h = np.geomspace(1.0, cfg.opt_kappa, cfg.opt_directions)
    obj = quadratic(h, x0=np.ones(h.size))
    x0 = jnp.ones(h.size, jnp.float64)
    law = geometric(m)
    keys = jax.random.split(key, cfg.opt_seeds)

    def one(mu: jax.Array, k: jax.Array) -> tuple[jax.Array, jax.Array]:
        opt = optax.sgd(cfg.opt_alpha, momentum=mu)
        tr = simulate_async_fast(
            obj, opt, cfg.opt_steps, k, law, x0=x0, record_every=cfg.opt_record_every
        )
        return tr.iterates, tr.diverged

    def per_mu(mu: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        it, div = jax.vmap(one, in_axes=(None, 0))(mu, keys)  # (seed, record, coordinate)
        mean = it.mean(axis=0)
        sem = jnp.linalg.norm(jnp.std(it, axis=0, ddof=1), axis=-1) / np.sqrt(cfg.opt_seeds)
        return jnp.linalg.norm(mean, axis=-1), sem, div.mean()

    # one momentum at a time: the (seed, record, coordinate) block of only one is ever held
    dist, sem, div = jax.jit(lambda mus: jax.lax.map(per_mu, mus))(
        jnp.asarray(cfg.opt_mus, jnp.float64)
    )
    return np.asarray(dist), np.asarray(sem), np.asarray(div)


def mean_rate_part(cfg: Any, seed: int) -> dict:
    """Rates of the ensemble mean over explicit momenta per ``M`` vs the mean-dynamics radius.

    Runs in float64 (inside ``jax.enable_x64``).

    Args:
        cfg: an ``AsynchronyMomentumConfig`` (fields ``opt_*``, ``resolve_factor``, ``rate_z``,
            ``rate_abs``).
        seed: the JAX seed of the ensembles.

    Returns:
        A dict with the grid ``mus``, theory's ``mu_opt``/``rate_opt`` per ``M``, the
        ``theory_curve`` (worst radius over the spectrum per momentum), the measured ``rate`` and
        ``stderr`` (NaN where the mean is not resolved), ``max_gap_over_tol``,
        ``resolved_fraction``, ``optimum_beaten`` and ``diverged_fraction``.
    """
    mus = np.asarray(cfg.opt_mus, float)
    h = np.geomspace(1.0, cfg.opt_kappa, 65)
    steps = np.arange(cfg.opt_steps // cfg.opt_record_every + 1) * cfg.opt_record_every
    out: dict = {k: [] for k in ("mu_opt", "rate_opt", "theory_curve", "rate", "stderr", "div")}
    with jax.enable_x64(True):
        for i, m in enumerate(cfg.opt_workers):
            mu_opt, r_opt = theory.optimal_explicit_momentum(cfg.opt_alpha, 1.0, cfg.opt_kappa, m)
            curve = theory.async_spectral_radius(cfg.opt_alpha, mus[:, None], h, m).max(-1)
            dist, sem, div = _mean_and_sem(cfg, m, jax.random.fold_in(jax.random.key(seed), i))
            usable = (dist > cfg.resolve_factor * sem) & (div == 0)[:, None]
            est = measure_rate(
                np.where(usable, dist, np.nan), steps=steps, kappa=cfg.opt_kappa, rel_floor=0.0
            )
            for k, v in zip(out, (mu_opt, r_opt, curve, est.rate, est.stderr, div), strict=True):
                out[k].append(np.asarray(v, float))
    rate = np.stack(out["rate"])
    se = np.stack(out["stderr"])
    curve = np.stack(out["theory_curve"])
    resolved = np.isfinite(rate)
    gap = np.where(resolved, np.abs(rate - curve) / (cfg.rate_z * se + cfg.rate_abs), 0.0)
    # no explicit momentum's mean is measurably faster than the theory optimum's rate
    r_opt = np.asarray(out["rate_opt"])[:, None]
    beaten = resolved & (rate < r_opt - (cfg.rate_z * np.nan_to_num(se) + cfg.rate_abs))
    return {
        "mus": mus,
        "mu_opt": np.asarray(out["mu_opt"]),
        "rate_opt": np.asarray(out["rate_opt"]),
        "theory_curve": curve,
        "rate": rate,
        "stderr": se,
        "max_gap_over_tol": float(gap.max()),
        "resolved_fraction": float(resolved.mean()),
        "optimum_beaten": bool(beaten.any()),
        "diverged_fraction": np.stack(out["div"]),
    }
