"""Experiment 14: MoMo's guarantees on interpolating least squares, and MoMo*'s estimate of f_*.

Claims (Schaipp et al., "MoMo: Momentum Models for Adaptive Learning Rates", arXiv 2305.07583,
Sec. 3 and Sec. 5; the bounds as derived in :mod:`theory.momo_bounds`):

* distance certificate: with ``lb = f_*`` on a convex interpolating problem,
  ``||x_{k+1} - x*||^2 <= ||x_k - x*||^2 - tau_k (h_k - f_*)_+`` at every step, for every ``beta``;
* ``beta = 0``: ``E f(xbar_K) - f_* <= ||x_1 - x*||^2 / (K min{alpha, 1/(2L)})``;
* any ``beta``: ``E f(xbar_K) - f_* <= [D^2/(alpha K) + G D / ((1 - beta) sqrt K)] / (1 - beta)``;
* MoMo* (Sec. 5) started from the floor ``lb = 0`` below the true ``f_*`` ends at ``f_*``.

Prediction: :func:`theory.momo_distance_certificate` (through
:func:`theory.momo_certificate_slack`), :func:`theory.momo_beta0_bound`,
:func:`theory.momo_sqrt_k_bound`, and the true ``f_*`` of the problem.

Measurement: :func:`optimizers.momo` run by :func:`simulators.sweep` on
:func:`simulators.interpolating_least_squares` (``f_* = 0``, minibatches drawn with replacement),
float64, several seeds. The per-step slack of the certificate uses the logged ``step_size`` and
``h`` with the recorded distances; ``f(xbar_K)`` is the exact loss of the running iterate average.
For MoMo* the loss handed to the optimizer is shifted by a constant ``c`` (same gradients), so the
problem's minimum is ``f_* = c`` while MoMo* only knows the floor 0.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
import optax
from matplotlib.figure import Figure

import theory
from experiments.framework import Experiment, Record, figure, register, style, verdict
from optimizers import momo
from simulators import interpolating_least_squares, product_grid, sweep


@dataclasses.dataclass(frozen=True)
class MomoBoundsConfig:
    """Problem, grid and run length.

    Attributes:
        n, dim, batch_size: interpolating least squares with ``n`` samples in ``dim`` coordinates,
            minibatches of ``batch_size``.
        betas: MoMo momenta (0 must be one of them for the ``beta = 0`` bound).
        alphas: learning-rate caps.
        steps: MoMo steps K.
        seeds: independent runs per grid point (minibatch streams).
        points: number of log-spaced K at which ``f(xbar_K)`` is evaluated.
        certificate_rtol: allowed negative slack of the certificate, relative to
            ``||x_1 - x*||^2`` (float64 rounding of ``steps`` updates is ~1e-13 of it).
        se_factor: Monte-Carlo allowance: the expectation bounds are violated only when the seed
            mean exceeds the bound by more than ``se_factor`` standard errors.
        shift: the constant ``c`` added to the loss for MoMo* (its true ``f_*``).
        star_alpha: MoMo*'s learning-rate cap.
        star_rtol: MoMo*'s final estimate must lie within ``star_rtol * c`` of ``c``.
    """

    n: int = 1000
    dim: int = 50
    batch_size: int = 8
    betas: tuple[float, ...] = (0.0, 0.9)
    alphas: tuple[float, ...] = (0.003, 0.1, 10.0)
    steps: int = 4000
    seeds: int = 32
    points: int = 30
    certificate_rtol: float = 1e-9
    se_factor: float = 3.0
    shift: float = 1.0
    star_alpha: float = 1.0
    star_rtol: float = 0.05

    @classmethod
    def quick(cls) -> MomoBoundsConfig:
        """A smaller problem, 200 steps and 4 seeds (seconds on a CPU)."""
        return cls(n=200, dim=20, steps=200, seeds=4, points=10)


def _shifted(inner: optax.GradientTransformationExtraArgs, c: float):
    """``inner`` fed the loss ``value + c``: the same gradients, minimum moved to ``f_* + c``."""

    def update(updates: Any, state: Any, params: Any = None, *, value: Any = None, **extra: Any):
        return inner.update(updates, state, params, value=value + c, **extra)

    return optax.GradientTransformationExtraArgs(inner.init, update)


def _loss_of_average(a: np.ndarray, b: np.ndarray, iterates: np.ndarray, ks: np.ndarray):
    """``f(xbar_K)`` with ``xbar_K = mean(x_1..x_K)`` (record 0 is ``x_1``) for every K in ks."""
    csum = np.cumsum(iterates, axis=-2)  # (..., K+1, dim)
    xbar = csum[..., ks - 1, :] / ks[:, None]
    resid = np.einsum("nd,...kd->...kn", a, xbar) - b
    return 0.5 * np.mean(resid**2, axis=-1)


def run(cfg: MomoBoundsConfig, seed: int) -> Record:
    """Certificate slack, expectation bounds vs f(xbar_K), MoMo* estimates."""
    obj = interpolating_least_squares(cfg.n, cfg.dim, seed, batch_size=cfg.batch_size)
    info = dict(obj.info)
    a, b = np.asarray(obj.params["a"]), np.asarray(obj.params["b"])
    d2 = float(np.sum((np.asarray(obj.x0) - np.asarray(obj.x_star)) ** 2))
    big_l = info["max_sample_smoothness"]  # smoothness of every minibatch loss
    # ||g|| <= max_i ||a_i||^2 ||x - x*|| and the distance never grows (certificate): G <= L_max D.
    grad_bound = big_l * np.sqrt(d2)
    grid = product_grid(beta=list(cfg.betas), learning_rate=list(cfg.alphas))
    key = jax.random.key(seed)
    with jax.enable_x64(True):
        traj = sweep(
            lambda beta, learning_rate: momo(learning_rate, beta=beta),
            grid,
            obj,
            cfg.steps,
            key,
            seeds=cfg.seeds,
            record_coords=None,
        )
        star = sweep(
            lambda beta: _shifted(
                momo(cfg.star_alpha, beta=beta, adapt_lower_bound=True, lower_bound=0.0),
                cfg.shift,
            ),
            {"beta": list(cfg.betas)},
            obj,
            cfg.steps,
            jax.random.fold_in(key, 1),
            seeds=cfg.seeds,
        )
    nb, na = len(cfg.betas), len(cfg.alphas)
    dist_sq = np.asarray(traj.distances, np.float64) ** 2  # (nb, na, S, K+1)
    taus = np.asarray(traj.stats["step_size"], np.float64)[..., 1:]
    hs = np.asarray(traj.stats["h"], np.float64)[..., 1:]
    slack_min = np.full((nb, na), np.inf)
    total_min = np.full((nb, na), np.inf)
    for idx in np.ndindex(nb, na, cfg.seeds):
        per_step, total = theory.momo_certificate_slack(dist_sq[idx], taus[idx], hs[idx], 0.0)
        slack_min[idx[:2]] = min(slack_min[idx[:2]], float(per_step.min()))
        total_min[idx[:2]] = min(total_min[idx[:2]], total)
    ks = np.unique(np.geomspace(1, cfg.steps, cfg.points).round().astype(int))
    f_avg = _loss_of_average(a, b, np.asarray(traj.iterates, np.float64), ks)  # (nb, na, S, P)
    mean = f_avg.mean(axis=2)
    se = f_avg.std(axis=2, ddof=1) / np.sqrt(cfg.seeds) if cfg.seeds > 1 else np.zeros_like(mean)
    bounds = np.empty_like(mean)
    for i, beta in enumerate(cfg.betas):
        for j, alpha in enumerate(cfg.alphas):
            if beta == 0.0:
                bounds[i, j] = theory.momo_beta0_bound(d2, alpha, big_l, ks)
            else:
                bounds[i, j] = theory.momo_sqrt_k_bound(
                    d2, alpha, grad_bound, beta, ks, iterate_average=True
                )
    excess = (mean - cfg.se_factor * se) / bounds  # > 1 means a violation beyond MC error
    lb = np.asarray(star.stats["lower_bound"], np.float64)  # (nb, S, K+1)
    final_lb = lb[..., -1]
    star_err = float(np.max(np.abs(final_lb - cfg.shift)))
    diverged = bool(np.any(traj.diverged) or np.any(star.diverged))
    checks = {
        "distance_certificate_never_violated": float(slack_min.min()) >= -cfg.certificate_rtol * d2,
        "expectation_bounds_hold": bool(np.all(excess <= 1.0)),
        "momo_star_reaches_f_star": star_err <= cfg.star_rtol * cfg.shift,
        "no_divergence": not diverged,
    }
    beta0 = [i for i, bt in enumerate(cfg.betas) if bt == 0.0]
    tight = float(np.max(mean[beta0] / bounds[beta0])) if beta0 else float("nan")
    return Record(
        claim=EXPERIMENT_CLAIM,
        prediction={
            "certificate_slack_min": 0.0,
            "bound_at_K": {
                f"beta={bt:g},alpha={al:g}": float(bounds[i, j, -1])
                for i, bt in enumerate(cfg.betas)
                for j, al in enumerate(cfg.alphas)
            },
            "f_star_for_momo_star": cfg.shift,
        },
        measurement={
            "certificate_slack_min_over_D2": float(slack_min.min()) / d2,
            "certificate_total_min_over_D2": float(total_min.min()) / d2,
            "f_xbar_at_K_mean": {
                f"beta={bt:g},alpha={al:g}": float(mean[i, j, -1])
                for i, bt in enumerate(cfg.betas)
                for j, al in enumerate(cfg.alphas)
            },
            "max_mean_over_bound": float(np.max(mean / bounds)),
            "max_mean_over_bound_beta0": tight,
            "momo_star_final_estimate": final_lb.mean(axis=-1).tolist(),
            "momo_star_max_abs_error": star_err,
            "checks": checks,
        },
        tolerance={
            "certificate": f"per-step slack >= -{cfg.certificate_rtol:g} ||x_1 - x*||^2 "
            "(float64 rounding)",
            "expectation_bounds": f"seed mean - {cfg.se_factor:g} standard errors <= bound "
            f"({cfg.seeds} seeds)",
            "momo_star": f"|final estimate - f_*| <= {cfg.star_rtol:g} f_* on every run",
        },
        verdict=verdict(all(checks.values())),
        summary=(
            f"certificate slack min {float(slack_min.min()) / d2:.2e} D^2 (>= 0); f(xbar_K) at "
            f"most {float(np.max(mean / bounds)):.3g} x its bound (beta = 0: {tight:.3g}); MoMo* "
            f"final estimate {float(final_lb.mean()):.4f} vs f_* = {cfg.shift:g}"
        ),
        arrays={
            "betas": np.asarray(cfg.betas),
            "alphas": np.asarray(cfg.alphas),
            "ks": ks,
            "f_xbar_mean": mean,
            "f_xbar_se": se,
            "bound": bounds,
            "certificate_slack_min": slack_min,
            "lower_bound_estimate": lb.mean(axis=1),
            "lower_bound_runs": lb,
        },
    )


def plot(record: Record) -> Figure:
    """Bounds (lines) vs measured f(xbar_K) (markers) per beta; MoMo* estimates vs f_*."""
    arr = record.arrays
    betas, alphas, ks = arr["betas"], arr["alphas"], arr["ks"]
    fig, axes = figure(ncols=len(betas) + 1)
    colors = [style(m)["color"] for m in ("momo", "heavy-ball", "yellowfin", "adam", "sgd")]
    for i, beta in enumerate(betas):
        ax = axes[i]
        for j, alpha in enumerate(alphas):
            c = colors[j % len(colors)]
            ax.loglog(ks, arr["bound"][i, j], **style("bound", color=c, label=None))
            ax.errorbar(
                ks,
                arr["f_xbar_mean"][i, j],
                yerr=arr["f_xbar_se"][i, j],
                color=c,
                ls="none",
                marker="o",
                ms=3,
                label=rf"measured, $\alpha$={alpha:g}",
            )
        ax.plot([], [], **style("bound", label="bound (theory), colour per alpha"))
        name = r"$O(1/K)$ bound" if beta == 0 else r"$O(1/\sqrt{K})$ bound"
        ax.set_title(rf"MoMo, $\beta$={beta:g}: {name}")
        ax.set_xlabel("iterations K")
        ax.set_ylabel(r"$E f(\bar x_K) - f_*$")
        ax.legend(fontsize=6.5)
    ax = axes[-1]
    f_star = record.prediction["f_star_for_momo_star"]
    t = np.arange(arr["lower_bound_runs"].shape[-1])
    for i, beta in enumerate(betas):
        c = colors[i % len(colors)]
        for run_lb in arr["lower_bound_runs"][i]:
            ax.plot(t[1:], run_lb[1:], color=c, lw=0.6, alpha=0.35)
        ax.plot(
            t[1:], arr["lower_bound_estimate"][i, 1:], color=c, lw=1.4, label=rf"$\beta$={beta:g}"
        )
    ax.axhline(f_star, **style("prediction", label=r"true $f_*$"))
    ax.axhline(0.0, color="0.5", lw=0.8, ls=":", label="floor given to MoMo*")
    ax.set_xscale("log")
    ax.set_xlabel("step k")
    ax.set_ylabel(r"MoMo* estimate $f_*^k$")
    ax.set_title("MoMo* lower-bound estimate")
    ax.legend(fontsize=7)
    return fig


EXPERIMENT_CLAIM = (
    "On convex interpolating least squares MoMo never increases the distance to the minimiser by "
    "more than its certificate allows, its averaged iterate stays below the derived O(1/K) "
    "(beta = 0) and O(1/sqrt K) (any beta) bounds, and MoMo* started from the floor 0 finds f_*."
)

EXPERIMENT = register(
    Experiment(
        name="momo-bounds",
        title="MoMo bounds and MoMo* estimate",
        claim=EXPERIMENT_CLAIM,
        config=MomoBoundsConfig,
        run=run,
        plot=plot,
        device="cpu",
        order=14,
    )
)
