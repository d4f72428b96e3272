"""Figure of experiment 14 (momo-bounds): derived bounds against the measured f(xbar_K), per beta,
and MoMo*'s estimate of f_*."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from experiments.framework import figure, style
from experiments.style import series_color


def plot_bounds(arr: Mapping[str, np.ndarray], f_star: float) -> Figure:
    """One panel per beta: measured ``E f(xbar_K)`` (markers, one colour per alpha), the derived
    ``O(1/K)`` bound (b) (``beta = 0`` only, dotted), the derived ``O(1/sqrt K)`` bound (c)
    (dash-dot), a ``K^-1/2`` slope guide for the published rate (its constant is not known) and the
    initial loss above which a bound is vacuous; last panel: MoMo*'s estimate against the true
    ``f_*``."""
    betas, alphas, ks = arr["betas"], arr["alphas"], arr["ks"]
    fig, axes = figure(ncols=len(betas) + 1, height=4.8)
    f0 = float(arr["initial_loss"])
    for i, beta in enumerate(betas):
        ax = axes[i]
        n = len(alphas)
        for j, alpha in enumerate(alphas):
            c = series_color(j)
            # Large learning rates can give the same bounds and measurements (MoMo's step cap
            # binds): earlier alphas are drawn wider and with larger hollow markers of another
            # shape, so that a later alpha drawn on top leaves them visible.
            lw, pale = 0.8 + 1.3 * (n - 1 - j), 1.0 if j == n - 1 else 0.55
            if beta == 0:
                ax.loglog(ks, arr["bound_beta0"][j], color=c, ls=":", lw=lw, alpha=pale)
            ax.loglog(ks, arr["bound_sqrt_k"][i, j], color=c, ls="-.", lw=lw, alpha=pale)
            ax.errorbar(
                ks,
                arr["f_xbar_mean"][i, j],
                yerr=arr["f_xbar_se"][i, j],
                color=c,
                ls="none",
                marker="osD^v"[j % 5],
                mfc="none",
                ms=3.5 + 2.0 * (n - 1 - j),
                label=rf"measured, $\alpha$={alpha:g}",
            )
        ax.loglog(ks, f0 * np.sqrt(ks[0] / ks), color="0.3", lw=0.8, ls="--",
                  label=r"$K^{-1/2}$ (published rate; constant unknown)")  # fmt: skip
        ax.axhline(f0, color="0.5", lw=0.8, ls=(0, (1, 3)),
                   label="initial loss (bounds above: vacuous)")  # fmt: skip
        if beta == 0:
            ax.plot([], [], color="0.2", ls=":", lw=1.2, label="derived O(1/K) bound (b)")
        ax.plot([], [], color="0.2", ls="-.", lw=1.0, label=r"derived O(1/$\sqrt{K}$) bound (c)")
        ax.set_title(rf"MoMo, $\beta$={beta:g}")
        ax.set_xlabel("iterations K")
        ax.set_ylabel(r"$E f(\bar x_K) - f_*$")
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    ax = axes[-1]
    t = np.arange(arr["lower_bound_runs"].shape[-1])
    for i, beta in enumerate(betas):
        c = series_color(len(alphas) + i)  # not an alpha's colour from the other panels
        for run_lb in arr["lower_bound_runs"][i]:
            ax.plot(t[1:], run_lb[1:], color=c, lw=0.6, alpha=0.35)
        ax.plot(
            t[1:], arr["lower_bound_estimate"][i, 1:], color=c, lw=1.4, label=rf"$\beta$={beta:g}"
        )
    ax.plot([], [], color="0.4", lw=0.6, alpha=0.5, label="one run")
    ax.axhline(f_star, **style("prediction", label=r"true $f_*$"))
    ax.axhline(0.0, color="0.5", lw=0.8, ls=":", label="floor given to MoMo*")
    ax.set_xscale("log")
    ax.set_xlabel("step k")
    ax.set_ylabel(r"MoMo* estimate $f_*^k$")
    ax.set_title("MoMo* lower-bound estimate")
    ax.legend(fontsize=7)
    return fig
