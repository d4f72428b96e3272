"""Checks and summary of experiment 4 (rate-failures), written from the measured values.

``les`` and ``ab`` are the dictionaries that ``rate_failures._lessard`` and ``_abrupt`` return;
``found`` holds what ``rate_failures.run`` derived from them (cycle flags, misses, control gaps).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from experiments.framework import Check, check


def _rates(rates: np.ndarray) -> str:
    """The finite rates, three decimals each.

    Example:
        >>> _rates(np.array([0.9475, np.inf, 1.0]))
        '0.948, 1.000'
    """
    return ", ".join(f"{r:.3f}" for r in rates[np.isfinite(rates)])


def checks(cfg: Any, les: dict, ab: dict, found: dict) -> list[Check]:
    """Precondition (every visited curvature robust), two control verifications, two failures.

    Args:
        cfg: the :class:`~experiments.library.rate_failures.RateFailuresConfig`.
        les: the counterexample's runs and predictions.
        ab: the abrupt toy's runs and predictions.
        found: ``cycles`` (per start), ``periods``, ``control_gap``/``control_tol`` (Lessard
            control), ``ab_fail`` (per alpha), ``ab_ctl_ok``, ``ab_ctl_gap``, ``ab_ctl_tol``.
    """
    cycles, ab_fail = found["cycles"], found["ab_fail"]
    robust = bool(les["robust"]) and all(ab["robust"])
    n_ab = ab_fail.size
    z = cfg.z_tol
    return [
        check(
            "curvature_in_robust_region",
            "precondition",
            robust,
            predicted="alpha h(x) in the robust interval for every x in the region",
            measured={
                "lessard_range": les["range"],
                "lessard_robust": bool(les["robust"]),
                "abrupt_range": ab["range"],
                "abrupt_robust": [bool(r) for r in ab["robust"]],
            },
            note=(
                "every local operator has spectral radius sqrt(mu) on both objectives"
                if robust
                else "some visited curvature leaves the robust interval: a slower rate is then "
                "predicted by the spectral theory itself"
            ),
        ),
        check(
            "lessard_control_keeps_rate",
            "verification",
            found["control_gap"] <= found["control_tol"],
            predicted=les["control_pred"],
            measured=les["control_rate"],
            tolerance=found["control_tol"],
            note=f"quadratic with curvatures {', '.join(f'{h:g}' for h in cfg.control_h)} at the "
            f"same tuning; tolerance max({z:g} jackknife stderr, {cfg.abs_tol:g})",
        ),
        check(
            "abrupt_control_keeps_rate",
            "verification",
            bool(np.all(found["ab_ctl_ok"])),
            predicted=ab["control_pred"],
            measured=ab["control_rate"],
            tolerance=found["ab_ctl_tol"],
            note=f"{int(np.sum(found['ab_ctl_ok']))}/{n_ab} learning rates on the quadratic "
            f"[{cfg.abrupt_h[0]:g}, {cfg.abrupt_h[1]:g}] within max({z:g} jackknife stderr, "
            f"{cfg.abs_tol:g}); largest gap {found['ab_ctl_gap']:.2g}",
        ),
        check(
            "lessard_limit_cycle_from_every_start",
            "reproduction",
            bool(np.all(cycles)),
            predicted=f"a limit cycle from every start in {list(cfg.lessard_x0)} (Lessard et al.)",
            measured={"cycles": int(cycles.sum()), "starts": int(cycles.size)},
            tolerance=f"period <= {cfg.max_period}, repeating to {cfg.cycle_rtol:g}",
            note=f"{int(cycles.sum())}/{cycles.size} starts end in a cycle of period "
            f"{found['periods']} that stays {float(np.min(les['dmin'][: cycles.size])):.3g} "
            f"away from x*, against the local rate {les['local_rate']:.4f}",
            headline=True,
        ),
        check(
            "abrupt_rate_misses_sqrt_mu",
            "reproduction",
            bool(np.any(ab_fail)),
            predicted="slower than sqrt(mu), or divergent, for some robust alpha",
            measured={
                "misses": int(ab_fail.sum()),
                "alphas": n_ab,
                "diverged": int(np.sum(ab["diverged"])),
                "finite_rates": _rates(ab["rate"]),
            },
            tolerance=f"miss: rate > sqrt(mu) (1 + {cfg.rel_tol:g}) + {z:g} jackknife stderr",
            note=f"{int(ab_fail.sum())}/{n_ab} robust learning rates miss sqrt(mu) = "
            f"{np.sqrt(ab['mu']):.4f} by the margin ({int(np.sum(ab['diverged']))} diverge)",
        ),
    ]


def summary(cfg: Any, les: dict, ab: dict, found: dict) -> str:
    """One line: the counterexample's cycles and the abrupt toy's misses with their controls."""
    cycles, ab_fail = found["cycles"], found["ab_fail"]
    return (
        f"Lessard: {int(cycles.sum())}/{cycles.size} starts in [{cfg.lessard_x0[0]:g}, "
        f"{cfg.lessard_x0[1]:g}] end in a limit cycle (period {found['periods']}) although theory "
        f"predicts rate {les['local_rate']:.4f}; control quadratic rate "
        f"{les['control_rate']:.4f}. Abrupt toy, mu={ab['mu']:g}: {int(ab_fail.sum())}/"
        f"{ab_fail.size} robust alphas miss sqrt(mu) ({int(ab['diverged'].sum())} diverge, "
        f"finite rates {_rates(ab['rate'])}); control quadratic rates "
        f"{np.min(ab['control_rate']):.4f}-{np.max(ab['control_rate']):.4f}"
    )
