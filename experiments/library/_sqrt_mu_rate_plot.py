"""Figure of experiment 2 (sqrt-mu-rate): rate vs mu per kappa, deviation vs kappa, alpha sweep."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from experiments.framework import Record, figure, style
from experiments.style import series_color


def plot(record: Record) -> Figure:
    """Rate vs mu per kappa, relative deviation vs kappa, and the learning-rate sweep."""
    arr = record.arrays
    fig, (ax_mu, ax_dev, ax_sw) = figure(ncols=3)
    mus, kappas, ok = arr["mus"], arr["kappas"], arr["eligible"].astype(bool)
    m = np.linspace(min(mus.min(), 0.4), 0.99, 200)
    ax_mu.plot(m, np.sqrt(m), **style("prediction", label=r"theory $\sqrt{\mu}$"))
    markers = "osD^vPX*"
    # Rates at one mu are equal for every kappa: dodge the kappas sideways (and shrink the later
    # markers) so that no pair hides another.
    dodge = 0.012 * (np.arange(len(kappas)) - (len(kappas) - 1) / 2.0)
    for j, kappa in enumerate(kappas):
        rows = ok[:, j]
        if not rows.any():
            continue
        ax_mu.errorbar(
            mus[rows] + dodge[j],
            arr["grid_meas"][rows, j],
            yerr=arr["grid_stderr"][rows, j],
            fmt=markers[j % len(markers)],
            ms=6.0 - 3.0 * j / max(1, len(kappas) - 1),
            mfc="none",
            color=series_color(j),
            label=rf"measured, $\kappa$={kappa:g}",
        )
    z = float(record.config.get("z_tol", 4.0))
    for i, mu in enumerate(mus):
        cols = ok[i]
        if not cols.any():
            continue
        ax_dev.errorbar(
            kappas[cols] * (1.0 + 0.08 * (i - (len(mus) - 1) / 2.0)),
            arr["grid_meas"][i, cols] / np.sqrt(mu) - 1.0,
            yerr=z * arr["grid_stderr"][i, cols] / np.sqrt(mu),
            fmt=markers[i % len(markers)],
            ms=4,
            mfc="none",
            color=series_color(len(kappas) + i),  # not the kappa colours of the first panel
            label=rf"$\mu$={mu:g}",
        )
    ax_mu.set_xlabel(r"momentum $\mu$ (kappas dodged)")
    ax_mu.set_ylabel("rate")
    ax_mu.set_title(r"rate at mid-interval $\alpha$")
    ax_mu.legend(fontsize=6.5)
    ax_dev.axhline(0.0, **style("prediction", label="theory (0)"))
    ax_dev.set_xscale("log")
    ax_dev.set_xlabel(r"condition number $\kappa$")
    ax_dev.set_ylabel(r"measured / $\sqrt{\mu}$ - 1")
    ax_dev.set_title(rf"flat in $\kappa$ (bars: tolerance, {z:g} stderr)")
    ax_dev.legend(fontsize=7)
    mu_s, kappa_s = arr["sweep_mu_kappa"]
    lo, hi = arr["sweep_interval"]
    ax_sw.axvspan(lo, hi, color="0.88", label="robust interval")
    ax_sw.plot(arr["sweep_alpha_fine"], arr["sweep_curve"], **style("theory", label="closed form"))
    used = arr["sweep_used"].astype(bool)
    ax_sw.errorbar(
        arr["sweep_alpha"][used],
        arr["sweep_meas"][used],
        yerr=arr["sweep_stderr"][used],
        **style("measured", ms=4, mfc="none"),
    )
    ax_sw.axhline(np.sqrt(mu_s), color="0.5", lw=0.7, ls=":", label=r"$\sqrt{\mu}$")
    ax_sw.set_xscale("log")
    ax_sw.set_ylim(0.0, 1.02)
    ax_sw.set_xlabel(r"learning rate $\alpha$")
    ax_sw.set_ylabel("rate")
    ax_sw.set_title(rf"$\alpha$ sweep, $\mu$={mu_s:g}, $\kappa$={kappa_s:g}")
    # Below the panel: the robust interval's shading spans its full height.
    ax_sw.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)
    return fig
