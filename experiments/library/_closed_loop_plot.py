"""Figure of experiment 10 (closed-loop): settled mu_algo vs step; YellowFin loss on each bed."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from experiments.framework import Record, figure, style
from experiments.library._total_momentum_plot import legend_below

_STEP_COLOURS = ("0.15", "0.45", "0.7", "0.85")


def plot(record: Record) -> Figure:
    """Left: the controller's mu_algo at each step size against first order; then one panel per
    noisy-quadratic bed, and one for the network stage when it ran: seed-median loss of the
    synchronous control, open and closed loop, the slow start and the ladder; legends under the
    panels, every reference line in them, each title naming its M."""
    arr = record.arrays
    batches = [int(b) for b in np.atleast_1d(arr["batches"])]
    net = "net_sync" in arr
    fig, axes = figure(ncols=1 + len(batches) + int(net), height=4.6)
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
    legend_below(left)

    warm = float(arr["warm_up"])
    panels = [(f"B{b}", f"NQM, B = {b}") for b in batches]
    if net:
        bed = record.measurement.get("network", {}).get("bed", "network")
        panels.append(("net", bed))
    for ax, (key, name) in zip(axes[1:], panels, strict=True):
        t = arr[f"{key}_steps"]
        ax.semilogy(t, arr[f"{key}_sync"], color="0.45", lw=0.9, ls="--",
                    label="open loop, M = 1 (control)")  # fmt: skip
        ax.semilogy(t, arr[f"{key}_open"], **style("yellowfin", marker=None,
                    label=f"open loop, M = {m}"))  # fmt: skip
        closed = [k for k in arr if k.startswith(f"{key}_closed")]
        if closed:
            ax.semilogy(t, arr[closed[0]], **style("yellowfin-closed", marker=None,
                        label=f"closed loop, M = {m}, default gain"))  # fmt: skip
        ax.axvspan(0, warm, color="0.9", label="slow start (not read)")
        if f"{key}_ladder" in arr:
            for j, level in enumerate(arr[f"{key}_ladder"]):
                ax.axhline(
                    level, **style("bound", lw=0.7, label="ladder levels" if j == 0 else "_")
                )
        ax.set_xlabel("update")
        ax.set_ylabel("loss (seed median)" + (", smoothed" if key == "net" else ""))
        live = bool(arr.get(f"{key}_applicable", True))
        ax.set_title(f"{name}, M = {m}" + ("" if live else " (not applicable)"), fontsize=8)
        legend_below(ax)
    return fig
