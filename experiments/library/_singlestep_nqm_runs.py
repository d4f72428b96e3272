"""Measurements of singlestep-yellowfin-nqm: YellowFin's late operating point, the speed ladder.

YellowFin (:func:`optimizers.yellowfin`, official defaults) and heavy ball
(:func:`optimizers.heavy_ball`) run on the noisy quadratic model by :func:`simulators.sweep` in
float64. Nothing here imports a prediction: the spectrum of the problem is read from the objective.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax

from experiments.framework import ratio_interval
from optimizers import heavy_ball, yellowfin
from simulators import Objective, noisy_quadratic_model, product_grid, sweep

STATS = ("learning_rate", "momentum", "h_min", "h_max", "grad_var", "dist_to_opt")


@functools.cache
def yellowfin_factory(
    curv_window: int, eps: float
) -> Callable[[Any], optax.GradientTransformationExtraArgs]:
    """One factory object per setting, so that :func:`simulators.sweep` compiles once."""

    def make(lr_factor: Any) -> optax.GradientTransformationExtraArgs:
        return yellowfin(lr_factor=lr_factor, curv_window=curv_window, eps=eps)

    return make


def heavy_ball_factory(learning_rate: Any, momentum: Any) -> optax.GradientTransformation:
    """Heavy ball ``x_{t+1} = x_t - alpha g_t + mu (x_t - x_{t-1})`` for the grid sweep."""
    return heavy_ball(learning_rate, momentum)


def smoothed(losses: np.ndarray) -> np.ndarray:
    """Trailing mean of the records over ``[0.9 t, t]`` along the last axis (``t`` = record)."""
    n = losses.shape[-1]
    cs = np.concatenate([np.zeros((*losses.shape[:-1], 1)), np.cumsum(losses, -1)], -1)
    j = np.arange(n)
    lo = np.ceil(0.9 * j).astype(int)
    with np.errstate(invalid="ignore"):
        s = (cs[..., j + 1] - cs[..., lo]) / (j + 1 - lo)
    return np.where(np.isnan(s), np.inf, s)  # a diverged run (inf - inf) never reaches a target


def hitting_times(s: np.ndarray, target: float, t: np.ndarray) -> np.ndarray:
    """First ``t`` with ``s <= target`` along the last axis (``inf`` when never)."""
    hit = s <= target
    return np.where(hit.any(-1), t[np.argmax(hit, -1)], np.inf)


def nqm(dim: int, p: float, batch: int, start: float, base: Objective | None = None) -> Objective:
    """The NQM; given a ``base`` of the same dimension, its arrays in ``base`` (reuses the compiled
    run: the spectrum, noise and start are pytree leaves, the loss function is static)."""
    obj = noisy_quadratic_model(dim, p, batch, x0=np.full(dim, start))
    if base is not None and base.dim == dim:
        obj = dataclasses.replace(base, params=obj.params, x0=obj.x0)
    return obj


def drift(alpha: np.ndarray, mu: np.ndarray) -> float:
    """How far the operating point moves across a window ``(seeds, records)``.

    ``max(|mean alpha_2 / mean alpha_1 - 1|, |mean mu_2 - mean mu_1|)`` over the window's two
    halves; ``inf`` when a value is not finite (a diverged seed).

    Example:
        >>> round(drift(np.array([[1.0, 1.0, 1.1, 1.1]]), np.full((1, 4), 0.5)), 6)
        0.1
    """
    half = alpha.shape[-1] // 2
    a1, a2 = alpha[:, :half].mean(), alpha[:, half:].mean()
    m1, m2 = mu[:, :half].mean(), mu[:, half:].mean()
    with np.errstate(invalid="ignore"):
        out = max(abs(a2 / a1 - 1.0), abs(m2 - m1))
    return float(out) if np.isfinite(out) else float("inf")


def yellowfin_late(
    cfg: Any, setting: tuple[int, float, int], key: jax.Array, base: Objective | None = None
) -> dict[str, Any]:
    """YellowFin on one NQM: per-seed late values, drift, and the full records."""
    dim, p, batch = setting
    obj = nqm(dim, p, batch, cfg.start, base)
    with jax.enable_x64(True):
        tr = sweep(
            yellowfin_factory(cfg.curv_window, cfg.eps),
            {"lr_factor": [1.0]},
            obj,
            cfg.steps,
            key,
            seeds=cfg.seeds,
            record_every=cfg.record_every,
        )
    st = {k: np.asarray(tr.stats[k][0], np.float64) for k in STATS}
    st["loss"] = np.asarray(tr.losses[0], np.float64)
    st["dist"] = np.asarray(tr.distances[0], np.float64)
    t = np.asarray(tr.steps)
    j0 = int(np.searchsorted(t, cfg.read_from))
    late = {k: v[:, j0:].mean(-1) for k, v in st.items()}
    moved = drift(st["learning_rate"][:, j0:], st["momentum"][:, j0:])
    h = np.asarray(obj.params["h"], np.float64)
    c = np.asarray(obj.params["noise_std"], np.float64) ** 2
    diverged = int(np.sum(tr.diverged))
    return {
        "obj": obj,
        "st": st,
        "t": t,
        "j0": j0,
        "late": late,
        "drift": moved,
        "h": h,
        "c": c,
        "diverged": diverged,
        "settled": bool(moved <= cfg.drift_tol and diverged == 0),
    }


def ladder_rows(
    s_hb: np.ndarray,
    t_hb: np.ndarray,
    s_yf: np.ndarray,
    t_yf: np.ndarray,
    horizons: Any,
    alphas: np.ndarray,
    mus: np.ndarray,
) -> list[dict[str, Any]]:
    """One row per horizon: YellowFin's iterations to the target against re-tuned heavy ball.

    Args:
        s_hb: heavy ball's smoothed losses ``(A, U, seeds, T_hb)`` over the grid ``alphas x mus``
            at the steps ``t_hb``.
        s_yf: YellowFin's smoothed losses ``(seeds, T_yf)`` at the steps ``t_yf``.
        horizons: the ladder; the target of ``T`` is the lowest seed-mean loss of the grid at
            ``T`` (non-finite members excluded).
        alphas, mus: the grid's axes. The re-tuned heavy ball is the grid point with the fewest
            mean iterations to the target; a learning rate on either end or the top momentum is
            an edge (momentum 0 is heavy ball's own boundary).

    Returns:
        Rows with the target, heavy ball's setting and edge flag, mean iterations of both, the
        seeds YellowFin reached it on, the ratio heavy ball / YellowFin with its bootstrap
        interval (seed ``i`` for horizon ``i``) and heavy ball's mean curve.
    """
    rows = []
    for i, horizon in enumerate(horizons):
        j = int(np.searchsorted(t_hb, horizon))
        at_t = np.where(np.isfinite(s_hb[..., j]).all(-1), s_hb[..., j].mean(-1), np.inf)
        target = float(at_t.min())
        tau_hb = hitting_times(s_hb, target, t_hb)
        best = np.unravel_index(int(np.argmin(tau_hb.mean(-1))), tau_hb.shape[:-1])
        tau_hb, tau_yf = tau_hb[best], hitting_times(s_yf, target, t_yf)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio, (lo, hi) = ratio_interval(tau_hb, tau_yf, seed=i)
        rows.append(
            {
                "horizon": horizon,
                "target": target,
                "heavy_ball": {
                    "alpha": float(alphas[best[0]]),
                    "mu": float(mus[best[1]]),
                    "on_grid_edge": bool(
                        best[0] in (0, len(alphas) - 1) or best[1] == len(mus) - 1
                    ),
                },
                "iterations_heavy_ball": float(tau_hb.mean()),
                "iterations_yellowfin": float(tau_yf.mean()),
                "yellowfin_seeds_reached": int(np.isfinite(tau_yf).sum()),
                "speed": ratio,
                "speed_interval": [lo, hi],
                "hb_curve": s_hb[best].mean(0),
            }
        )
    return rows


def speed_ladder(
    cfg: Any, yf_loss: np.ndarray, t: np.ndarray, key: jax.Array
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Iterations to each target of the ladder, YellowFin vs heavy ball re-tuned per target.

    The target of horizon ``T`` is the lowest seed-mean smoothed loss of the grid at ``T``; the
    re-tuned heavy ball is the grid point with the fewest mean iterations to it. Its learning rate
    on either end of the grid, or its momentum on the top of the grid, is an edge (momentum 0 is
    heavy ball's own boundary here).
    """
    hb_steps = min(cfg.steps, 2 * max(cfg.horizons))
    hb_steps -= hb_steps % cfg.record_every
    obj = nqm(cfg.dim, cfg.p, cfg.batch_size, cfg.start)
    g = product_grid(
        learning_rate=np.geomspace(*cfg.hb_alphas[:2], int(cfg.hb_alphas[2])),
        momentum=np.asarray(cfg.hb_mus),
    )
    with jax.enable_x64(True):
        hb = sweep(
            heavy_ball_factory,
            g,
            obj,
            hb_steps,
            key,
            seeds=cfg.seeds,
            record_every=cfg.record_every,
        )
    s_hb, t_hb = smoothed(np.asarray(hb.losses, np.float64)), np.asarray(hb.steps)
    alphas, mus = g["learning_rate"][:, 0], g["momentum"][0, :]
    rows = ladder_rows(s_hb, t_hb, smoothed(yf_loss), t, cfg.horizons, alphas, mus)
    return rows, {"t_hb": t_hb}
