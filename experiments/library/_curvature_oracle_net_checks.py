"""Checks and record parts of yellowfin-curvature-oracle's network bed.

The network's true statistics (:mod:`._curvature_oracle_net`): ``h_min``, ``h_max`` the extreme
eigenvalues of the exact full-batch Hessian at the polished minimiser ``x*``, ``C`` the exact
minibatch gradient variance there, ``D`` the seeds' late mean ``||x_t - x*||``. SingleStep on them
(:func:`._curvature_oracle_checks.true_singlestep`, theory) is the prediction; the late tuned mu of
YellowFin with the Hessian oracle the measurement.

Kinds. On the NQM the Hessian of the minibatch loss is the objective's, so the oracle reading the
true extremes is a precondition (it checks the Lanczos runs converged). On a network the oracle
reads the Hessian of a minibatch loss, which differs from the objective's: whether it reads the
true extremes is itself a claim that can be false, so it is a reproduction check here. The one
precondition of the bed is that the objective has a strict minimiser (the polish converged, the
Hessian there positive definite); heavy ball's grid has its own (``network_heavy_ball_best_inside_
grid``, as on the NQM). The headline stays the NQM's: only there are the true statistics known
exactly at every step; here ``x*`` is a float64 polish and the late point of a run that does not
settle has no stationary ``D``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from experiments.framework import Check, bootstrap_interval, check, interval_check
from experiments.library import _curvature_oracle_checks as chk
from experiments.library import _singlestep_nqm_runs as nqm_runs
from experiments.library._curvature_oracle_net import ARMS, STATS, ladder

GRAD_TOL = 1e-8  # |grad f(x*)| of a converged polish (float64 floor ~1e-14; the rates need 1e-8)


def late(cfg: Any, arm: dict[str, np.ndarray], t: np.ndarray) -> tuple[dict, float, int]:
    """Per-seed means over the read window ``t >= net_read_from``, the drift and its start."""
    j0 = int(np.searchsorted(t, cfg.net_read_from))
    out = {k: arm[k][:, j0:].mean(-1) for k in STATS}
    out["dist"], out["loss"] = arm["dist"][:, j0:].mean(-1), arm["loss"][:, j0:].mean(-1)
    return out, nqm_runs.drift(arm["learning_rate"][:, j0:], arm["momentum"][:, j0:]), j0


def net_row(cfg: Any, arm: dict[str, np.ndarray], tr: dict, t: np.ndarray, seed: int) -> dict:
    """The NQM's kappa row on the network: late tuning against SingleStep at the true statistics."""
    lt, moved, _ = late(cfg, arm, t)
    finite = bool(np.all(np.isfinite(arm["loss"])))
    run = {
        "dim": int(tr["x_star"].size),
        "late": lt,
        "h": np.array([float(tr["h_min"]), float(tr["h_max"])]),
        "c": np.array([float(tr["grad_var"])]),
        "drift": moved,
        "settled": bool(finite and moved <= cfg.drift_tol),
    }
    row = chk.kappa_row(run, seed, cfg.curv_tol)
    row["late_loss_excess"] = float(lt["loss"].mean() - float(tr["f_star"]))
    return row


def minimiser_precondition(tr: dict) -> Check:
    """The objective has a strict minimiser: the polish converged and the Hessian there is
    positive definite (else no ``x*``, ``D`` or positive ``h_min`` exists)."""
    g, h = float(tr["grad_norm"]), float(tr["h_min"])
    return check(
        "network_has_strict_minimiser",
        "precondition",
        g <= GRAD_TOL and h > 0,
        predicted={"grad_norm_at_most": GRAD_TOL, "h_min_above": 0.0},
        measured={"grad_norm": g, "h_min": h, "h_max": float(tr["h_max"])},
        note=f"polished |grad f(x*)| {g:.2g}, Hessian eigenvalues in [{h:.3g}, "
        f"{float(tr['h_max']):.3g}]",
    )


def oracle_check(row: dict, curv_tol: float, seed: int) -> Check:
    """The Hessian oracle's late h_min and h_max within ``1 +- curv_tol`` of the exact full-batch
    extremes at ``x*`` (bootstrap interval over seeds of the per-seed ratios)."""
    outcomes, measured = [], {}
    for k in ("h_min_ratio", "h_max_ratio"):
        x = np.asarray(row[k], np.float64)
        iv = bootstrap_interval(x, seed=seed)
        c = interval_check(k, "reproduction", iv, lower=1 - curv_tol, upper=1 + curv_tol)
        outcomes.append(c.outcome)
        measured[k] = {"mean": float(x.mean()), "interval": list(iv)}
    ok = chk._worst(outcomes)
    return check(
        "network_oracle_reads_true_extremes",
        "reproduction",
        ok,
        predicted={"ratio": 1.0},
        measured=measured,
        tolerance=curv_tol,
        note=(
            f"late oracle h_min / true {measured['h_min_ratio']['mean']:.3g}, h_max / true "
            f"{measured['h_max_ratio']['mean']:.3g} (allowed 1 +- {curv_tol:g})"
        ),
    )


def network_part(
    cfg: Any, net: dict[str, Any], seed: int, g_step: float, rebound: Callable
) -> dict[str, Any]:
    """Rows, checks, measurement, arrays and the summary sentence of the network bed."""
    tr, t, hb = net["truth"], net["t"], net["hb"]
    rows = {a: net_row(cfg, net["arms"][a], tr, t, seed) for a in ARMS}
    speeds = {
        a: ladder(
            cfg, hb["losses"], hb["alphas"], hb["mus"], net["arms"][a]["loss"], float(tr["f_init"])
        )
        for a in ARMS
    }
    arm = net["arms"]["hessian"]
    lt, _, _ = late(cfg, arm, t)
    rb = rebound(cfg, {"t": t, "st": arm, "loss": arm["loss"], "late": lt})
    speed_checks = chk.speed_checks(speeds["hessian"], cfg.speed_factor, g_step, "network_")
    iters = [c for c in speed_checks if c.name.startswith("network_iter")]
    checks = [
        minimiser_precondition(tr),
        chk.grid_precondition(speeds["hessian"], iters, "network_"),
        oracle_check(rows["hessian"], cfg.curv_tol, seed),
        chk.momentum_check(
            [rows["hessian"]], "network_tuned_momentum_is_singlestep_at_true_statistics", False
        ),
        *speed_checks,
        *chk.rebound_checks(rb["lr_ratio"], rb["loss_ratio"], cfg.rebound_tol, seed, "network_"),
    ]
    mb_min = np.asarray(tr["minibatch_h_min"])
    last = np.asarray(arm["hessian_extremes_last"])
    g_per = {"hessian": g_step, "gradient_norm": 1.0}
    table = {}
    for a in ARMS:
        table[a] = [{k: v for k, v in s.items() if k != "hb_curve"} for s in speeds[a]]
        for s in table[a]:
            s["gradient_evaluations_yellowfin"] = s["iterations_yellowfin"] * g_per[a]
            s["gradient_evaluations_heavy_ball"] = s["iterations_heavy_ball"]
    measurement = {
        "problem": net["problem"].name,
        "parameters": int(tr["x_star"].size),
        "batch_size": cfg.net_batch,
        "truth": {
            "f_star": float(tr["f_star"]),
            "grad_norm": float(tr["grad_norm"]),
            "h_min": float(tr["h_min"]),
            "h_max": float(tr["h_max"]),
            "grad_var": float(tr["grad_var"]),
            "minibatch_hessian_lowest_mean": float(mb_min.mean()),
            "minibatch_hessian_negative_fraction": float(np.mean(mb_min < 0)),
            "minibatch_hessian_highest_mean": float(np.mean(tr["minibatch_h_max"])),
        },
        "rows": rows,
        "last_iterate": {
            a: {
                "dist_to_x_star": float(net["arms"][a]["dist"][:, -1].mean()),
                "grad_var_over_true": float(
                    net["arms"][a]["grad_var_last"].mean() / tr["grad_var"]
                ),
            }
            for a in ARMS
        },
        "hessian_arm_full_hessian_lowest_at_last_iterate": last[:, 0].tolist(),
        "speed": table,
        "gradient_evaluations_per_step": {
            "yellowfin_hessian": g_step,
            "yellowfin_gradient_norm": 1.0,
            "heavy_ball": 1.0,
        },
        "rebound": {
            "best_step": rb["best_step"],
            "loss_at_best": rb["loss_at_best"],
            "lr_ratio": float(rb["lr_ratio"].mean()),
            "loss_ratio": float(rb["loss_ratio"].mean()),
        },
    }
    r, o = rows["hessian"], rows["gradient_norm"]
    summary = (
        f"Network ({net['problem'].name}, B = {cfg.net_batch}): tuned mu {r['mu_late']:.4f} vs "
        f"SingleStep at the true statistics {r['mu_singlestep_true']:.3f} +- "
        f"{r['mu_tolerance']:.3f} (official ||g||^2 YellowFin {o['mu_late']:.3f} vs "
        f"{o['mu_singlestep_true']:.3f}); oracle h_min / true "
        f"{np.mean(r['h_min_ratio']):.2g}, h_max / true {np.mean(r['h_max_ratio']):.2f}; the "
        f"minibatch Hessian at x* has a negative eigenvalue on {np.mean(mb_min < 0):.0%} of "
        f"batches (mean lowest {mb_min.mean():.3g}); late lr / lr at best loss "
        f"{rb['lr_ratio'].mean():.2f}, late loss / best {rb['loss_ratio'].mean():.2f}."
    )
    arrays = {
        "net_t": t,
        "net_f_star": np.asarray(float(tr["f_star"])),
        "net_loss": np.stack([net["arms"][a]["loss"].mean(0) for a in ARMS]),
        "net_mu": np.stack([net["arms"][a]["momentum"].mean(0) for a in ARMS]),
        "net_mu_singlestep": np.array([rows[a]["mu_singlestep_true"] for a in ARMS]),
        "net_hb_curves": np.array([s["hb_curve"] for s in speeds["hessian"]]),
        "net_t_hb": np.arange(len(speeds["hessian"][0]["hb_curve"])) * cfg.net_record_every,
        "net_g_per_step": np.array([g_per[a] for a in ARMS]),
    }
    return {"checks": checks, "measurement": measurement, "summary": summary, "arrays": arrays}
