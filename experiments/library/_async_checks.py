"""Checks of experiment 8 (asynchrony-momentum): kinds and outcomes from the measured parts.

(a)-(c), :func:`mean_checks`: the staleness law, the mean dynamics and the mean rates against theory
(verifications; the ensemble's power against synchronous SGD is a precondition). (d),
:func:`best_checks`: the best explicit momentum of single runs (the sign is the headline
reproduction; the grid must not censor the best).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from scipy import stats

import theory
from experiments.framework import Check, check, interval_check


def _grid_step(mus: np.ndarray) -> float:
    return float(np.min(np.diff(np.sort(mus))))


def best_checks(best: dict) -> list[Check]:
    """Checks of part (d), from :func:`experiments.library._async_best.best_momentum_part`'s dict.

    - precondition ``best_inside_grid``: every bootstrap interval of the best momentum lies strictly
      inside the grid (a best on the grid's edge is censored by the grid);
    - verification ``synchronous_best_is_polyak`` (when ``M = 1`` is swept): the deterministic
      synchronous run's best momentum is theory's optimum within half a grid step;
    - reproduction ``best_momentum_negative_M{m}`` for each ``M > 1`` (headline: the smallest):
      the bootstrap interval of the best momentum lies below 0 (straddling 0: unresolved);
    - reproduction ``best_momentum_falls_with_M``: the intervals of successive ``M`` are ordered
      (overlapping: unresolved);
    - reproduction ``best_momentum_at_mean_dynamics_optimum_M{m}``: the interval, widened by half a
      grid step, meets theory's near-optimal band (the momenta whose mean-dynamics rate is within
      the measured-rate resolution ``rate_abs`` of :func:`theory.optimal_explicit_momentum`'s);
      disjoint: fail.
    """
    mus, workers = best["mus"], [int(m) for m in best["workers"]]
    half = _grid_step(mus) / 2
    iv = {m: tuple(float(v) for v in best["interval"][i]) for i, m in enumerate(workers)}
    mu_t = {m: float(best["mu_theory"][i]) for i, m in enumerate(workers)}
    edge = [
        m for m in workers if not (mus[0] < iv[m][0] and iv[m][1] < mus[-1])
    ]  # NaN intervals land here too
    checks = [
        check(
            "best_inside_grid",
            "precondition",
            not edge,
            measured={str(m): list(iv[m]) for m in workers},
            tolerance=[float(mus[0]), float(mus[-1])],
            note=(
                "every bootstrap interval of the best momentum lies inside the grid"
                if not edge
                else "best momentum censored by the grid's edge at M = "
                + ", ".join(f"{m} (interval [{iv[m][0]:+.2f}, {iv[m][1]:+.2f}])" for m in edge)
            ),
        )
    ]
    if 1 in workers:
        lo, hi = iv[1]
        checks.append(
            interval_check(
                "synchronous_best_is_polyak",
                "verification",
                (lo - half, hi + half),
                predicted=mu_t[1],
                note="M = 1 is deterministic heavy ball: its fastest grid momentum is theory's "
                "(1 - sqrt(alpha h_min))^2 within half a grid step",
            )
        )
    asyn = [m for m in workers if m > 1]
    for m in asyn:
        checks.append(
            interval_check(
                f"best_momentum_negative_M{m}",
                "reproduction",
                iv[m],
                upper=0.0,
                measured={"best": float(best["best"][workers.index(m)]), "interval": list(iv[m])},
                note=f"M = {m}: 95% bootstrap interval over seeds of the argmin of the mean late "
                "rate of single runs",
                headline=m == asyn[0],
            )
        )
    order = sorted(workers)
    pairs = list(itertools.pairwise(order))
    falls: bool | None = True
    for a, b in pairs:
        if iv[b][0] > iv[a][1]:
            falls = False
            break
        if not iv[b][1] < iv[a][0]:
            falls = None
    checks.append(
        check(
            "best_momentum_falls_with_M",
            "reproduction",
            falls if pairs else None,
            measured={str(m): list(iv[m]) for m in order},
            tolerance="the bootstrap intervals of successive M are disjoint and ordered",
            note="interval of the larger M entirely below that of the smaller M",
        )
    )
    for m in asyn:
        lo, hi = iv[m]
        b_lo, b_hi = (float(v) for v in best["theory_band"][workers.index(m)])
        meets = lo - half <= b_hi and b_lo <= hi + half if np.isfinite([lo, hi]).all() else None
        checks.append(
            check(
                f"best_momentum_at_mean_dynamics_optimum_M{m}",
                "reproduction",
                meets,
                predicted={"optimum": mu_t[m], "near_optimal_band": [b_lo, b_hi]},
                measured=list(iv[m]),
                tolerance=f"interval widened by {half:.3f} meets the band",
                note=f"M = {m}: single-run best [{lo:+.2f}, {hi:+.2f}] vs the mean-dynamics "
                f"optimum {mu_t[m]:+.3f}, near-optimal band [{b_lo:+.2f}, {b_hi:+.2f}] "
                f"(first-order rule {float(best['mu_first_order'][workers.index(m)]):+.3f})",
            )
        )
    return checks


def mean_checks(cfg: Any, hist: dict, mean: dict, opt: dict) -> list[Check]:
    """Checks of parts (a)-(c): the staleness law, the mean dynamics and the mean rates."""
    p_level = cfg.p_min / len(cfg.hist_workers)
    mean_z = float(stats.norm.isf(cfg.p_min / (2 * len(cfg.hist_workers))))
    mean_dev = [
        abs(mu - float(theory.staleness_mean(m))) / se
        for m, mu, se in zip(hist["workers"], hist["mean"], hist["mean_se"], strict=True)
    ]
    return [
        check(
            "staleness_is_geometric_chi2",
            "verification",
            min(hist["p_value"]) > p_level,
            predicted="Geom(1/M)",
            measured=min(hist["p_value"]),
            tolerance=f"p > {p_level:.2g}",
            note="chi-square of the exact schedule's staleness against Geom(1/M), every M",
        ),
        check(
            "staleness_mean_is_M_minus_1",
            "verification",
            max(mean_dev) <= mean_z,
            predicted=[float(theory.staleness_mean(m)) for m in hist["workers"]],
            measured=hist["mean"],
            tolerance=f"{mean_z:.2f} standard errors",
        ),
        check(
            "ensemble_power_against_synchronous_sgd",
            "precondition",
            mean["sync_rejected"],
            note="the ensemble tells asynchronous from synchronous SGD (the comparison has power)"
            if mean["sync_rejected"]
            else "the ensemble mean is within 5 tolerances of synchronous SGD: no power",
        ),
        check(
            "ensemble_mean_is_heavy_ball",
            "verification",
            mean["max_err_over_tol"] <= 1.0,
            predicted="heavy ball (1 - 1/M, alpha/M) after a full first step",
            measured=mean["max_err_over_tol"],
            tolerance="max |mean - heavy ball| / tolerance <= 1",
        ),
        check(
            "mean_rates_match_mean_dynamics",
            "verification",
            opt["max_gap_over_tol"] <= 1.0,
            predicted="largest root of the third-order mean recursion",
            measured=opt["max_gap_over_tol"],
            tolerance="max gap / tolerance <= 1 on the resolved records",
            note=f"{100 * opt['resolved_fraction']:.0f}% of (M, mu_L) resolved",
        ),
        check(
            "no_mean_rate_beats_theory_optimum",
            "verification",
            not opt["optimum_beaten"],
            note="no resolved ensemble-mean rate is measurably below the optimal mean rate",
        ),
    ]
