"""Figure of experiment 8 (asynchrony-momentum): staleness law, mean dynamics, mean rates, and the
best explicit momentum of single runs."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from experiments.framework import Record, figure, style

_KEYS = ("heavy-ball", "yellowfin", "momo", "adam", "sgd")


def _colors() -> list[str]:
    return [style(k)["color"] for k in _KEYS]


def _staleness(ax, arr) -> None:
    colors = _colors()
    for i, m in enumerate(np.asarray(arr["hist_workers"]).tolist()):
        c = colors[i % len(colors)]
        freq, pmf = arr[f"hist_freq_{m}"], arr[f"hist_pmf_{m}"]
        lags = np.arange(freq.size)
        ax.semilogy(lags, freq, **style("measured", color=c, ms=3, label=f"M={m} measured"))
        ax.semilogy(lags, pmf, **style("theory", color=c, lw=1.0, label=None))
    ax.plot([], [], **style("theory", label="Geom(1/M)"))
    ax.set_xlabel("staleness tau")
    ax.set_ylabel("frequency")
    ax.set_title("(a) staleness law")
    ax.legend(fontsize=6.5)


def _mean(ax, arr) -> None:
    colors = _colors()
    t = np.arange(arr["mean_pred"].shape[0])
    for d in range(arr["mean_pred"].shape[1]):
        c = colors[d % len(colors)]
        ax.errorbar(
            t,
            arr["mean_meas"][:, d],
            yerr=arr["mean_sem"][:, d],
            **style("measured", color=c, ms=2.5, label=f"ensemble mean, coord {d}"),
        )
        ax.plot(
            t,
            arr["mean_pred"][:, d],
            **style("prediction", color=c, label="heavy ball (1-1/M, alpha/M)" if d == 0 else None),
        )
        ax.plot(
            t, arr["mean_sync"][:, d], color=c, lw=0.8, ls=":",
            label="synchronous SGD" if d == 0 else None,
        )  # fmt: skip
    ax.set_xlabel("update t")
    ax.set_ylabel(r"$E\,w_t$")
    ax.set_title("(b) mean dynamics")
    ax.legend(fontsize=6.5)


def _mean_rates(ax, arr) -> None:
    colors = _colors()
    mus = arr["opt_mus"]
    for i, m in enumerate(np.asarray(arr["opt_workers"]).tolist()):
        c = colors[i % len(colors)]
        ax.plot(mus, arr["opt_theory_curve"][i], **style("prediction", color=c, label=None))
        ax.errorbar(
            mus, arr["opt_rate"][i], yerr=arr["opt_stderr"][i],
            **style("measured", color=c, ms=3, label=f"M={m}"),
        )  # fmt: skip
    ax.plot([], [], **style("prediction", label="mean-dynamics radius"))
    ax.axvline(0.0, color="0.3", lw=0.6)
    ax.set_ylim(0.75, 1.0)
    ax.set_xlabel(r"explicit momentum $\mu_L$")
    ax.set_ylabel("rate of the ensemble-mean error")
    ax.set_title("(c) mean rate (resolved records)")
    ax.legend(fontsize=6.5)


def _single_runs(ax, arr) -> None:
    colors = _colors()
    mus = arr["best_mus"]
    for i, m in enumerate(np.asarray(arr["best_workers"]).tolist()):
        c = colors[i % len(colors)]
        speed = 1.0 - arr["best_rate"][i]
        speed = np.where(np.isfinite(speed) & (speed > 0), speed, np.nan)
        ax.plot(
            mus, speed, **style("measured", color=c, ms=2.5, label=f"M={m}: single runs (mean)")
        )
        theory_speed = 1.0 - arr["best_theory_curve"][i]
        ax.plot(
            mus, np.where(theory_speed > 0, theory_speed, np.nan),
            **style("prediction", color=c, label=None),
        )  # fmt: skip
        lo, hi = arr["best_interval"][i]
        ax.axvspan(lo - 0.01, hi + 0.01, color=c, alpha=0.2, lw=0)
        ax.axvline(
            arr["best_mu_theory"][i], color=c, lw=0.8, ls="--",
            label=f"M={m}: mean-dynamics optimum",
        )  # fmt: skip
    ax.plot([], [], **style("prediction", label="mean-dynamics radius"))
    ax.fill_between([], [], [], color="0.5", alpha=0.2, label="95% bootstrap interval of the best")
    ax.axvline(0.0, color="0.3", lw=0.6)
    ax.set_yscale("log")
    ax.set_ylim(3e-3, 0.5)
    ax.set_xlabel(r"explicit momentum $\mu_L$")
    ax.set_ylabel("1 - late rate of one run (higher is faster)")
    ax.set_title("(d) best explicit momentum, single runs")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))


def plot(record: Record) -> Figure:
    """(a) staleness histograms, (b) ensemble mean vs heavy ball, (c) mean rate vs explicit
    momentum, (d) ``1 - late rate`` of single runs vs explicit momentum (log scale) with the
    bootstrap interval of the best."""
    arr = record.arrays
    fig, (ax_a, ax_b, ax_c, ax_d) = figure(ncols=4)
    _staleness(ax_a, arr)
    _mean(ax_b, arr)
    _mean_rates(ax_c, arr)
    _single_runs(ax_d, arr)
    return fig
