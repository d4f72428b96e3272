"""Checks of experiment 10 (closed-loop) on the NQM: the tracking verification against first order,
the synchronous control's precondition and the speedup per applicable bed and gain (the module
docstring of :mod:`.closed_loop` states them)."""

from __future__ import annotations

from typing import Any

import numpy as np

import theory
from experiments.framework import Check, check, interval_check
from experiments.library._closed_loop_measure import richardson
from experiments.library._closed_loop_text import bed_note, precondition_note


def loop_sensor_identity(readings: list[float], target: float, tol: float) -> Check:
    """The identity that the loop's own sensor settles at its target (shown, never deciding)."""
    return check(
        "loop_sensor_reads_target",
        "identity",
        all(abs(v - target) <= tol for v in readings),
        predicted=target,
        measured=readings,
        tolerance=tol,
        note="an integral controller drives its own sensor to the set point by construction",
    )


def checks_of(cfg: Any, trk: dict, assessed: dict[int, dict]) -> list[Check]:
    """The record's checks from the tracking readings and the assessed beds."""
    m = cfg.workers
    t0, t1 = (float(theory.total_momentum(v, m)) for v in (0.0, 0.5))
    predicted = (cfg.target - t0) / (2.0 * (t1 - t0))  # first-order total momentum, inverted
    r = trk["mu_algo"]
    se = trk["mu_algo_se"]
    est, est_se = richardson(r[-2], r[-1], se[-2], se[-1])
    allow = 4.0 * est_se + cfg.track_tol
    measured = {"extrapolated": est, "se": est_se}
    measured["per_step"] = {f"{a:g}": v for a, v in zip(trk["alphas"], r, strict=True)}
    if len(r) >= 3 and (r[-3] - r[-2]) * (r[-2] - r[-1]) > 0:
        # order p of the deviation c alpha^p from three halvings (reported; the rule uses 2)
        measured["measured_order"] = float(np.log2((r[-3] - r[-2]) / (r[-2] - r[-1])))
    out = [
        loop_sensor_identity(trk["loop_sensor"], cfg.target, cfg.track_tol),
        check(
            "settled_mu_algo_first_order",
            "verification",
            abs(est - predicted) <= allow,
            predicted=predicted,
            measured=measured,
            tolerance=f"4 SE + {cfg.track_tol} = {allow:.4f}",
            note=f"settled mu_algo at M = {m}, total convention, target {cfg.target}, "
            "Richardson-extrapolated to a vanishing step, vs 1 - M (1 - target)",
        ),
    ]
    live = [b for b in cfg.batches if assessed[b]["applicable"]]
    out.append(
        check(
            "synchronous_control_settles",
            "precondition",
            bool(live),
            predicted=f"late / best <= {cfg.rebound_limit:g} on at least one bed",
            measured={f"B={b}": assessed[b]["control"]["ratio"] for b in cfg.batches},
            note=precondition_note(cfg, assessed),
        )
    )
    for b in live:
        for g in cfg.gains:
            res = assessed[b]["gains"][g]
            out.append(
                interval_check(
                    f"speedup_B{b}_gain{g:g}",
                    "reproduction",
                    res["interval"],
                    lower=1.0,
                    measured={"ratio": res["speedup"], "interval": list(res["interval"])},
                    note=bed_note(b, g, res),
                    headline=(b == live[0] and g == cfg.default_gain),
                )
            )
    return out
