"""Figure of ``total-momentum``: readings vs ``mu_L``, the step bias vs ``c``, sensor traces."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from experiments.framework import Record, figure, moving_average, style

#: One hue per algorithmic momentum in the step-bias panel.
_MU_STYLES = ("sgd", "heavy-ball", "yellowfin", "momo", "adam")


def legend_below(ax, ncol: int = 1) -> None:
    """The panel's legend under its x label, off the data (constrained layout makes room)."""
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=ncol, frameon=False)


def mu_l_reference(ax, y: float, label: str) -> None:
    """``mu_L`` as a thin dark dotted line on top of everything, so a synchronous trace lying on
    it (drawn wide and pale underneath) stays visible, and so does the line."""
    ax.axhline(y, color="0.1", lw=0.9, linestyle=(0, (1, 2)), zorder=6, label=label)


def plot(record: Record) -> Figure:
    """Left: readings vs ``mu_L``; middle: the simulator's step bias vs ``c`` (log-log) with its
    extrapolation; right: sensor traces at the largest ``mu_L``, the synchronous ones drawn over
    a wide band at ``mu_L`` so that they stay visible."""
    arr = record.arrays
    mus, first, m = arr["mus"], arr["first_order"], int(arr["workers"])
    c = arr["step_factors"]
    fig, (left, mid, right) = figure(ncols=3, height=4.6)
    grid = np.linspace(float(mus.min()), float(mus.max()), 50)
    left.plot(grid, grid, color="0.1", lw=0.9, linestyle=(0, (1, 2)), zorder=6,
              label=r"$\mu_L$ (synchronous identity)")  # fmt: skip
    left.plot(mus, first, **style("prediction", label=f"first order 1-(1-mu_L)/M, M={m}"))
    left.plot(mus, arr["sim_sync"], **style("sgd", linestyle="none", ms=9, mfc="none", mew=1.5,
              label="simulator, sync (M=1)"))  # fmt: skip
    zero_err = np.abs(arr["sim_zero_interval"] - arr["sim_zero"][:, None]).T + arr["sim_truncation"]
    left.errorbar(mus, arr["sim_zero"], yerr=zero_err, **style("measured", marker="x",
                  label=rf"simulator M={m}, $c \to 0$"))  # fmt: skip
    if "net_async" in arr:
        nm = arr["net_mus"]
        left.plot(nm, arr["net_sync"], **style("heavy-ball", linestyle="none", ms=5,
                  label="network, sync (M=1)"))  # fmt: skip
        err = np.abs(arr["net_async_interval"] - arr["net_async"][:, None]).T
        left.errorbar(nm, arr["net_async"], yerr=err, **style("yellowfin", linestyle="none",
                      label=f"network, M={m}, median (seed interval)"))  # fmt: skip
        if "net_ls" in arr:
            err = np.abs(arr["net_ls_interval"] - arr["net_ls"][:, None]).T
            left.errorbar(nm, arr["net_ls"], yerr=err, **style("momo", linestyle="none",
                          label=f"network, M={m}, least squares (seed interval)"))  # fmt: skip
    left.set_xlabel(r"algorithmic momentum $\mu_L$")
    left.set_ylabel("measured total momentum")
    left.set_title(f"sensor reading: M=1 vs M={m}")
    legend_below(left)

    readings = arr["sim_readings"].mean(axis=1)  # (mu, c)
    c0 = c.min() / 4
    for i, mu in enumerate(mus):
        st = style(_MU_STYLES[i % len(_MU_STYLES)])
        gap = np.abs(readings[i] - first[i])
        mid.loglog(c, gap, color=st["color"], marker=st["marker"], label=rf"$\mu_L$={mu:g}")
        zero_gap = max(abs(arr["sim_zero"][i] - first[i]), 1e-9)
        mid.loglog([c0], [zero_gap], color=st["color"], marker="x", ms=8, linestyle="none",
                   label=rf"$\mu_L$={mu:g}, extrapolated to $c \to 0$")  # fmt: skip
    ref = np.abs(readings[:, 0] - first).max()
    for p, ls in ((1, "--"), (2, ":")):
        mid.loglog(c, ref * (c / c.max()) ** p, color="0.3", linestyle=ls, lw=0.8,
                   label=f"slope {p}")  # fmt: skip
    mid.set_xlabel(r"step factor $c = \alpha M h_{max} / (1 - \mu_L)$")
    mid.set_ylabel("|mean reading - first order|")
    mid.set_title(f"simulator step bias, M={m}")
    legend_below(mid, ncol=2)

    i = len(mus) - 1
    mu_l_reference(right, mus[i], rf"$\mu_L$ = {mus[i]:g} (synchronous identity)")
    right.axhline(first[i], **style("prediction", lw=0.8, zorder=3,
                  label=f"first-order total, M={m}"))  # fmt: skip
    # the synchronous traces sit exactly on mu_L: wide and pale under the dotted mu_L line
    traces = (
        ("sim_trace_async", f"simulator, M={m}, c={c.min():g}", "measured", "-", None, 0.0, 1.2),
        ("sim_trace_sync", "simulator, M=1", "sgd", "-", "o", 0.05, 7),
        ("net_trace_async", f"network, M={m}", "yellowfin", "-", None, 0.0, 1.2),
        ("net_trace_sync", "network, M=1", "heavy-ball", "-", "s", 0.15, 3),
    )
    # the two synchronous traces coincide: the simulator's wider, the network's narrower on top
    for key, lab, st, ls, mk, first_mark, lw in traces:
        if key in arr:
            y = moving_average(arr[key][np.isfinite(arr[key])], 50)
            x = np.arange(y.size) / y.size
            sync = mk is not None
            right.plot(x, y, color=style(st)["color"], lw=lw,
                       alpha=0.45 if sync else 1.0, linestyle=ls, marker=mk, ms=5, mfc="none",
                       markevery=(first_mark, 0.2), label=lab)  # fmt: skip
    right.set_xlabel("fraction of the run")
    right.set_ylabel("sensor reading (moving average of 50)")
    right.set_title(rf"sensor traces at $\mu_L$ = {mus[i]:g}, M=1 and M={m}")
    legend_below(right)
    return fig
