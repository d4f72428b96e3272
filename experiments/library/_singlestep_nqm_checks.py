"""Comparisons of singlestep-yellowfin-nqm: measured values against theory, as checks.

The predictions come from :mod:`theory` (through :mod:`._singlestep_nqm_model`); the measurements
from :mod:`._singlestep_nqm_runs`. Each function returns the checks (or the compared numbers) of one
part of the experiment.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

import theory
from experiments.framework import Check, bootstrap_interval, check, interval_check
from experiments.library import _singlestep_nqm_model as model
from experiments.library import _singlestep_nqm_text as text

ORACLES = ("grad_var", "dist_to_opt", "h_min", "h_max")


def brute_force_x(c: float, d: float, h_min: float, h_max: float, points: int) -> float:
    """Minimiser in ``x = sqrt(mu)`` of the SingleStep objective on the constraint set."""
    x_lo = math.sqrt(float(theory.min_robust_momentum(h_max / h_min)))
    xs = np.linspace(x_lo, 1.0, points)
    f = theory.singlestep_objective(xs**2, c, d, h_min)
    i = int(np.argmin(f))
    lo, hi = xs[max(i - 1, 0)], xs[min(i + 1, points - 1)]
    res = minimize_scalar(
        lambda x: float(theory.singlestep_objective(x * x, c, d, h_min)),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return float(res.x) if res.fun <= f[i] else float(xs[i])


def interval_mean(x: np.ndarray, seed: int) -> tuple[float, float]:
    """95% bootstrap interval of the mean over seeds."""
    return bootstrap_interval(x, seed=seed)


def compare_setting(cfg: Any, setting, run_, seed: int) -> dict:
    """Fixed point vs late tuning, and SingleStep at the true statistics, for one setting."""
    h, c, late = run_["h"], run_["c"], run_["late"]
    a_fp, mu_fp, r_fp = model.proxy_fixed_point(
        h, c, window=cfg.curv_window, samples=cfg.mc_samples, seed=seed, eps=cfg.eps
    )
    mu_ss, a_ss = (
        float(v) for v in theory.singlestep(c.sum(), late["dist"].mean(), h.min(), h.max())
    )
    return {
        "dim": setting[0],
        "p": setting[1],
        "batch_size": setting[2],
        "kappa": float(h.max() / h.min()),
        "settled": bool(run_["settled"]),
        "drift": run_["drift"],
        "mu_late": float(late["momentum"].mean()),
        "mu_interval": interval_mean(late["momentum"], seed),
        "alpha_late": float(late["learning_rate"].mean()),
        "mu_fixed_point": mu_fp,
        "alpha_fixed_point": a_fp,
        "mu_singlestep_true": mu_ss,
        "alpha_singlestep_true": a_ss,
        "proxy_over_true": {
            "h_min": float(late["h_min"].mean() / h.min()),
            "h_max": float(late["h_max"].mean() / h.max()),
            "grad_var": float(late["grad_var"].mean() / c.sum()),
            "dist_to_opt": float(late["dist_to_opt"].mean() / late["dist"].mean()),
        },
        "floor_fixed_point": r_fp["floor"],
    }


def oracle_checks(cfg: Any, main, seed: int) -> tuple[list[Check], dict]:
    """Each oracle and the late loss against theory at each seed's late (alpha, mu)."""
    late, h, c = main["late"], main["h"], main["c"]
    pred = [
        model.oracle_readings(
            float(a),
            float(m),
            h,
            c,
            window=cfg.curv_window,
            samples=cfg.mc_samples,
            seed=seed + k,
            eps=cfg.eps,
        )
        for k, (a, m) in enumerate(zip(late["learning_rate"], late["momentum"], strict=True))
    ]
    checks, out = [], {}
    lo_ok, hi_ok = 1.0 - cfg.oracle_tol, 1.0 + cfg.oracle_tol
    for key in (*ORACLES, "floor"):
        name = text.ORACLE_NAMES[key]
        measured = late["loss" if key == "floor" else key]
        predicted = np.array([r[key] for r in pred])
        ratio = measured / predicted
        interval = interval_mean(ratio, seed)
        out[key] = {
            "measured": float(measured.mean()),
            "predicted": float(predicted.mean()),
            "ratio": float(ratio.mean()),
            "ratio_interval": list(interval),
        }
        checks.append(
            interval_check(
                name,
                "verification",
                interval,
                lower=lo_ok,
                upper=hi_ok,
                measured=out[key],
                note=text.ORACLE_NOTES[key],
            )
        )
    out["inv_sqrt_mean_sq"] = float(np.mean([r["inv_sqrt_mean_sq"] for r in pred]))
    out["clip_fraction"] = float(np.mean([r["clip_fraction"] for r in pred]))
    return checks, out


def speed_checks(cfg: Any, speed: list[dict]) -> list[Check]:
    """(c) one reproduction check per target: heavy ball / YellowFin iterations >= 1/factor."""
    return [
        interval_check(
            f"speed_vs_retuned_heavy_ball_T{s['horizon']}",
            "reproduction",
            s["speed_interval"],
            lower=1.0 / cfg.speed_factor,
            measured={k: v for k, v in s.items() if k != "hb_curve"},
            note=text.speed_note(s),
        )
        for s in speed
    ]


def sweep_outcome(cfg: Any, rows: list[dict]) -> bool | None:
    """(b) every settled setting's late mu interval inside its fixed point +- mu_tol."""
    settled = [r for r in rows if r["settled"]]
    outcomes = [
        interval_check(
            "sweep",
            "verification",
            r["mu_interval"],
            lower=r["mu_fixed_point"] - cfg.mu_tol,
            upper=r["mu_fixed_point"] + cfg.mu_tol,
        ).outcome
        for r in settled
    ]
    if not settled or "unresolved" in outcomes:
        return None
    return "fail" not in outcomes


def preconditions(cfg: Any, main: dict, speed: list[dict]) -> list[Check]:
    """The operating point settled in the read window; each re-tuned heavy ball inside its grid.

    A heavy ball on the grid's edge could be beaten by one off the grid, which needs fewer
    iterations and so lowers the ratio heavy ball / YellowFin: a failed speed check stands, a
    passed or unresolved one is not applicable.
    """
    decisive = [
        s["horizon"]
        for s, c in zip(speed, speed_checks(cfg, speed), strict=True)
        if s["heavy_ball"]["on_grid_edge"] and c.outcome != "fail"
    ]
    return [
        check(
            "operating_point_settled",
            "precondition",
            main["settled"],
            predicted={"drift_at_most": cfg.drift_tol},
            measured={"drift": main["drift"], "diverged_seeds": main["diverged"]},
            note=text.settled_note(main["drift"], cfg.drift_tol, main["diverged"]),
        ),
        check(
            "heavy_ball_best_inside_grid",
            "precondition",
            not decisive,
            measured=[s["heavy_ball"] for s in speed],
            note=text.grid_note(speed, decisive),
        ),
    ]
