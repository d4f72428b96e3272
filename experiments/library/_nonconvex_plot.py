"""Figure of experiment 3 (nonconvex-constant-rate): toys, curvature, distances and rates."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from experiments.framework import Record, figure, style

TOYS = ("smooth", "stitched", "smooth-separable", "stitched-separable")
_COLORS = {
    "smooth": style("heavy-ball")["color"],
    "stitched": style("yellowfin")["color"],
    "smooth-separable": style("momo")["color"],
    "stitched-separable": style("adam")["color"],
}
_MARKERS = {"smooth": "o", "stitched": "s", "smooth-separable": "D", "stitched-separable": "^"}


def plot(record: Record) -> Figure:
    """The toys, their curvature with the robust band, distances vs sqrt(mu)^t and the rates."""
    arr = record.arrays
    fig, axes = figure(ncols=3, nrows=2)
    ax_f, ax_h, ax_d = axes[0]
    ax_v, ax_r, ax_s = axes[1]
    mus, mu_s = arr["mus"], float(arr["scan_mu"])
    i = int(np.flatnonzero(np.isclose(mus, mu_s))[0])
    s = np.sqrt(mu_s)
    for toy in ("smooth", "stitched"):
        c = _COLORS[toy]
        ax_f.plot(arr["x_lin"], arr[f"f_{toy}"], color=c, lw=1.2, label=f"{toy} toy")
        ax_h.semilogx(arr["e_log"], arr[f"h_{toy}"], color=c, lw=1.0, label=f"h(x), {toy}")
        a = arr[f"alpha_{toy}"][i]
        band = ((1 - s) ** 2 / a, (1 + s) ** 2 / a)
        if toy == "smooth":
            ax_h.axhspan(*band, color=c, alpha=0.12, label="robust band (smooth)")
        else:
            for y in band:
                ax_h.axhline(y, color=c, lw=0.8, ls="--")
    ax_f.set_xlabel(r"$x - x^*$")
    ax_f.set_ylabel(r"$f(x)$")
    ax_f.set_title("non-convex toys")
    ax_f.legend(fontsize=7)
    ax_h.set_xlabel(r"$|x - x^*|$ (log scale)")
    ax_h.set_ylabel(r"$h(x) = f'(x)/(x - x^*)$")
    ax_h.set_title(rf"generalised curvature, band at $\mu$={mu_s:g}")
    ax_h.set_yscale("log")
    ax_h.legend(fontsize=6.5, loc="upper right")
    t = arr["t"]
    t_end = 10
    for toy in TOYS:
        d = arr[f"dist_{toy}"]
        below = np.flatnonzero(~(d / d[0] > 1e-15))
        t_end = max(t_end, int(t[below[0]]) if below.size else int(t[-1]))
    t_end = min(int(t[-1]), int(1.15 * t_end))
    for toy in TOYS:
        d = arr[f"dist_{toy}"]
        ax_d.semilogy(t, d / d[0], color=_COLORS[toy], lw=1.0, label=toy)
    ax_d.semilogy(t, s**t, **style("prediction", label=r"$\sqrt{\mu}^t$"))
    ax_d.set_ylim(1e-16, 10.0)
    ax_d.set_xlim(0, t_end)
    ax_d.set_xlabel("step t")
    ax_d.set_ylabel(r"$\|x_t - x^*\| / \|x_0 - x^*\|$")
    ax_d.set_title(rf"distance to optimum, $\mu$={mu_s:g}")
    ax_d.legend(fontsize=6.5)
    for toy in ("smooth", "stitched"):
        v = arr[f"visited_ah_{toy}"]
        ax_v.plot(np.arange(v.size), v, ".", ms=1.5, color=_COLORS[toy], label=toy)
    ax_v.axhspan((1 - s) ** 2, (1 + s) ** 2, color="0.88", label="robust interval")
    ax_v.set_xlim(0, t_end)
    ax_v.set_yscale("log")
    ax_v.set_xlabel("step t")
    ax_v.set_ylabel(r"$\alpha\, h(x_t)$ visited")
    ax_v.set_title("curvature seen by the runs")
    ax_v.legend(fontsize=7, markerscale=6)
    m = np.linspace(mus.min() - 0.05, min(mus.max() + 0.05, 0.99), 100)
    ax_r.plot(np.sqrt(m), np.sqrt(m), **style("prediction", label=r"theory $\sqrt{\mu}$"))
    for toy in TOYS:
        ax_r.errorbar(
            np.sqrt(mus),
            arr[f"rate_{toy}"],
            yerr=arr[f"stderr_{toy}"],
            fmt=_MARKERS[toy],
            ms=4,
            mfc="none",
            color=_COLORS[toy],
            label=toy,
        )
    ax_r.set_xlabel(r"$\sqrt{\mu}$")
    ax_r.set_ylabel("measured rate")
    ax_r.set_title(r"YellowFin's $\alpha = (1-\sqrt{\mu})^2 / h_{min}$")
    ax_r.legend(fontsize=6.5)
    fr = arr["scan_fractions"]
    for toy in ("smooth", "stitched"):
        r = np.minimum(arr[f"scan_rate_{toy}"], 1.05)
        ax_s.plot(fr, r, _MARKERS[toy], mfc="none", color=_COLORS[toy], label=f"measured, {toy}")
    ax_s.axhline(s, **style("prediction", label=r"$\sqrt{\mu}$"))
    ax_s.axhline(1.0, color="0.5", lw=0.7, ls=":", label="no convergence")
    ax_s.set_xlabel("position of alpha in the robust interval (0 = YellowFin)")
    ax_s.set_ylabel("measured rate")
    ax_s.set_title(rf"beyond the claim: $\alpha$ scan, $\mu$={mu_s:g}")
    ax_s.legend(fontsize=6.5)
    return fig
