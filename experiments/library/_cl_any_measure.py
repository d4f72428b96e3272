"""Measurements of ``closed-loop-any-optimizer``, pure NumPy: the synchronous control's
precondition, the ladder of loss levels, iterations to each level, the speed ratio open / closed
with its bootstrap interval, and the settled momentum hyper-parameter of a tracking run.

Ladder (fixed before any run was read): ``levels`` loss levels spaced geometrically from the
seed-median loss at the start (step 0, the same point for every arm of a case) down to
``floor_margin`` times the best seed-median loss that either compared arm (open or closed loop)
reaches (the smallest mean over blocks of ``block`` steps). The deepest level is therefore
reached by the better arm; an arm that diverges or stalls reaches fewer levels, and a level a seed
never reaches counts as the whole horizon (:func:`iterations_to_levels`), which understates the
gap rather than inventing one. A seed's iterations are the mean over the levels of its first
passages; the speed ratio is the ratio of the means over seeds, open / closed, with its
percentile bootstrap interval over seeds (:func:`experiments.stats.ratio_interval`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from experiments.framework import ratio_interval
from experiments.library._closed_loop_measure import iterations_to_levels, rebound

#: Cross-entropy of a uniform guess over ten classes, ``ln 10``.
CHANCE_LOSS = float(np.log(10.0))


def block_means(losses: np.ndarray, every: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed means of a per-step loss over consecutive blocks of ``every`` steps.

    Returns ``(means (seeds, blocks), steps (blocks,))`` with each block labelled by its last step.

    Example:
        >>> m, t = block_means(np.arange(8.0)[None], 4)
        >>> m.tolist(), t.tolist()
        ([[1.5, 5.5]], [4.0, 8.0])
    """
    if every < 1:
        raise ValueError(f"every must be >= 1 (got {every})")
    s, n = losses.shape
    k = n // every
    means = losses[:, : k * every].reshape(s, k, every).mean(axis=2)
    return means, every * np.arange(1, k + 1, dtype=np.float64)


def control_status(
    sync: np.ndarray, steps: np.ndarray, *, block: int, rebound_limit: float, chance: float | None
) -> dict[str, Any]:
    """Precondition of one case: the synchronous control trains and does not rebound.

    ``sync`` is ``(seeds, records)``. It fails when the seed-median's late loss exceeds
    ``rebound_limit`` times its best (:func:`experiments.library._closed_loop_measure.rebound`),
    when the curve is not finite, or, with ``chance`` (a classification loss), when the late loss
    stays above half the chance loss.

    Example:
        >>> t = np.arange(0.0, 1000.0, 10.0)
        >>> curve = np.exp(-t / 100)[None].repeat(3, 0) + 0.1
        >>> control_status(curve, t, block=100, rebound_limit=3.0, chance=None)["applicable"]
        True
    """
    med = np.median(sync, axis=0)
    if not np.all(np.isfinite(med)):
        return {"applicable": False, "reason": "the synchronous control diverges", "ratio": None}
    r = rebound(med, steps, block)
    out = {"ratio": r["ratio"], "late": r["late"], "best": r["best"]}
    if r["ratio"] > rebound_limit:
        out["applicable"] = False
        out["reason"] = (
            f"the synchronous control rebounds {r['ratio']:.3g}x (late {r['late']:.3g} vs best "
            f"{r['best']:.3g} at step {r['best_step']:.0f})"
        )
    elif chance is not None and not r["late"] < 0.5 * chance:
        out["applicable"] = False
        out["reason"] = f"the synchronous control never trained (late loss {r['late']:.3g})"
    else:
        out["applicable"] = True
        out["reason"] = f"the synchronous control trains (late / best {r['ratio']:.3g})"
    return out


def ladder(open_: np.ndarray, closed: np.ndarray, steps: np.ndarray, cfg: Any) -> np.ndarray:
    """The ladder of one case (module docstring); empty when there is nothing to descend."""
    start = np.concatenate([open_[:, 0], closed[:, 0]])
    start = start[np.isfinite(start)]
    if start.size == 0:
        return np.zeros(0)
    top = float(np.median(start))
    bests = []
    for arm in (open_, closed):
        med = np.median(arm, axis=0)
        if np.any(np.isfinite(med)):
            med = np.where(np.isfinite(med), med, np.inf)
            bests.append(rebound(med, steps, cfg.block)["best"])
    bottom = cfg.floor_margin * min(bests) if bests else np.inf
    if not bottom < top:
        return np.zeros(0)
    return np.geomspace(top, bottom, cfg.levels + 1)[1:]


def assess_case(
    arms: dict[str, np.ndarray], steps: np.ndarray, cfg: Any, seed: int, *, chance: float | None
) -> dict[str, Any]:
    """Precondition, ladder and the speed ratio of one (bed, optimizer) case.

    Args:
        arms: ``sync``, ``open`` and ``closed`` losses, each ``(seeds, records)``.
        steps: ``(records,)``.
        cfg: supplies ``block``, ``rebound_limit``, ``levels``, ``floor_margin``.
        seed: seed of the bootstrap.
        chance: chance loss of a classification bed (None for the NQM).
    """
    out: dict[str, Any] = {"control": control_status(
        arms["sync"], steps, block=cfg.block, rebound_limit=cfg.rebound_limit, chance=chance
    )}  # fmt: skip
    out["applicable"] = out["control"]["applicable"]
    out["reason"] = out["control"]["reason"]
    clean = {k: np.where(np.isfinite(v), v, np.inf) for k, v in arms.items()}
    levels = ladder(clean["open"], clean["closed"], steps, cfg)
    out["ladder"] = levels.tolist()
    if out["applicable"] and levels.size == 0:
        out["applicable"] = False
        out["reason"] = "nothing to descend: neither loop falls below the start"
    if not out["applicable"]:
        return out
    per_arm = {}
    for k in ("open", "closed"):
        its, reached = iterations_to_levels(clean[k], steps, levels, 0)
        late = clean[k][:, 3 * steps.size // 4 :].mean(axis=1)
        per_arm[k] = {
            "iters": its.mean(axis=1),
            "per_level": its.mean(axis=0).tolist(),
            "unreached": int((~reached).sum()),
            "late": late,
        }
    ratio, ci = ratio_interval(per_arm["open"]["iters"], per_arm["closed"]["iters"], seed=seed)
    finite = np.all(np.isfinite(per_arm["open"]["late"])) and np.all(
        np.isfinite(per_arm["closed"]["late"])
    )
    out.update(
        speedup=ratio,
        interval=ci,
        open_iterations=float(per_arm["open"]["iters"].mean()),
        closed_iterations=float(per_arm["closed"]["iters"].mean()),
        per_level_open=per_arm["open"]["per_level"],
        per_level_closed=per_arm["closed"]["per_level"],
        unreached_open_closed=[per_arm["open"]["unreached"], per_arm["closed"]["unreached"]],
        late_open=float(np.median(per_arm["open"]["late"])),
        late_closed=float(np.median(per_arm["closed"]["late"])),
        late_finite=bool(finite),
        horizon=float(steps[-1]),
    )
    return out


def settled(trace: np.ndarray, batches: int = 20) -> tuple[float, float]:
    """Mean of a settled trace (its last half) and the batch-means standard error.

    A short trace uses fewer batches (at most one per finite sample); with fewer than two finite
    samples the standard error is unknown and returned as infinity, so that no interval built on
    it can decide.

    Example:
        >>> settled(np.r_[np.zeros(40), np.ones(40)])
        (1.0, 0.0)
        >>> settled(np.r_[np.zeros(1), np.ones(1)])
        (1.0, inf)
    """
    x = np.asarray(trace, np.float64)
    x = x[x.size // 2 :]
    x = x[np.isfinite(x)]
    nb = min(batches, x.size)
    if nb < 2:
        return (float(x.mean()) if x.size else math.nan), math.inf
    b = x[: x.size // nb * nb].reshape(nb, -1).mean(axis=1)
    return float(x.mean()), float(b.std(ddof=1) / np.sqrt(nb))
