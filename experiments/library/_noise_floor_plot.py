"""Figure of experiment 6 (noise-floor): 1-D floors, NQM floors, relative gaps with their
acceptance bands, and YellowFin's surrogate against the exact stationary variance."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

import theory
from experiments.framework import Record, figure, style
from experiments.style import series_color


def plot(record: Record) -> Figure:
    """Four panels: 1-D floor, NQM floor, relative gaps, YellowFin's surrogate vs the exact."""
    arr = record.arrays
    cfg = record.config
    h, c = float(cfg.get("h", 1.0)), float(cfg.get("c", 1.0))
    fig, axes = figure(ncols=2, nrows=2)
    (ax_1d, ax_nqm), (ax_rel, ax_sur) = axes
    a_h, mus = arr["alpha_h"], arr["mu"]
    fine = np.geomspace(a_h.min() * 0.8, a_h.max() * 1.05, 200)
    # One colour per mu value in every panel (the 1-D and NQM grids need not share their mus).
    every_mu = sorted({float(m) for m in mus[0]} | {float(m) for m in arr["nqm_mu"][0]})

    def _color(mu: float) -> str:
        return series_color(every_mu.index(float(mu)))

    for j, mu in enumerate(mus[0]):
        col = _color(mu)
        xs = fine[fine < 2.0 * (1.0 + mu)]
        ax_1d.loglog(xs, theory.stationary_loss(xs / h, mu, h, c), color=col, lw=1.2)
        ax_1d.errorbar(
            a_h[:, j], arr["meas"][:, j], yerr=arr["stderr"][:, j], fmt="o", ms=4, mfc="none",
            color=col, label=rf"$\mu$={mu:g}",
        )  # fmt: skip
        ax_sur.loglog(xs, theory.stationary_variance(xs / h, mu, h, c), color=col, lw=1.2)
        ax_sur.loglog(xs, (xs / h) ** 2 * c / (1.0 - mu), color=col, lw=1.0, ls=":")
        ax_sur.plot(a_h[:, j], arr["meas_var"][:, j], "o", ms=4, mfc="none", color=col)
    ax_1d.plot([], [], **style("theory", linestyle="-", lw=1.2, label="closed form"))
    ax_1d.set_xlabel(r"$\alpha h$")
    ax_1d.set_ylabel("stationary loss")
    ax_1d.set_title(f"1-D quadratic, h={h:g}, c={c:g}")
    ax_1d.legend(fontsize=7)

    h_n, c_n = arr["nqm_h"], arr["nqm_c"]
    n_alpha, n_mu = arr["nqm_alpha"], arr["nqm_mu"]
    fine_a = np.geomspace(n_alpha.min() * 0.8, n_alpha.max() * 1.05, 200)
    for j, mu in enumerate(n_mu[0]):
        col = _color(mu)
        xs = fine_a[fine_a * h_n.max() < 2.0 * (1.0 + mu)]
        ax_nqm.loglog(xs, theory.nqm_floor(xs, mu, h_n, c_n), color=col, lw=1.2)
        ax_nqm.errorbar(
            n_alpha[:, j], arr["nqm_meas"][:, j], yerr=arr["nqm_stderr"][:, j], fmt="s", ms=4,
            mfc="none", color=col, label=rf"$\mu$={mu:g}",
        )  # fmt: skip
    ax_nqm.plot([], [], **style("theory", linestyle="-", lw=1.2, label="sum of closed forms"))
    ax_nqm.xaxis.set_minor_formatter(NullFormatter())
    ax_nqm.set_xlabel(r"learning rate $\alpha$")
    ax_nqm.set_ylabel("total stationary loss")
    ax_nqm.set_title(f"NQM: d={len(h_n)}, " + r"$h_i = i^{-p}$, $c_i = h_i/B$")
    ax_nqm.legend(fontsize=7)

    rel = float(cfg.get("resolution", 0.02))
    x_1d = np.arange(arr["pred"].size)
    x_nqm = x_1d.size + np.arange(arr["nqm_pred"].size)
    ax_rel.axhspan(-rel, rel, color="0.85", label=f"resolution ±{rel:.0%}")
    ax_rel.axhline(0.0, **style("prediction", lw=1.0))
    ax_rel.errorbar(
        x_1d, (arr["meas"] / arr["pred"] - 1).ravel(), yerr=(arr["tol_1d"] / arr["pred"]).ravel(),
        fmt="s", ms=4, mfc="none", color=series_color(len(every_mu) + 3), label="1-D grid",
    )  # fmt: skip
    ax_rel.errorbar(
        x_nqm, (arr["nqm_meas"] / arr["nqm_pred"] - 1).ravel(),
        yerr=(arr["tol_nqm"] / arr["nqm_pred"]).ravel(),
        fmt="D", ms=4, mfc="none", color=series_color(len(every_mu) + 1), label="NQM",
    )  # fmt: skip
    ax_rel.set_ylim(-1.5 * rel, 1.5 * rel)
    ax_rel.set_xlabel("grid point")
    ax_rel.set_ylabel("measured / closed form - 1")
    ax_rel.set_title("relative gap (bars: acceptance band)")
    ax_rel.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # off the bars

    ax_sur.plot([], [], **style("theory", linestyle="-", label=r"exact $E(x-x^*)^2$"))
    ax_sur.plot([], [], **style("theory", linestyle=":", label=r"surrogate $\alpha^2 C/(1-\mu)$"))
    ax_sur.plot([], [], **style("measured", color="k", mfc="none", label="measured"))
    ax_sur.set_xlabel(r"$\alpha h$")
    ax_sur.set_ylabel(r"stationary $E(x - x^*)^2$")
    ax_sur.set_title("YellowFin's surrogate vs the exact floor")
    ax_sur.legend(fontsize=7)
    return fig
