"""Figure of ``closed-loop-any-optimizer``: the controlled momentum; the loss of every case."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from experiments.framework import Record, figure, style

_STEP_COLOURS = ("0.15", "0.45", "0.7", "0.85")
_METHOD = {"adam": "adam", "momo": "momo", "momo_adam": "momo-adam"}
_BED = {"nqm": "NQM", "net": "MLP"}


def plot(record: Record) -> Figure:
    """Top row: the loop's beta around MoMo on the quadratic at each tracking step against first
    order, then the controlled momentum of every closed-loop case (seed median). Below, one panel
    per (bed, optimizer): seed-median loss of the synchronous control, open and closed loop, with
    the ladder levels."""
    arr = record.arrays
    names = [str(n) for n in np.atleast_1d(arr["optimizers"])]
    beds = [b for b in _BED if any(f"{b}_{n}_steps" in arr for n in names)]
    fig, axes = figure(ncols=max(2, len(names)), nrows=1 + len(beds))
    axes = np.asarray(axes).reshape(1 + len(beds), -1)
    m = int(record.config.get("workers", 16))
    predicted = float(record.prediction["settled_beta_first_order"])
    first = dict(label=r"first order $1 - M(1 - \mathrm{target})$")
    ax = axes[0, 0]
    for i, (lr, trace) in enumerate(zip(arr["track_lrs"], arr["track_momo"], strict=True)):
        ax.plot(trace, color=_STEP_COLOURS[i % 4], lw=0.8, label=f"lr = {lr:g}")
    ax.axhline(predicted, **style("prediction", **first))
    ax.set_xlabel("update")
    ax.set_ylabel(r"controlled $\beta$")
    ax.set_title(f"MoMo's loop on a quadratic, M = {m}")
    ax.locator_params(axis="x", nbins=4)
    ax.legend(fontsize=6.5, loc="upper right")
    ax = axes[0, 1]
    for n in names:
        for bed, ls in zip(beds, ("-", "--"), strict=False):
            key = f"{bed}_{n}"
            if f"{key}_mu" in arr:
                t = arr[f"{key}_steps"]
                ax.plot(t, arr[f"{key}_mu"], **style(_METHOD[n], marker=None, linestyle=ls,
                        label=f"{style(_METHOD[n])['label']}, {_BED[bed]}"))  # fmt: skip
    ax.axhline(predicted, **style("prediction", **first))
    ax.set_xlabel("update")
    ax.set_ylabel("controlled momentum (seed median)")
    ax.set_title(f"closed loop on the beds, target {float(arr['target']):g}")
    ax.legend(fontsize=6, loc="lower right")
    for extra in axes[0, 2:]:
        extra.axis("off")
    for row, bed in zip(axes[1:], beds, strict=True):
        for ax, n in zip(row, names, strict=False):
            key = f"{bed}_{n}"
            t = arr[f"{key}_steps"]
            ax.semilogy(t, arr[f"{key}_sync"], color="0.45", lw=0.9, ls="--",
                        label="open loop, 1 worker (control)")  # fmt: skip
            ax.semilogy(t, arr[f"{key}_open"], **style(_METHOD[n], marker=None,
                        label=f"open loop, M = {m}"))  # fmt: skip
            ax.semilogy(t, arr[f"{key}_closed"], **style(_METHOD[n], marker=None, linestyle=":",
                        label=f"closed loop, M = {m}"))  # fmt: skip
            for j, level in enumerate(np.atleast_1d(arr[f"{key}_ladder"])):
                ax.axhline(level, **style("bound", lw=0.6, label="ladder" if j == 0 else "_"))
            ax.set_xlabel("update")
            ax.set_ylabel("loss (seed median)")
            ax.set_title(f"{_BED[bed]}, {style(_METHOD[n])['label']}")
    # one legend for the loss panels (the same lines in each), off the data
    handles, labels = axes[1, 0].get_legend_handles_labels()
    if axes.shape[1] > 2:
        axes[0, 2].legend(handles, labels, fontsize=8, loc="center", title="loss panels")
    else:
        fig.legend(handles, labels, fontsize=7, loc="outside lower center", ncols=2)
    return fig
