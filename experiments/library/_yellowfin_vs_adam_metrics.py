"""Crossing iterations of experiment 11 (yellowfin-vs-adam): smoothing, targets, censoring, ratios.

For a metric ``m`` with per-seed curves ``c_{method,s}`` read at iterations ``x`` (every step for
the training loss, every ``eval_every`` steps for the held-out loss and accuracy), smoothed by a
trailing mean over ``smooth`` steps (``max(1, smooth // eval_every)`` readings):

* the target of seed ``s`` is the best tuned baseline's value at the end of its budget,
  ``min`` (losses) or ``max`` (accuracy) over Adam and momentum SGD of ``c_{b,s}(steps)``;
* ``T_{method,s}`` is the first iteration at which ``c_{method,s}`` reaches the target
  (YellowFin's is searched only after its slow start, so no reading inside it counts); a run that
  never reaches it is censored at its budget + 1, a lower bound;
* the ratio is ``mean_s T_{YF,s} / mean_s min_b T_{b,s}`` with a bootstrap interval over seeds
  (:func:`experiments.stats.ratio_interval`), and the speedup over Adam is
  ``mean_s T_{Adam,s} / mean_s T_{YF,s}``.

Perplexity is ``exp(loss)`` per token, so its crossings are the held-out loss's crossings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from experiments.framework import ratio_interval

METHODS = ("yellowfin", "adam", "sgdm")
BASELINES = ("adam", "sgdm")
METRICS = ("train_loss", "heldout_loss", "heldout_accuracy")


def smoothed(loss: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean ``s_t = mean(loss[max(0, t - window + 1) : t + 1])`` (NaN stays NaN)."""
    x = np.asarray(loss, np.float64)
    c = np.concatenate([[0.0], np.cumsum(x)])
    t = np.arange(x.size)
    lo = np.maximum(0, t - window + 1)
    return (c[t + 1] - c[lo]) / (t + 1 - lo)


def first_reach(curve: np.ndarray, target: float, start: int = 0) -> float:
    """Iterations (1-based) until ``curve <= target`` first holds at or after index ``start``;
    ``inf`` when never."""
    hit = np.nonzero(np.asarray(curve)[start:] <= target)[0]
    return float(hit[0] + start + 1) if hit.size else math.inf


def grid(center: float, per_decade: int, lo: int, hi: int) -> np.ndarray:
    """``center 10^(k / per_decade)`` for ``k = lo .. hi``."""
    return center * 10.0 ** (np.arange(lo, hi + 1) / per_decade)


@dataclass(frozen=True)
class Crossing:
    """One metric's comparison on one task.

    Attributes:
        metric: a name of :data:`METRICS`.
        targets: per-seed target (best baseline's final value).
        iterations: per method, per-seed first crossing (``inf``: never).
        censored: the same with ``inf`` replaced by the budget + 1.
        ratio, interval: mean YellowFin / mean best-baseline iterations and its bootstrap interval.
        speedup, speedup_interval: mean Adam / mean YellowFin iterations and its interval.
        curves: per method, the smoothed per-seed curves ``(S, n)``; ``at``: their iterations.
    """

    metric: str
    targets: np.ndarray
    iterations: dict[str, np.ndarray]
    censored: dict[str, np.ndarray]
    ratio: float
    interval: tuple[float, float]
    speedup: float
    speedup_interval: tuple[float, float]
    curves: dict[str, np.ndarray]
    at: np.ndarray


def crossing(
    metric: str,
    curves: dict[str, np.ndarray],
    at: np.ndarray,
    *,
    steps: int,
    budgets: dict[str, int],
    slow_start: int,
    window: int,
    seed: int,
) -> Crossing:
    """Targets, crossings and ratios (module docstring) of ``curves[method]`` ``(S, n)`` read at
    iterations ``at`` ``(n,)``; baselines end at iteration ``steps``."""
    higher = metric.endswith("accuracy")
    sign = -1.0 if higher else 1.0  # crossings of sign * curve <= sign * target
    smooth = {m: np.stack([smoothed(c, window) for c in curves[m]]) for m in METHODS}
    end = int(np.searchsorted(at, steps))  # index of the reading at the baselines' last step
    finals = {m: smooth[m][:, end] for m in BASELINES}
    # a diverged baseline (NaN) never sets the target
    best = np.stack([np.where(np.isfinite(finals[b]), sign * finals[b], np.inf) for b in BASELINES])
    targets = sign * best.min(axis=0)
    yf_start = int(np.searchsorted(at, slow_start, side="right"))  # first reading after it
    iters, cens = {}, {}
    for m in METHODS:
        first = yf_start if m == "yellowfin" else 0
        pairs = zip(smooth[m], targets, strict=True)
        idx = np.array([first_reach(sign * c, sign * t, first) for c, t in pairs])
        iters[m] = np.array([at[int(i) - 1] if np.isfinite(i) else math.inf for i in idx], float)
        cens[m] = np.where(np.isfinite(iters[m]), iters[m], budgets[m] + 1.0)
    t_best = np.minimum(cens["adam"], cens["sgdm"])
    ratio, interval = ratio_interval(cens["yellowfin"], t_best, seed=seed)
    speedup, sp_int = ratio_interval(cens["adam"], cens["yellowfin"], seed=seed)
    return Crossing(metric, targets, iters, cens, ratio, interval, speedup, sp_int, smooth, at)


def summary(c: Crossing, perplexity: bool = False) -> dict:
    """JSON-able measurement of one crossing (targets as perplexity where asked)."""
    targets = np.exp(c.targets) if perplexity else c.targets
    return {
        "target_per_seed": targets.tolist(),
        "target_is": "perplexity" if perplexity else c.metric,
        "iterations": {m: c.iterations[m].tolist() for m in METHODS},
        "yellowfin_over_best_baseline": c.ratio,
        "ratio_interval": list(c.interval),
        "speedup_over_adam": c.speedup,
        "speedup_over_adam_interval": list(c.speedup_interval),
    }
