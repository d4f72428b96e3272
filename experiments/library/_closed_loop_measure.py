"""Measurements of experiment 10 (closed-loop), pure NumPy: the synchronous control's rebound,
iterations to a ladder of loss levels after the warm-up, the speedup and late-loss intervals, and
the extrapolation of the tracking reading to a vanishing step."""

from __future__ import annotations

from typing import Any

import numpy as np

from experiments.framework import ratio_interval


def richardson(coarse: float, fine: float, coarse_se: float, fine_se: float) -> tuple[float, float]:
    """Extrapolation to a vanishing step of a reading with a deviation ``c alpha^2``.

    ``r(0) ~ (4 r(alpha/2) - r(alpha)) / 3``; standard error ``sqrt(16 se_fine^2 + se^2) / 3``.

    Example:
        >>> richardson(0.2 + 0.016, 0.2 + 0.004, 0.0, 0.0)
        (0.2, 0.0)
    """
    est = (4.0 * fine - coarse) / 3.0
    return round(est, 15), float(np.hypot(4.0 * fine_se, coarse_se) / 3.0)


def batch_means(x: np.ndarray, batches: int = 20) -> tuple[float, float]:
    """Mean and batch-means standard error of a correlated trace."""
    x = np.asarray(x, np.float64)
    b = x[: x.size // batches * batches].reshape(batches, -1).mean(axis=1)
    return float(x.mean()), float(b.std(ddof=1) / np.sqrt(batches))


def rebound(median: np.ndarray, steps: np.ndarray, block: int) -> dict:
    """Late over best loss of a seed-median curve.

    ``best``: the smallest mean over consecutive blocks of ``block`` steps; ``late``: the mean over
    the last quarter of the records. A ratio far above 1 means the run climbs back.

    Example:
        >>> t = np.arange(0.0, 1000.0, 10.0)
        >>> round(rebound(np.exp(-t / 100) + 0.1, t, 100)["ratio"], 2)
        1.0
    """
    per = max(1, round(block / max(float(steps[1] - steps[0]), 1.0)))
    n = median.size // per * per
    blocks = median[:n].reshape(-1, per).mean(axis=1)
    i = int(np.argmin(blocks))
    late = float(np.mean(median[3 * median.size // 4 :]))
    best = float(blocks[i])
    return {"best": best, "best_step": float(steps[i * per]), "late": late, "ratio": late / best}


def iterations_to_levels(
    losses: np.ndarray, steps: np.ndarray, levels: np.ndarray, warm_up: int
) -> tuple[np.ndarray, np.ndarray]:
    """Iterations after the warm-up until each seed's loss first falls to each level.

    Args:
        losses: ``(seeds, records)``; steps: ``(records,)``; levels: ``(K,)``.
        warm_up: records before this step are not read.

    Returns:
        ``(iterations (seeds, K), reached (seeds, K))``; a level not reached counts as the rest
        of the horizon, ``steps[-1] - warm_up``.

    Example:
        >>> t = np.arange(0.0, 100.0, 10.0)
        >>> it, ok = iterations_to_levels(np.exp(-t / 20)[None], t, np.array([0.1, 1e-9]), 20)
        >>> it.tolist(), ok.tolist()
        ([[30.0, 70.0]], [[True, False]])
    """
    after = steps >= warm_up
    below = losses[:, after, None] <= levels[None, None, :]
    reached = below.any(axis=1)
    first = np.argmax(below, axis=1)
    horizon = steps[-1] - warm_up
    its = np.where(reached, steps[after][first] - warm_up, horizon)
    return its.astype(np.float64), reached


def assess_bed(cfg: Any, bed: dict, seed: int) -> dict:
    """Precondition, ladder, speedups and late losses of one test bed (pure NumPy).

    Returns a dict with ``control`` (:func:`rebound` of the synchronous control), ``applicable``
    and ``reason``, and per gain the iteration and late-loss ratios with their intervals. The
    iterations of a seed are the mean over the deeper levels of the iterations from its first
    passage through the ladder's first level (the whole rest of the horizon when that level is
    never reached); the iterations from the end of the warm-up to each level are reported beside.
    """
    steps = bed["steps"]
    compared = ["open"] + [f"closed_{g:g}" for g in cfg.gains]
    control = rebound(np.median(bed["sync"], axis=0), steps, cfg.block)
    out: dict = {"control": control, "gains": {}}
    at_warm = int(np.searchsorted(steps, cfg.warm_up))
    top = min(float(np.median(bed[k][:, at_warm])) for k in compared)
    arms = {k: rebound(np.median(bed[k], axis=0), steps, cfg.block) for k in compared}
    out["late_over_best"] = {k: v["ratio"] for k, v in arms.items()}
    # "slowest" (NQM): every compared run reaches every level; "fastest" (networks, where the open
    # loop under staleness can stall far above the others): down to the best run's floor, a level a
    # run never reaches counting the rest of the horizon
    pick = min if getattr(cfg, "ladder_floor", "slowest") == "fastest" else max
    bottom = cfg.floor_margin * pick(v["best"] for v in arms.values())
    out["ladder"] = np.geomspace(top, bottom, cfg.levels + 1)[1:] if bottom < top else None
    if control["ratio"] > cfg.rebound_limit:
        out["applicable"] = False
        out["reason"] = (
            f"the synchronous control rebounds {control['ratio']:.3g}x (late {control['late']:.3g}"
            f" vs best {control['best']:.3g} at step {control['best_step']:.0f})"
        )
        return out
    if out["ladder"] is None:
        out["applicable"] = False
        out["reason"] = (
            f"nothing to descend after the warm-up: loss {top:.3g} at step {cfg.warm_up} is "
            f"already within {cfg.floor_margin:g}x of the best {bottom / cfg.floor_margin:.3g}"
        )
        return out
    out["applicable"] = True
    out["reason"] = f"the synchronous control settles (late / best {control['ratio']:.3g})"
    per_arm = {}
    for k in compared:
        its, reached = iterations_to_levels(bed[k], steps, out["ladder"], cfg.warm_up)
        per_arm[k] = {
            # descent below the ladder's first level: its[:, 0] (reached after the warm-up by
            # every run) is the common start line, so a head start built inside the slow start
            # does not count
            "iters": np.where(reached[:, :1], its[:, 1:] - its[:, :1], its[:, 1:]).mean(axis=1),
            "per_level": its.mean(axis=0).tolist(),
            "unreached": int((~reached).sum()),
            "late": bed[k][:, 3 * steps.size // 4 :].mean(axis=1),
        }
    out["open"] = per_arm["open"]
    for g in cfg.gains:
        c = per_arm[f"closed_{g:g}"]
        ratio, ci = ratio_interval(per_arm["open"]["iters"], c["iters"], seed=seed)
        late_ratio, late_ci = ratio_interval(per_arm["open"]["late"], c["late"], seed=seed)
        out["gains"][g] = {
            "speedup": ratio,
            "interval": ci,
            "open_iterations": float(per_arm["open"]["iters"].mean()),
            "closed_iterations": float(c["iters"].mean()),
            "from_warm_up_per_level_open": per_arm["open"]["per_level"],
            "from_warm_up_per_level_closed": c["per_level"],
            "unreached_open_closed": [per_arm["open"]["unreached"], c["unreached"]],
            "late_loss_ratio_open_over_closed": late_ratio,
            "late_loss_interval": late_ci,
        }
    return out
