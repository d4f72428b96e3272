"""Figure of experiment 10 (closed-loop): settled mu_algo vs step; YellowFin loss on each bed."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from experiments.framework import Record, figure, style

_STEP_COLOURS = ("0.15", "0.45", "0.7", "0.85")


def plot(record: Record) -> Figure:
    """Left: the controller's mu_algo at each step size against first order; then one panel per
    noisy-quadratic bed: seed-median loss of the synchronous control, open and closed loop."""
    arr = record.arrays
    batches = [int(b) for b in np.atleast_1d(arr["batches"])]
    fig, axes = figure(ncols=1 + len(batches))
    axes = np.atleast_1d(axes)
    left = axes[0]
    for i, (alpha, trace) in enumerate(zip(arr["track_alphas"], arr["track_traces"], strict=True)):
        left.plot(
            trace,
            color=_STEP_COLOURS[i % 4],
            lw=1.0,
            label=rf"$\mu_{{algo}}$, $\alpha$ = {alpha:g}",
        )
    left.axhline(float(arr["predicted_mu_algo"]), **style("prediction",
                 label=r"first order $1 - M(1 - \mathrm{target})$"))  # fmt: skip
    left.set_xlabel("update")
    left.set_ylabel("algorithmic momentum")
    m = int(record.config.get("workers", 16))
    left.set_title(f"tracking, M = {m}, total convention, target {float(arr['target']):g}")
    left.locator_params(axis="x", nbins=4)
    left.legend(fontsize=6.5, loc="upper right")

    warm = float(arr["warm_up"])
    for ax, b in zip(axes[1:], batches, strict=True):
        t = arr[f"B{b}_steps"]
        ax.semilogy(t, arr[f"B{b}_sync"], color="0.45", lw=0.9, ls="--",
                    label="open loop, 1 worker (control)")  # fmt: skip
        ax.semilogy(t, arr[f"B{b}_open"], **style("yellowfin", marker=None, label="open loop"))
        if f"B{b}_closed" in arr:
            ax.semilogy(t, arr[f"B{b}_closed"], **style("yellowfin-closed", marker=None,
                        label="closed loop, default gain"))  # fmt: skip
        ax.axvspan(0, warm, color="0.9", label="slow start (not read)")
        if f"B{b}_ladder" in arr:
            for j, level in enumerate(arr[f"B{b}_ladder"]):
                ax.axhline(
                    level, **style("bound", lw=0.7, label="ladder levels" if j == 0 else "_")
                )
        ax.set_xlabel("update")
        ax.set_ylabel("loss (seed median)")
        live = bool(arr.get(f"B{b}_applicable", True))
        ax.set_title(f"NQM, B = {b}, M = {m}" + ("" if live else " (not applicable)"))
    # one legend for the bed panels (the same lines in each), where the descent leaves room
    axes[1].legend(fontsize=6.5, loc="upper right")
    return fig
