"""The real-network stage of experiment 10 (closed-loop): YellowFin open vs closed loop on a network
trained under geometric stale gradients of ``M`` workers (:mod:`._async_net_beds`: the digits MLP
in quick, a ResNet-8 on Fashion-MNIST in full, ResNet-20 on CIFAR-100 from ``$MOMLAB_CIFAR_DIR``
with 16 workers in the gpu tier, the paper's setting).

Three arms on the same seeds (initialisation, batches, delays): the synchronous control (open loop,
one worker), open loop and closed loop (:func:`._closed_loop_arms.yellowfin_arm`, gain
``net_gain``) with ``M`` workers. Every arm is observed by the total-momentum sensor of
:mod:`._async_net_sensor` (total convention, step ``alpha_k / M`` with ``alpha_k`` the step that
multiplied the gradient; zero-gradient coordinates left out), which is not the controller's.

Each seed's batch losses are smoothed by a trailing mean of ``net_smooth`` steps and read every
``net_record_every`` steps; the NQM beds' measurements (:func:`._closed_loop_measure.assess_bed`)
then apply: the control's rebound, the ladder between the loss at the end of the slow start and
``net_floor_margin`` times the best loss of the best run (not of the slowest, as on the NQM: a run
under staleness can stall far above the others; a level a run never reaches counts the rest of
the horizon), iterations below its first level, ratio intervals. The margin is 1.2, not the
NQM's 2: measured on the digits MLP (4 seeds, 1000 steps), both stale arms stall near 0.43 (the
control reaches 0.047) after 0.61 at the end of the slow start, so a 2x margin leaves no ladder.

Checks (kinds fixed before measuring):

- ``net_data_present`` (precondition): the bed's data can be read; otherwise the reason names
  the missing path or variable, nothing is trained, and the record is ``not applicable`` (the NQM
  checks are still recorded with their outcomes).
- ``net_control_trains`` (precondition): the synchronous control's late loss is below
  ``net_trained`` times the chance loss and it does not rebound (late / best <= ``rebound_limit``),
  and the ladder exists.
- ``net_loop_sensor_reads_target`` (identity): the controller's own reading, late median, equals
  its target within ``track_tol``: what an integral controller does by construction.
- ``net_total_momentum_compensated`` (reproduction, the paper's mechanism): the independent
  sensor's pooled least-squares total momentum over the second half, minus the run's target
  (SingleStep's tuned momentum), is smaller in absolute value in closed loop than in open loop:
  the bootstrap interval over seeds of ``mean |gap_open| - mean |gap_closed|`` lies above 0.
- ``net_speedup`` (reproduction): open / closed mean iterations over the ladder, interval above 1
  holds, below 1 fails, straddling 1 unresolved (the paper reports about 2x).
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

import gpu
from experiments.framework import Check, bootstrap_interval, check, interval_check
from experiments.library._async_net_beds import arm_resources, pooled_ls, staged_arm
from experiments.library._async_net_sensor import find_field, observed
from experiments.library._closed_loop_arms import yellowfin_arm
from experiments.library._closed_loop_measure import assess_bed
from experiments.library._closed_loop_text import speed_text
from experiments.library._total_momentum_net import bed_of, data_present

_KEEP = (
    "total_ls_num",
    "total_ls_den",
    "momentum",
    "tuned_momentum",
    "learning_rate",
    "mu_hat",
    "mu_algo",
    "mu_target",
)


def _step_size(state: Any) -> Any:
    return find_field(state, "step_size")


def smooth_records(loss: np.ndarray, window: int, every: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing mean of ``window`` steps of each row, read every ``every`` steps.

    Returns ``(steps, smoothed (rows, records))``; the record at step ``t`` averages steps
    ``max(0, t - window + 1) .. t``.

    Example:
        >>> t, s = smooth_records(np.arange(6.0)[None], 2, 2)
        >>> t.tolist(), s.tolist()
        ([0.0, 2.0, 4.0], [[0.0, 1.5, 3.5]])
    """
    c = np.concatenate([np.zeros((loss.shape[0], 1)), np.cumsum(loss, axis=1)], axis=1)
    t = np.arange(0, loss.shape[1], every)
    lo = np.maximum(0, t - window + 1)
    return t.astype(np.float64), (c[:, t + 1] - c[:, lo]) / (t + 1 - lo)


def network_stage(cfg: Any, seed: int) -> tuple[dict, list[Check]]:
    """Train the three arms (resumable stages) and return ``(measurement, checks)``."""
    bed = bed_of(cfg)
    checks = [data_present("net_data_present", bed)]
    if not checks[0].passed:
        return {"bed": bed.describe(), "missing": checks[0].note}, checks
    m, g = cfg.workers, cfg.net_gain
    seeds = [1000 * seed + s for s in range(cfg.net_seeds)]
    tau = gpu.geometric(m).max_tau
    arms = {"sync": (None, 1), "open": (None, m), f"closed_{g:g}": (g, m)}
    total = len(arms) * cfg.net_steps * len(seeds)
    res: dict[str, dict[str, np.ndarray]] = {}
    for i, (name, (gain, workers)) in enumerate(arms.items()):

        def make(gain=gain, workers=workers):
            inner = yellowfin_arm(cfg, gain)
            return observed(
                inner,
                workers=workers,
                max_staleness=tau if workers > 1 else 0,
                step_size=_step_size,
            )

        res[name] = staged_arm(
            f"net_{name}",
            make,
            bed,
            seeds=seeds,
            steps=cfg.net_steps,
            workers=workers,
            keep=_KEEP,
            done_before=i * cfg.net_steps * len(seeds),
            total=total,
            what=f"{bed.describe()}, YellowFin {name}, M={workers}",
        )
    steps, smoothed = None, {}
    for name, r in res.items():
        steps, smoothed[name] = smooth_records(r["loss"], cfg.net_smooth, cfg.net_record_every)
    view = types.SimpleNamespace(
        gains=(g,),
        warm_up=cfg.warm_up,
        block=cfg.block,
        levels=cfg.levels,
        floor_margin=cfg.net_floor_margin,
        rebound_limit=cfg.rebound_limit,
        ladder_floor="fastest",
    )
    assessed = assess_bed(view, {"steps": steps, **smoothed}, seed)
    chance = float(np.log(100.0 if bed.dataset == "cifar100" else 10.0))
    tail = max(1, cfg.net_steps // 10)
    control_late = float(np.median(res["sync"]["loss"][:, -tail:].mean(axis=1)))
    trained = control_late < cfg.net_trained * chance
    settles = bool(assessed["applicable"])
    checks.append(
        check(
            "net_control_trains",
            "precondition",
            trained and settles,
            predicted=f"late loss < {cfg.net_trained * chance:.3f}, late / best <= "
            f"{cfg.rebound_limit:g}",
            measured={"late_loss": control_late, "late_over_best": assessed["control"]["ratio"]},
            note=f"synchronous control: late loss {control_late:.3f} vs chance {chance:.3f}; "
            + assessed["reason"],
        )
    )
    closed = res[f"closed_{g:g}"]
    half = cfg.net_steps // 2
    loop_read = float(np.nanmedian(closed["mu_hat"][:, half:] - closed["mu_target"][:, half:]))
    checks.append(
        check(
            "net_loop_sensor_reads_target",
            "identity",
            abs(loop_read) <= cfg.track_tol,
            predicted=0.0,
            measured=loop_read,
            tolerance=cfg.track_tol,
            note="median of the controller's own reading minus its target over the second half",
        )
    )
    gaps = {}
    for name in ("open", f"closed_{g:g}"):
        r = res[name]
        total_mu = pooled_ls(r["total_ls_num"], r["total_ls_den"], half)
        target = r["tuned_momentum"][:, half:].mean(axis=1)
        gaps[name] = {"total": total_mu, "target": target, "gap": total_mu - target}
    diff = np.abs(gaps["open"]["gap"]) - np.abs(gaps[f"closed_{g:g}"]["gap"])
    lo, hi = bootstrap_interval(diff, seed=seed)
    mean_gap = {k: float(v["gap"].mean()) for k, v in gaps.items()}
    checks.append(
        interval_check(
            "net_total_momentum_compensated",
            "reproduction",
            (lo, hi),
            lower=0.0,
            measured={"difference": float(diff.mean()), "interval": [lo, hi]}
            | {f"gap_{k}": v for k, v in mean_gap.items()},
            note=f"total momentum minus target: open {mean_gap['open']:+.4f}, closed "
            f"{mean_gap[f'closed_{g:g}']:+.4f}; |open| - |closed| {diff.mean():+.4f} "
            f"[{lo:+.4f}, {hi:+.4f}] over {len(seeds)} seeds",
        )
    )
    speed = None
    if settles and trained:
        speed = assessed["gains"][g]
        checks.append(
            interval_check(
                "net_speedup",
                "reproduction",
                speed["interval"],
                lower=1.0,
                measured={"ratio": speed["speedup"], "interval": list(speed["interval"])},
                note=f"{bed.describe()}, M={m}, gain {g:g}: closed loop "
                f"{speed_text(speed['speedup'], speed['interval'])} over the ladder (mean "
                f"iterations {speed['open_iterations']:.0f} open, {speed['closed_iterations']:.0f} "
                "closed)",
            )
        )
    out = {
        "bed": bed.describe(),
        "steps": steps,
        "median_loss": {k: np.median(v, axis=0) for k, v in smoothed.items()},
        "ladder": assessed["ladder"],
        "applicable": settles and trained,
        "control": assessed["control"],
        "speed": speed,
        "gaps": gaps,
        "mu_algo": np.median(closed["mu_algo"], axis=0),
        "mu_target": np.median(closed["mu_target"], axis=0),
        "open_momentum": np.median(res["open"]["momentum"], axis=0),
        "resources": arm_resources(res),
    }
    return out, checks


def record_parts(net: dict | None) -> tuple[dict, dict[str, np.ndarray], str]:
    """``(measurement, arrays, summary suffix)`` of the network stage for the record."""
    if net is None:
        return {"run": False}, {}, "; network not run"
    if "missing" in net:
        return {"bed": net["bed"], "missing": net["missing"]}, {}, f"; {net['missing']}"
    gaps = {
        k: {
            "total_momentum": float(v["total"].mean()),
            "target": float(v["target"].mean()),
            "gap": float(v["gap"].mean()),
        }
        for k, v in net["gaps"].items()
    }
    measured = {"bed": net["bed"], "applicable": net["applicable"], "control": net["control"]}
    measured["total_momentum_vs_target"] = gaps
    if "resources" in net:
        measured["resources"] = net["resources"]
    if net["speed"] is not None:
        measured["speed"] = net["speed"]
    arrays = {f"net_{k}": v for k, v in net["median_loss"].items()}
    arrays["net_steps"] = net["steps"]
    arrays["net_applicable"] = np.asarray(net["applicable"])
    arrays["net_mu_algo"] = net["mu_algo"]
    arrays["net_mu_target"] = net["mu_target"]
    arrays["net_open_momentum"] = net["open_momentum"]
    if net["ladder"] is not None:
        arrays["net_ladder"] = net["ladder"]
    text = f"; {net['bed']}: total momentum - target open {gaps['open']['gap']:+.3f}, closed "
    text += ", ".join(f"{v['gap']:+.3f}" for k, v in gaps.items() if k != "open")
    if net["speed"] is not None:
        text += f", closed loop {speed_text(net['speed']['speedup'], net['speed']['interval'])}"
    else:
        text += " (speed not applicable)"
    return measured, arrays, text
