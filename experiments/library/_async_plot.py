"""Figure of experiment 8 (asynchrony-momentum): staleness law, mean dynamics, mean rates, and the
best explicit momentum of single runs."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from experiments.framework import Record, figure, style
from experiments.style import series_color

_BELOW = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.2)}  # legend off the data


def _workers(arr) -> list[int]:
    """Every worker count of the figure, sorted: one colour per M in every panel."""
    keys = ("hist_workers", "opt_workers", "best_workers")
    return sorted({int(m) for k in keys for m in np.asarray(arr[k]).ravel()})


def _m_color(arr, m: int) -> str:
    return series_color(_workers(arr).index(int(m)))


def _m_marker(arr, m: int) -> dict:
    """A hollow marker of its own shape per M: equal values at two M leave both visible."""
    return {"marker": "osD^vP"[_workers(arr).index(int(m)) % 6], "mfc": "none"}


def _ms(arr, key: str) -> str:
    return ", ".join(str(int(m)) for m in np.asarray(arr[key]).ravel())


def _staleness(ax, arr) -> None:
    for m in np.asarray(arr["hist_workers"]).tolist():
        c = _m_color(arr, m)
        freq, pmf = arr[f"hist_freq_{m}"], arr[f"hist_pmf_{m}"]
        lags = np.arange(freq.size)
        ax.semilogy(
            lags,
            freq,
            **style("measured", color=c, ms=3, **_m_marker(arr, m), label=f"M={m} measured"),
        )
        ax.semilogy(lags, pmf, **style("theory", color=c, lw=1.0, label=None))
    ax.plot([], [], **style("theory", label="Geom(1/M)"))
    ax.set_xlabel("staleness tau")
    ax.set_ylabel("frequency")
    ax.set_title(f"(a) staleness law, M={_ms(arr, 'hist_workers')}")
    ax.legend(fontsize=6.5)


def _mean(ax, arr, n_workers: int | None) -> None:
    t = np.arange(arr["mean_pred"].shape[0])
    n = arr["mean_pred"].shape[1]
    for d in range(n):
        c = series_color(len(_workers(arr)) + d)  # coordinates, not worker counts
        # Both coordinates settle at 0: the first gets larger hollow markers, the next smaller
        # filled ones on top, so neither hides the other.
        marks = {"ms": 2.5 + 2.0 * (n - 1 - d), "mfc": "none" if d < n - 1 else c}
        ax.errorbar(
            t,
            arr["mean_meas"][:, d],
            yerr=arr["mean_sem"][:, d],
            **style("measured", color=c, **marks, label=f"ensemble mean, coord {d}"),
        )
        ax.plot(
            t,
            arr["mean_pred"][:, d],
            **style("prediction", color=c, label=None),
        )
        ax.plot(
            t, arr["mean_sync"][:, d], color=c, lw=0.8, ls=":",
        )  # fmt: skip
    ax.plot([], [], color="0.3", lw=0.8, ls=":", label="synchronous SGD")
    ax.set_xlabel("update t")
    ax.set_ylabel(r"$E\,w_t$")
    ax.plot([], [], **style("prediction", label="heavy ball (1-1/M, alpha/M)"))
    where = f", M={n_workers}" if n_workers is not None else ""
    ax.set_title(f"(b) mean dynamics{where}")
    ax.legend(fontsize=6.5)


def _mean_rates(ax, arr) -> None:
    mus = arr["opt_mus"]
    for i, m in enumerate(np.asarray(arr["opt_workers"]).tolist()):
        c = _m_color(arr, m)
        ax.plot(mus, arr["opt_theory_curve"][i], **style("prediction", color=c, label=None))
        ax.errorbar(
            mus, arr["opt_rate"][i], yerr=arr["opt_stderr"][i],
            **style("measured", color=c, ms=3, **_m_marker(arr, m), label=f"M={m}"),
        )  # fmt: skip
    ax.plot([], [], **style("prediction", label="mean-dynamics radius"))
    ax.axvline(0.0, color="0.3", lw=0.6, label=r"$\mu_L$ = 0")
    ax.set_ylim(0.75, 1.0)
    ax.set_xlabel(r"explicit momentum $\mu_L$")
    ax.set_ylabel("rate of the ensemble-mean error")
    ax.set_title(f"(c) mean rate, M={_ms(arr, 'opt_workers')}")
    ax.legend(fontsize=6.5, ncols=3, **_BELOW)


def _single_runs(ax, arr) -> None:
    mus = arr["best_mus"]
    for i, m in enumerate(np.asarray(arr["best_workers"]).tolist()):
        c = _m_color(arr, m)
        speed = 1.0 - arr["best_rate"][i]
        speed = np.where(np.isfinite(speed) & (speed > 0), speed, np.nan)
        ax.plot(
            mus,
            speed,
            **style(
                "measured", color=c, ms=2.5, **_m_marker(arr, m), label=f"M={m}: single runs (mean)"
            ),
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
    ax.axvline(0.0, color="0.3", lw=0.6, label=r"$\mu_L$ = 0")
    ax.set_yscale("log")
    ax.set_ylim(3e-3, 0.5)
    ax.set_xlabel(r"explicit momentum $\mu_L$")
    ax.set_ylabel("1 - late rate of one run (higher is faster)")
    ax.set_title(f"(d) best explicit momentum, M={_ms(arr, 'best_workers')}")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))


def plot(record: Record) -> Figure:
    """(a) staleness histograms, (b) ensemble mean vs heavy ball, (c) mean rate vs explicit
    momentum, (d) ``1 - late rate`` of single runs vs explicit momentum (log scale) with the
    bootstrap interval of the best."""
    arr = record.arrays
    fig, (ax_a, ax_b, ax_c, ax_d) = figure(ncols=4)
    _staleness(ax_a, arr)
    _mean(ax_b, arr, record.config.get("mean_workers"))
    _mean_rates(ax_c, arr)
    _single_runs(ax_d, arr)
    return fig
