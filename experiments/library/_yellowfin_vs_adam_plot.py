"""Figure of experiment 11 (yellowfin-vs-adam): smoothed training loss per task, method and seed,
the per-seed targets and each method's crossings; the baselines' tuning grids."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from experiments.framework import Record, figure, style

TASKS = ("resnet", "lstm")
METHODS = ("yellowfin", "adam", "sgdm")
SLOW_START = 200


def plot(record: Record) -> Figure:
    """Top row: smoothed training loss of every seed (thin) and the crossings of the per-seed
    target (markers); the slow start shaded. Bottom row: final training loss over each baseline's
    learning-rate grid (mean over seeds)."""
    arr = record.arrays
    fig, axes = figure(nrows=2, ncols=len(TASKS))
    axes = np.asarray(axes).reshape(2, len(TASKS))
    for j, name in enumerate(TASKS):
        ax = axes[0, j]
        if f"{name}_targets" not in arr:
            ax.set_title(f"{name}: no data")
            continue
        targets = arr[f"{name}_targets"]
        for m in METHODS:
            st = style(m)
            curves = arr[f"{name}_{m}_smoothed"]
            for i, s in enumerate(curves):
                ax.semilogy(
                    np.arange(1, s.size + 1),
                    s,
                    color=st["color"],
                    lw=1.0,
                    alpha=0.8,
                    label=f"{st['label']} ({len(curves)} seeds)" if i == 0 else None,
                )
            it = arr[f"{name}_{m}_iterations"]
            ok = np.isfinite(it)
            ax.plot(it[ok], targets[ok], ls="none", marker=st["marker"], color=st["color"], ms=6)
        ax.axhline(float(np.mean(targets)), **style("prediction", label="target (mean over seeds)"))
        ax.axvspan(0, SLOW_START, color="0.5", alpha=0.12, label="YellowFin slow start")
        meas = record.measurement.get(name, {})
        ratio, (lo, hi) = meas.get("yellowfin_over_best_baseline"), meas.get("ratio_interval")
        ax.set_title(f"{name}: YellowFin / best = {ratio:.2f} [{lo:.2f}, {hi:.2f}]", fontsize=9)
        ax.set_xlabel("iteration")
        ax.set_ylabel("training loss (smoothed)")
        ax.legend(fontsize=7)
        ax = axes[1, j]
        for m in ("adam", "sgdm"):
            st = style(m)
            ax.loglog(
                arr[f"{name}_{m}_grid"],
                arr[f"{name}_{m}_grid_final_loss"],
                color=st["color"],
                marker=st["marker"],
                label=f"{st['label']} (mean over seeds)",
            )
        ax.set_xlabel("learning rate")
        ax.set_ylabel("final training loss")
        ax.set_title(f"{name}: tuning grids")
        ax.legend(fontsize=7)
    return fig
