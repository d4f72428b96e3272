"""Part (d) of experiment 8 (asynchrony-momentum): the best explicit momentum of single runs.

The claim (Mitliagkas et al. 2016, arXiv 1605.09774, Sec. 5; reference asynchrony.md): asynchrony
adds an implicit momentum of about ``1 - 1/M``, so the explicit momentum that trains fastest falls
as the number of workers ``M`` grows, to about ``mu_target - (1 - 1/M)``, and turns negative.

Measurement: for each ``M`` and each explicit momentum ``mu_L`` of a grid, ``S`` asynchronous runs
(:func:`simulators.simulate_async_fast`, geometric staleness ``Geom(1/M)``, float64) on the same
quadratic and with the same ``S`` keys for every momentum (common random numbers: the staleness
sequence of seed ``s`` is the same for every ``mu_L``, so the comparison across momenta does not
carry the between-seed spread). Per run:

- the late rate ``rho_s(mu_L) = exp(slope)`` of a least-squares fit of ``log ||w_t - w_*||`` over
  the second half of the run (:func:`simulators.measure_rate`; a diverged run counts as ``inf``):
  the almost-sure rate of one run, which is what a practitioner sees;
- the iterations to reach ``||w_t - w_*|| <= level ||w_0 - w_*||`` (``inf`` if never).

The best momentum is ``argmin over mu_L of mean_s rho_s(mu_L)``; its 95% interval is a percentile
bootstrap over seeds (resample the ``S`` seeds with replacement, recompute the mean rate per
momentum and its argmin; :func:`experiments.stats.bootstrap_interval`). The sign of the best
momentum is resolved when the interval excludes 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import theory
from experiments.stats import bootstrap_interval
from simulators import measure_rate, quadratic, simulate_async_fast
from simulators.asynchrony import geometric

# the norm of the iterate underflows below ~1e-154 (its square is below the float64 range): the
# rate is fitted only on records above this absolute floor
DIST_FLOOR = 1e-120


def _runs(cfg: Any, m: int, key: jax.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distances ``(n_mu, S, R)``, diverged flags ``(n_mu, S)`` and record steps ``(R,)``."""
    h = np.geomspace(1.0, cfg.opt_kappa, cfg.opt_directions)
    obj = quadratic(h, x0=np.ones(h.size))
    x0 = jnp.ones(h.size, jnp.float64)
    law = geometric(m)
    keys = jax.random.split(key, cfg.best_seeds)

    def one(mu: jax.Array, k: jax.Array) -> tuple[jax.Array, jax.Array]:
        opt = optax.sgd(cfg.opt_alpha, momentum=mu)
        tr = simulate_async_fast(
            obj, opt, cfg.best_steps, k, law, x0=x0, record_every=cfg.best_record_every
        )
        return tr.distances, tr.diverged

    run_all = jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None)))
    dist, div = run_all(jnp.asarray(cfg.best_mus, jnp.float64), keys)
    steps = np.arange(cfg.best_steps // cfg.best_record_every + 1) * cfg.best_record_every
    return np.asarray(dist, np.float64), np.asarray(div), steps


def _argmin_stat(values: np.ndarray, mus: np.ndarray) -> Callable[[np.ndarray], float]:
    """Statistic of resampled seed indices: the momentum of the smallest seed-mean value."""

    def stat(idx: np.ndarray) -> float:
        return float(mus[np.argmin(values[:, idx.astype(int)].mean(axis=1))])

    return stat


def best_of(values: np.ndarray, mus: np.ndarray, seed: int) -> tuple[float, tuple[float, float]]:
    """Best momentum ``argmin_mu mean_s values[mu, s]`` and its bootstrap interval over seeds.

    Args:
        values: ``(n_mu, S)`` per-run cost (late rate or iterations; ``inf`` for a diverged run).
        mus: ``(n_mu,)`` the momentum grid.
        seed: seed of the bootstrap resampling.

    Returns:
        ``(best, (lo, hi))``; NaN when every momentum has an infinite mean.

    Example:
        >>> v = np.array([[3.0, 3.1, 2.9], [1.0, 1.2, 0.9], [2.0, 2.2, 1.9]])
        >>> best_of(v, np.array([-0.5, 0.0, 0.5]), 0)
        (0.0, (0.0, 0.0))
    """
    v = np.where(np.isfinite(values), values, np.inf)
    mean = v.mean(axis=1)
    if not np.isfinite(mean).any():
        return float("nan"), (float("nan"), float("nan"))
    stat = _argmin_stat(v, mus)
    with np.errstate(invalid="ignore"):
        lo, hi = bootstrap_interval(np.arange(v.shape[1]), stat, seed=seed)
    return float(mus[np.argmin(mean)]), (lo, hi)


def near_optimal_band(
    alpha: float, kappa: float, m: int, mus: np.ndarray, delta: float
) -> tuple[float, float]:
    """Smallest and largest momentum whose mean-dynamics rate is within ``delta`` of the optimum.

    The rate is the worst :func:`theory.async_spectral_radius` over the spectrum ``[1, kappa]``;
    the optimum is :func:`theory.optimal_explicit_momentum`. Where the rate is flat (at
    ``M = 16`` it varies by 2e-4 over ``mu_L`` in ``[-0.96, 0]``) the optimum alone is
    ill-conditioned: the band says which momenta theory cannot tell from it at the resolution
    ``delta`` of a measured rate.

    Example:
        >>> lo, hi = near_optimal_band(0.04, 10.0, 1, np.linspace(-0.99, 0.99, 397), 3e-3)
        >>> bool(lo < 0.64 < hi)
        True
    """
    h = np.geomspace(1.0, kappa, 65)
    r_opt = float(theory.optimal_explicit_momentum(alpha, 1.0, kappa, m)[1])
    curve = theory.async_spectral_radius(alpha, mus[:, None], h, m).max(-1)
    near = mus[curve <= r_opt + delta]
    return float(near.min()), float(near.max())


def best_momentum_part(cfg: Any, seed: int) -> dict:
    """Per-run late rates and iterations to a level over the momentum grid, per ``M``.

    Runs in float64 (inside ``jax.enable_x64``); the theory side is the mean-dynamics optimum
    :func:`theory.optimal_explicit_momentum` and the first-order rule
    ``mu_sync - (1 - 1/M)`` (:func:`theory.implicit_momentum`), with ``mu_sync`` the optimum at
    ``M = 1``.

    Args:
        cfg: an ``AsynchronyMomentumConfig`` (fields ``best_*``, ``opt_alpha``, ``opt_kappa``,
            ``opt_directions``).
        seed: the JAX seed of the runs and the bootstrap seed.

    Returns:
        A dict with ``mus``, ``workers``, per ``M``: the mean late ``rate`` ``(n_M, n_mu)``, its
        ``spread`` (standard deviation over seeds), ``best`` and ``interval`` of the late rate,
        ``best_level`` and ``interval_level`` of the iterations to ``best_level``,
        ``diverged_fraction``; theory's ``mu_theory``, ``mu_first_order``, the mean-dynamics
        ``theory_curve`` and ``theory_band`` (:func:`near_optimal_band` at ``cfg.rate_abs``).
    """
    mus = np.asarray(cfg.best_mus, float)
    h = np.geomspace(1.0, cfg.opt_kappa, 65)
    mu_sync = float(theory.optimal_explicit_momentum(cfg.opt_alpha, 1.0, cfg.opt_kappa, 1)[0])
    keys = ("rate", "spread", "best", "interval", "best_level", "interval_level", "div")
    out: dict = {k: [] for k in keys}
    out.update(mu_theory=[], mu_first_order=[], theory_curve=[], theory_band=[])
    fine = np.linspace(-0.99, 0.99, 397)
    with jax.enable_x64(True):
        for i, m in enumerate(cfg.best_workers):
            key = jax.random.fold_in(jax.random.key(seed + 7919), i)
            dist, div, steps = _runs(cfg, m, key)
            est = measure_rate(
                dist,
                steps=steps,
                kappa=cfg.opt_kappa,
                rel_floor=DIST_FLOOR / float(dist[..., 0].max()),
            )
            rate = np.where(div | ~np.isfinite(est.rate), np.inf, np.asarray(est.rate, float))
            reached = np.isfinite(dist) & (dist <= cfg.best_level * dist[..., :1])
            hit = reached.any(-1) & ~div
            iters = np.where(hit, steps[np.argmax(reached, axis=-1)], np.inf)
            best, interval = best_of(rate, mus, seed)
            best_l, interval_l = best_of(iters, mus, seed)
            with np.errstate(invalid="ignore"):
                spread = np.where(np.isfinite(rate).all(1), rate.std(axis=1, ddof=1), np.nan)
            for k, v in zip(
                keys,
                (rate.mean(1), spread, best, interval, best_l, interval_l, div.mean(1)),
                strict=True,
            ):
                out[k].append(v)
            mu_t = theory.optimal_explicit_momentum(cfg.opt_alpha, 1.0, cfg.opt_kappa, m)[0]
            out["mu_theory"].append(float(mu_t))
            out["mu_first_order"].append(mu_sync - float(theory.implicit_momentum(m)))
            curve = theory.async_spectral_radius(cfg.opt_alpha, mus[:, None], h, m).max(-1)
            out["theory_curve"].append(curve)
            out["theory_band"].append(
                near_optimal_band(cfg.opt_alpha, cfg.opt_kappa, m, fine, cfg.rate_abs)
            )
    res = {k: np.asarray(v, float) for k, v in out.items()}
    res["mus"] = mus
    res["workers"] = np.asarray(cfg.best_workers)
    res["diverged_fraction"] = res.pop("div")
    return res
