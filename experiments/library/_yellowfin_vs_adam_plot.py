"""Figure of experiment 11 (yellowfin-vs-adam): per task (columns), the smoothed training loss, the
held-out loss (perplexity for the LSTM) and the held-out accuracy of every method and seed with the
per-seed targets and each method's crossings; the baselines' tuning grids at the bottom. One
legend for the whole figure, below the panels, so that no legend covers data; every reference line
(target, slow start, crossing) is in it."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from experiments.framework import Record, figure, style

TASKS = ("resnet", "lstm")
METHODS = ("yellowfin", "adam", "sgdm")
METRICS = ("train_loss", "heldout_loss", "heldout_accuracy")
SLOW_START = 200
_LABEL = {
    "train_loss": "training loss (smoothed)",
    "heldout_loss": "held-out loss",
    "heldout_accuracy": "held-out accuracy",
}


def _metric_panel(ax, arr: dict, meas: dict, task: str, metric: str) -> None:
    lm_ppl = task == "lstm" and metric == "heldout_loss"
    transform = np.exp if lm_ppl else (lambda v: v)
    targets = transform(arr[f"{task}_{metric}_targets"])
    at = arr[f"{task}_{metric}_at"]
    for m in METHODS:
        st = style(m)
        curves = arr[f"{task}_{metric}_{m}"]
        for s in curves:
            ax.plot(at[: s.size], transform(s), color=st["color"], lw=1.0, alpha=0.8)
        it = arr[f"{task}_{metric}_{m}_iterations"]
        ok = np.isfinite(it)
        ax.plot(it[ok], targets[ok], ls="none", marker=st["marker"], color=st["color"], ms=6)
    ax.axhline(float(np.mean(targets)), **style("prediction"))
    ax.axvspan(0, SLOW_START, color="0.5", alpha=0.12)
    if metric != "heldout_accuracy":
        ax.set_yscale("log")
    key = "heldout_perplexity" if lm_ppl else metric
    cr = meas.get("crossings", {}).get(key, {})
    if cr:
        lo, hi = cr["ratio_interval"]
        ratio = cr["yellowfin_over_best_baseline"]
        name = key.replace("_", " ").replace("heldout", "held-out")
        ax.set_title(f"{task}: {name}\nYellowFin / best {ratio:.2f} [{lo:.2f}, {hi:.2f}]")
    ax.set_xlabel("iteration")
    per = meas.get("perplexity_per") or "token"
    ax.set_ylabel(f"held-out perplexity (per {per})" if lm_ppl else _LABEL[metric])


def _grid_panel(ax, arr: dict, task: str) -> None:
    for m in ("adam", "sgdm"):
        st = style(m)
        ax.semilogx(
            arr[f"{task}_{m}_grid"],
            arr[f"{task}_{m}_grid_final_loss"],
            color=st["color"],
            marker=st["marker"],
        )
    ax.set_xlabel("learning rate")
    ax.set_ylabel("final training loss (mean over seeds)")
    ax.set_title(f"{task}: tuning grids")


def _legend_handles() -> list:
    handles: list = []
    for m in METHODS:
        st = style(m)
        handles.append(Line2D([], [], color=st["color"], lw=1.0, label=f"{st['label']}: seeds"))
        handles.append(
            Line2D(
                [],
                [],
                color=st["color"],
                ls="none",
                marker=st["marker"],
                label=f"{st['label']}: reaches target",
            )
        )
    handles.append(
        Line2D(
            [],
            [],
            **style("prediction", label="target (best baseline's end)"),
        )
    )
    handles.append(Patch(color="0.5", alpha=0.12, label=f"YellowFin slow start ({SLOW_START})"))
    return handles


def plot(record: Record) -> Figure:
    """Rows: training loss, held-out loss (perplexity), held-out accuracy, tuning grids; columns:
    the ResNet and the LSTM. Thin lines are seeds, markers their crossings of the per-seed target
    (dashed: its mean), the slow start shaded; the legend sits below the panels."""
    arr = record.arrays
    fig, axes = figure(nrows=len(METRICS) + 1, ncols=len(TASKS))
    axes = np.asarray(axes).reshape(len(METRICS) + 1, len(TASKS))
    for j, task in enumerate(TASKS):
        meas = record.measurement.get(task, {})
        if f"{task}_train_loss_targets" not in arr:
            why = meas.get("missing", "not run")
            for ax in axes[:, j]:
                ax.set_axis_off()
            axes[0, j].text(0.0, 1.0, f"{task}: no data\n{why[:60]}", va="top", wrap=True)
            continue
        for i, metric in enumerate(METRICS):
            _metric_panel(axes[i, j], arr, meas, task, metric)
        _grid_panel(axes[-1, j], arr, task)
    fig.legend(handles=_legend_handles(), loc="outside lower center", ncols=3)
    return fig
