"""Checks, measurement and summary of experiment 11 (yellowfin-vs-adam); which checks decide, and
of which kind, is stated in :mod:`experiments.library.yellowfin_vs_adam`'s docstring."""

from __future__ import annotations

from typing import Any

import numpy as np

from experiments.framework import Check, check, interval_check
from experiments.library._yellowfin_vs_adam_metrics import BASELINES, METHODS, Crossing, summary
from experiments.library._yellowfin_vs_adam_resources import grid_resources

#: Metrics whose ratio decides the verdict, per task (the LSTM's next-token accuracy is reported).
DECIDING = {
    "resnet": ("train_loss", "heldout_loss", "heldout_accuracy"),
    "lstm": ("train_loss", "heldout_loss"),
}
PUBLISHED_SPEEDUP_OVER_ADAM = 3.28


def metric_label(name: str, metric: str) -> str:
    """The metric's name in checks and measurements (the LSTM's held-out loss is a perplexity)."""
    return "heldout_perplexity" if name == "lstm" and metric == "heldout_loss" else metric


def task_checks(
    name: str, built: Any, tuned: dict, cross: dict[str, Crossing], cfg: Any, *, headline: bool
) -> list[Check]:
    """Preconditions (grids, training left chance) and one reproduction per deciding metric."""
    edge = [m for m in BASELINES if tuned[m]["on_edge"]]
    out = [
        check(
            f"{name}_best_rates_inside_grids",
            "precondition",
            not edge,
            measured={
                m: {"best": tuned[m]["best"], "grid": [tuned[m]["grid"][0], tuned[m]["grid"][-1]]}
                for m in BASELINES
            },
            note=f"best learning rate still on the grid's edge for {', '.join(edge)} after "
            f"{cfg.max_extensions} extensions"
            if edge
            else "both optima inside their grids",
        )
    ]
    train = cross["train_loss"]
    end = int(np.searchsorted(train.at, cfg.steps))
    trained = {m: float(np.mean(train.curves[m][:, end])) for m in METHODS}
    out.append(
        check(
            f"{name}_training_left_chance",
            "precondition",
            all(np.isfinite(v) and v < 0.9 * built.chance for v in trained.values()),
            predicted=f"< 0.9 x chance loss {built.chance:.3f}",
            measured=trained,
            note="every method's smoothed training loss at step "
            f"{cfg.steps} is below 90% of the chance loss",
        )
    )
    for metric in DECIDING[name]:
        c = cross[metric]
        label = metric_label(name, metric)
        out.append(
            interval_check(
                f"{name}_{label}_yellowfin_within_{cfg.ratio_tol:g}x_best_baseline",
                "reproduction",
                c.interval,
                upper=cfg.ratio_tol,
                measured={"ratio": c.ratio, "interval": list(c.interval)},
                note=f"mean iterations of YellowFin / best tuned baseline to the baseline's final "
                f"{label.replace('_', ' ')} over {cfg.seeds} seeds, 95% bootstrap interval",
                headline=headline and metric == "train_loss",
            )
        )
    return out


def missing_checks(name: str, why: str, cfg: Any, *, headline: bool) -> list[Check]:
    """A failed data precondition naming what is missing, and the task's headline reproduction,
    unresolved because nothing was measured."""
    return [
        check(f"{name}_data_available", "precondition", False, note=why),
        check(
            f"{name}_train_loss_yellowfin_within_{cfg.ratio_tol:g}x_best_baseline",
            "reproduction",
            None,
            note="not measured: the data is missing",
            headline=headline,
        ),
    ]


def measurement(name: str, built: Any, tuned: dict, cross: dict, yf: Any) -> dict:
    """The task's measurement: data, tuned rates, grids, crossings, final held-out readings,
    steps/s and memory."""
    lm = name == "lstm"
    return {
        "data": built.data,
        "best_baseline": min(BASELINES, key=lambda m: min(tuned[m]["final"])),
        "tuned_learning_rate": {m: tuned[m]["best"] for m in BASELINES},
        "grids": {
            m: {"learning_rates": tuned[m]["grid"], "final_loss": tuned[m]["final"]}
            for m in BASELINES
        },
        "crossings": {
            metric_label(name, metric): summary(c, perplexity=lm and metric == "heldout_loss")
            for metric, c in cross.items()
        },
        "deciding": [metric_label(name, m) for m in DECIDING[name]],
        "perplexity_per": built.unit if lm else None,
        "final_heldout": {
            m: {
                "loss": cross["heldout_loss"].curves[m][:, -1].tolist(),
                "accuracy": cross["heldout_accuracy"].curves[m][:, -1].tolist(),
            }
            for m in METHODS
        },
        "resources": {
            "yellowfin": grid_resources([yf]),
            **{m: grid_resources(tuned[m]["grids"]) for m in BASELINES},
        },
    }


def summary_text(meas: dict, cfg: Any) -> str:
    """One line per task: every crossing ratio with its interval."""
    parts = []
    for n in cfg.tasks:
        if "missing" in meas[n]:
            parts.append(f"{n}: not run ({meas[n]['missing'].split(':')[0]})")
            continue
        items = ", ".join(
            f"{k.replace('_', ' ')} {v['yellowfin_over_best_baseline']:.2f} "
            f"[{v['ratio_interval'][0]:.2f}, {v['ratio_interval'][1]:.2f}]"
            for k, v in meas[n]["crossings"].items()
        )
        parts.append(f"{n}: YellowFin / best baseline iterations: {items}")
    return "; ".join(parts) + (
        f" ({cfg.seeds} seeds; tolerance {cfg.ratio_tol:g}; published up to "
        f"{PUBLISHED_SPEEDUP_OVER_ADAM}x fewer iterations than Adam)"
    )
