"""Figure of experiment 10 (closed-loop): tracking a fixed target; YellowFin open vs closed."""

from __future__ import annotations

from matplotlib.figure import Figure

from experiments.framework import Record, figure, moving_average, style


def plot(record: Record) -> Figure:
    """Left: tracking of the fixed target; right: YellowFin loss open vs closed loop."""
    arr = record.arrays
    fig, (left, right) = figure(ncols=2)
    target = float(arr["target"])
    left.plot(
        moving_average(arr["track_traj_reading"], 100),
        **style("measured", linestyle="-", marker=None, lw=1.0,
                label="total momentum, trajectory sensor"),
    )  # fmt: skip
    left.plot(
        moving_average(arr["track_mu_hat"], 100), color=style("yellowfin")["color"], lw=1.0,
        label="loop sensor",
    )  # fmt: skip
    left.plot(arr["track_mu_algo"], **style("heavy-ball", marker=None, lw=1.0,
              label=r"algorithmic $\mu$ (controller)"))  # fmt: skip
    left.axhline(target, **style("prediction", label="target"))
    left.set_ylim(0.5, 1.05)
    left.set_xlabel("update")
    left.set_ylabel("momentum (moving average of 100)")
    left.set_title("closed loop tracks the target (M = 16)")
    left.legend(fontsize=6.5, loc="lower right")

    t = arr["yf_steps"]
    for key, st in (("open", "yellowfin"), ("closed", "yellowfin-closed")):
        kw = style(st, marker=None)
        right.semilogy(t, arr[f"yf_{key}_median"], **kw)
        right.fill_between(t, arr[f"yf_{key}_q25"], arr[f"yf_{key}_q75"], color=kw["color"],
                           alpha=0.2)  # fmt: skip
    if "yf_sync_median" in arr:
        right.semilogy(t, arr["yf_sync_median"], color="0.45", lw=0.9, ls="--",
                       label="open loop, 1 worker (control)")  # fmt: skip
    right.axhline(float(arr["yf_level"]), **style("bound", label="target loss of the speedup"))
    right.set_xlabel("update")
    right.set_ylabel("loss (median, quartiles over seeds)")
    right.set_title("YellowFin open vs closed loop, M = 16")
    right.legend(fontsize=7)
    return fig
