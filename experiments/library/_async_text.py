"""Prose of experiment 8 (asynchrony-momentum): the prediction, measurement and tolerance fields of
its record, and its one-line summary."""

from __future__ import annotations

from typing import Any

import numpy as np

import theory


def _per_m(workers: Any, values: Any) -> dict[str, Any]:
    return {str(int(m)): v for m, v in zip(workers, values, strict=True)}


def prediction(cfg: Any, opt: dict, best: dict) -> dict[str, Any]:
    """Theory's numbers: staleness means, heavy-ball parameters, mean-dynamics optima."""
    return {
        "staleness_mean": [float(theory.staleness_mean(m)) for m in cfg.hist_workers],
        "implicit_momentum": float(theory.implicit_momentum(cfg.mean_workers)),
        "effective_step": float(theory.effective_step(cfg.mean_alpha, cfg.mean_workers)),
        "mean_dynamics_optimal_explicit_momentum": _per_m(
            cfg.opt_workers, [float(v) for v in opt["mu_opt"]]
        ),
        "mean_dynamics_optimal_rate": _per_m(cfg.opt_workers, [float(v) for v in opt["rate_opt"]]),
        "best_momentum_mean_dynamics": _per_m(best["workers"], best["mu_theory"].tolist()),
        "best_momentum_first_order_rule": _per_m(best["workers"], best["mu_first_order"].tolist()),
        "best_momentum_near_optimal_band": _per_m(best["workers"], best["theory_band"].tolist()),
        "best_momentum_sign": "negative for every M > 1 swept",
    }


def measurement(hist: dict, mean: dict, opt: dict, best: dict) -> dict[str, Any]:
    """The measured numbers that matter."""
    w = best["workers"]
    return {
        "staleness_workers": hist["workers"],
        "staleness_chi2_p_value": hist["p_value"],
        "staleness_mean": hist["mean"],
        "ensemble_max_err_over_tol": mean["max_err_over_tol"],
        "ensemble_mean_staleness": mean["mean_staleness"],
        "mean_rate_max_gap_over_tol": opt["max_gap_over_tol"],
        "mean_rate_resolved_fraction": opt["resolved_fraction"],
        "best_momentum_single_runs": _per_m(w, best["best"].tolist()),
        "best_momentum_interval": _per_m(w, best["interval"].tolist()),
        "best_momentum_late_rate": _per_m(w, [float(np.nanmin(r)) for r in best["rate"]]),
        "late_rate_at_zero_momentum": _per_m(
            w, [float(r[np.argmin(np.abs(best["mus"]))]) for r in best["rate"]]
        ),
        "best_momentum_iterations_to_level": _per_m(w, best["best_level"].tolist()),
        "best_momentum_iterations_to_level_interval": _per_m(w, best["interval_level"].tolist()),
    }


def tolerance(cfg: Any, mean: dict) -> dict[str, str]:
    """How each comparison is decided."""
    return {
        "chi2": f"p > {cfg.p_min / len(cfg.hist_workers):.2g} per M (family-wise {cfg.p_min:g}, "
        "Bonferroni)",
        "ensemble": (
            f"|mean - heavy ball| <= {mean['z']:.2f} SEM + {cfg.float_floor:g} per entry "
            f"(family-wise {cfg.mean_p:g}, Bonferroni; floor = float32 rounding)"
        ),
        "mean_rates": (
            f"|measured - spectral radius| <= {cfg.rate_z:g} jackknife SE + {cfg.rate_abs:g}, "
            f"on records where the ensemble mean exceeds {cfg.resolve_factor:g} SEM (float64)"
        ),
        "best_momentum": (
            f"argmin over {len(cfg.best_mus)} momenta of the mean late rate of "
            f"{cfg.best_seeds} single runs ({cfg.best_steps} steps, float64, the same seeds for "
            "every momentum); 95% percentile bootstrap over seeds; sign resolved when the interval "
            "excludes 0; theory's optimum compared within the interval widened by half a grid step"
        ),
    }


def summary(hist: dict, mean: dict, best: dict) -> str:
    """One line: staleness, mean dynamics, the best momentum per M vs the mean-dynamics optimum."""
    parts = [
        f"M={int(m)}: best {b:+.2f} [{lo:+.2f}, {hi:+.2f}] (mean-dynamics {t:+.2f})"
        for m, b, (lo, hi), t in zip(
            best["workers"], best["best"], best["interval"], best["mu_theory"], strict=True
        )
    ]
    return (
        f"staleness chi2 p min {min(hist['p_value']):.3g}; ensemble/heavy-ball max err/tol "
        f"{mean['max_err_over_tol']:.2f}; best explicit momentum of single runs (95% bootstrap): "
        + "; ".join(parts)
    )
