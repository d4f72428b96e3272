"""Checks of yellowfin-curvature-oracle, decided from plain measurement dicts.

Every function here reads numbers (seed arrays, intervals, the theory's predictions) and returns
:class:`~experiments.checks.Check` objects, so a fabricated measurement can be fed to them (the
tests do, to see the verdict fail).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import theory
from experiments.framework import Check, bootstrap_interval, check, interval_check


def true_singlestep(row: dict[str, Any]) -> float:
    """SingleStep's mu at the true statistics of one NQM (theory; Eq. (15) of arXiv 1706.03471)."""
    mu, _ = theory.singlestep(row["grad_var_true"], row["dist_true"], row["h_min"], row["h_max"])
    return float(mu)


def mu_tolerance(row: dict[str, Any], curv_tol: float) -> float:
    """How far SingleStep's mu moves inside what the preconditions allow.

    The largest change of ``theory.singlestep`` over the corners ``h_min (1 +- curv_tol)``,
    ``h_max (1 +- curv_tol)`` (the oracle may be that far off while its precondition holds) and
    ``D`` at either end of its bootstrap interval over seeds.
    """
    mu0 = true_singlestep(row)
    out = 0.0
    for s_lo in (1 - curv_tol, 1 + curv_tol):
        for s_hi in (1 - curv_tol, 1 + curv_tol):
            for d in row["dist_interval"]:
                lo, hi = row["h_min"] * s_lo, max(row["h_max"] * s_hi, row["h_min"] * s_lo)
                mu, _ = theory.singlestep(row["grad_var_true"], d, lo, hi)
                out = max(out, abs(float(mu) - mu0))
    return out


def kappa_row(run: dict[str, Any], seed: int, curv_tol: float) -> dict[str, Any]:
    """One kappa of the sweep: late tuning, oracle readings and SingleStep at the truth."""
    late, h, c = run["late"], run["h"], run["c"]
    row = {
        "dim": int(run["dim"]),
        "kappa": float(h.max() / h.min()),
        "h_min": float(h.min()),
        "h_max": float(h.max()),
        "grad_var_true": float(c.sum()),
        "dist_true": float(late["dist"].mean()),
        "dist_interval": list(bootstrap_interval(late["dist"], seed=seed)),
        "mu_late": float(late["momentum"].mean()),
        "mu_interval": list(bootstrap_interval(late["momentum"], seed=seed)),
        "alpha_late": float(late["learning_rate"].mean()),
        "h_min_ratio": (late["h_min"] / h.min()).tolist(),
        "h_max_ratio": (late["h_max"] / h.max()).tolist(),
        "grad_var_ratio": float(late["grad_var"].mean() / c.sum()),
        "dist_to_opt_ratio": float(late["dist_to_opt"].mean() / late["dist"].mean()),
        "settled": bool(run["settled"]),
        "drift": float(run["drift"]),
    }
    row["mu_singlestep_true"] = true_singlestep(row)
    row["mu_tolerance"] = mu_tolerance(row, curv_tol)
    # Diagnosis, not a check: SingleStep at the true curvature but YellowFin's own C and D.
    mu_cd, _ = theory.singlestep(
        float(late["grad_var"].mean()), float(late["dist_to_opt"].mean()), h.min(), h.max()
    )
    row["mu_singlestep_own_c_d"] = float(mu_cd)
    row["mu_robust_lower_bound"] = float(theory.min_robust_momentum(h.max() / h.min()))
    return row


def _worst(outcomes: list[str]) -> bool | None:
    if "fail" in outcomes:
        return False
    if "unresolved" in outcomes or not outcomes:
        return None
    return True


def oracle_precondition(rows: list[dict[str, Any]], curv_tol: float) -> Check:
    """The oracle's late h_min and h_max within ``1 +- curv_tol`` of the true extremes, every seed
    of every kappa (the claim is about true curvature: without it, it is not tested)."""
    worst = max(
        float(np.max(np.abs(np.asarray(r[k]) - 1.0)))
        for r in rows
        for k in ("h_min_ratio", "h_max_ratio")
    )
    return check(
        "oracle_reads_true_extremes",
        "precondition",
        worst <= curv_tol,
        predicted={"ratio": 1.0},
        measured={"largest_relative_error": worst},
        tolerance=curv_tol,
        note=(
            f"late h_min/h_max of the Hessian oracle over the spectrum's extremes: largest "
            f"relative error {worst:.2g} over every seed and kappa (allowed {curv_tol:g})"
        ),
    )


def settled_precondition(rows: list[dict[str, Any]], drift_tol: float) -> Check:
    """The operating point stopped moving in the read window, and no run diverged."""
    bad = [r["kappa"] for r in rows if not r["settled"]]
    return check(
        "operating_point_settled",
        "precondition",
        not bad,
        predicted={"drift_at_most": drift_tol},
        measured={"drift": [r["drift"] for r in rows]},
        note="settled at every kappa" if not bad else f"not settled at kappa {bad}",
    )


def momentum_check(
    rows: list[dict[str, Any]],
    name: str = "tuned_momentum_is_singlestep_at_true_statistics",
    headline: bool = True,
) -> Check:
    """The late tuned mu within SingleStep's mu at the true statistics +- the derived tolerance,
    on every row (every kappa of the NQM; the network), bootstrap interval over seeds. The NQM's
    is the headline."""
    outcomes = [
        interval_check(
            "k",
            "reproduction",
            r["mu_interval"],
            lower=r["mu_singlestep_true"] - r["mu_tolerance"],
            upper=r["mu_singlestep_true"] + r["mu_tolerance"],
        ).outcome
        for r in rows
    ]
    parts = [
        f"kappa {r['kappa']:.0f}: mu {r['mu_late']:.3f} vs {r['mu_singlestep_true']:.3f} "
        f"+- {r['mu_tolerance']:.3f} ({o})"
        for r, o in zip(rows, outcomes, strict=True)
    ]
    return check(
        name,
        "reproduction",
        _worst(outcomes),
        predicted=[r["mu_singlestep_true"] for r in rows],
        measured=[{"mu": r["mu_late"], "interval": r["mu_interval"]} for r in rows],
        tolerance=[r["mu_tolerance"] for r in rows],
        note="; ".join(parts),
        headline=headline,
    )


def speed_checks(
    speed: list[dict[str, Any]], factor: float, g_per_step: float, prefix: str = ""
) -> list[Check]:
    """Iterations and gradient evaluations to each target: heavy ball (1 g per step) over
    YellowFin with the oracle (``g_per_step``), claimed >= 1 / factor (competitive). ``prefix``
    names the bed (``"network_"``; empty for the NQM)."""
    out = []
    for s in speed:
        lo, hi = s["speed_interval"]
        hz = s["horizon"]
        measured = {k: v for k, v in s.items() if k != "hb_curve"}
        note = (
            f"target {s['target']:.3g}: YellowFin {s['iterations_yellowfin']:.0f} iterations "
            f"({s['iterations_yellowfin'] * g_per_step:.0f} g), heavy ball "
            f"{s['iterations_heavy_ball']:.0f} ({s['iterations_heavy_ball']:.0f} g)"
        )
        out.append(
            interval_check(
                f"{prefix}iterations_vs_retuned_heavy_ball_T{hz}",
                "reproduction",
                (lo, hi),
                lower=1.0 / factor,
                measured=measured,
                note=note,
            )
        )
        out.append(
            interval_check(
                f"{prefix}gradient_evaluations_vs_retuned_heavy_ball_T{hz}",
                "reproduction",
                (lo / g_per_step, hi / g_per_step),
                lower=1.0 / factor,
                measured={"ratio": s["speed"] / g_per_step, "g_per_step": g_per_step},
                note=note,
            )
        )
    return out


def grid_precondition(speed: list[dict[str, Any]], checks: list[Check], prefix: str = "") -> Check:
    """A re-tuned heavy ball on the grid's edge could be beaten off the grid: a failed speed check
    stands, a passed or unresolved one is not applicable."""
    by_h = {c.name.rsplit("_T", 1)[-1]: c for c in checks}
    decisive = [
        s["horizon"]
        for s in speed
        if s["heavy_ball"]["on_grid_edge"] and by_h[str(s["horizon"])].outcome != "fail"
    ]
    return check(
        f"{prefix}heavy_ball_best_inside_grid",
        "precondition",
        not decisive,
        measured=[s["heavy_ball"] for s in speed],
        note="every re-tuned heavy ball inside its grid"
        if not decisive
        else f"re-tuned heavy ball on the grid's edge at horizons {decisive}",
    )


def rebound_checks(
    lr_ratio: np.ndarray, loss_ratio: np.ndarray, tol: float, seed: int, prefix: str = ""
) -> list[Check]:
    """The late rebound is gone: late lr / lr at the best loss and late loss / best loss below
    ``1 + tol`` (bootstrap interval over seeds)."""
    out = []
    for name, x, what in (
        ("no_learning_rate_growth_after_best_loss", lr_ratio, "late alpha / alpha at best loss"),
        ("no_loss_rebound_without_decay", loss_ratio, "late loss / best smoothed loss"),
    ):
        iv = bootstrap_interval(x, seed=seed)
        out.append(
            interval_check(
                prefix + name,
                "reproduction",
                iv,
                upper=1.0 + tol,
                measured={"ratio": float(np.mean(x)), "interval": list(iv)},
                note=f"{what}: {np.mean(x):.3g} [{iv[0]:.3g}, {iv[1]:.3g}], claimed < {1 + tol:g}",
            )
        )
    return out
