"""Figure of experiment 3 (nonconvex-constant-rate): toys, curvature, distances and rates."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from experiments.framework import Record, figure, style
from experiments.style import series_color

TOYS = ("smooth", "stitched", "smooth-separable", "stitched-separable")
_COLORS = {toy: series_color(i) for i, toy in enumerate(TOYS)}  # toys, not methods
_BELOW = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.2)}  # legend under a shaded panel
_MARKERS = {"smooth": "o", "stitched": "s", "smooth-separable": "D", "stitched-separable": "^"}


def plot(record: Record) -> Figure:
    """The toys, their curvature with the robust band, distances, YellowFin's rates and the scan."""
    arr = record.arrays
    fig, axes = figure(ncols=3, nrows=2)
    ax_f, ax_h, ax_d = axes[0]
    ax_v, ax_r, ax_s = axes[1]
    mus, mu_f = arr["mus"], float(arr["figure_mu"])
    i = int(np.flatnonzero(np.isclose(mus, mu_f))[0])
    s = np.sqrt(mu_f)
    for toy in ("smooth", "stitched"):
        c = _COLORS[toy]
        ax_f.plot(arr["x_lin"], arr[f"f_{toy}"], color=c, lw=1.2, label=f"{toy} toy")
        ax_h.semilogx(arr["e_log"], arr[f"h_{toy}"], color=c, lw=1.0, label=f"h(x), {toy}")
        a = arr[f"alpha_{toy}"][i]
        band = ((1 - s) ** 2 / a, (1 + s) ** 2 / a)
        if toy == "smooth":
            ax_h.axhspan(*band, color=c, alpha=0.12, label="robust band (smooth)")
        else:
            ax_h.axhline(band[0], color=c, lw=0.8, ls="--", label="robust band (stitched)")
            ax_h.axhline(band[1], color=c, lw=0.8, ls="--")
    ax_f.set_xlabel(r"$x - x^*$")
    ax_f.set_ylabel(r"$f(x)$")
    ax_f.set_title("non-convex toys")
    ax_f.legend(fontsize=7)
    ax_h.set_xlabel(r"$|x - x^*|$ (log scale)")
    ax_h.set_ylabel(r"$h(x) = f'(x)/(x - x^*)$")
    ax_h.set_title(rf"generalised curvature, YellowFin band at $\mu$={mu_f:g}")
    ax_h.set_yscale("log")
    ax_h.legend(fontsize=6.5, ncols=2, **_BELOW)  # the band shades the whole panel
    t = arr["t"]
    # Every toy decays like sqrt(mu)^t, so their distances would lie on one line: each toy is
    # shifted down by 12 decades more than the last, over its own thin sqrt(mu)^t line.
    for k, toy in enumerate(TOYS):
        d, shift = arr[f"dist_{toy}"], 10.0 ** (-12 * k)
        ax_d.semilogy(
            t, shift * d / d[0], color=_COLORS[toy], lw=2.2,
            label=toy if k == 0 else rf"{toy} ($\times 10^{{{-12 * k}}}$)",
        )  # fmt: skip
        ax_d.semilogy(
            t,
            shift * s**t,
            **style("prediction", lw=0.8, label=r"$\sqrt{\mu}^t$" if k == 0 else None),
        )
    ax_d.set_ylim(10.0 ** (-12 * len(TOYS) - 80), 10.0)
    ax_d.set_xlabel("step t")
    ax_d.set_ylabel(r"$\|x_t - x^*\| / \|x_0 - x^*\|$ (shifted)")
    ax_d.set_title(rf"distance at YellowFin's $\alpha$, $\mu$={mu_f:g}")
    ax_d.legend(fontsize=6.5, ncols=2, **_BELOW)
    for toy in ("smooth", "stitched"):
        v = arr[f"visited_ah_{toy}"]
        ax_v.plot(np.arange(v.size), v, ".", ms=1.5, color=_COLORS[toy], label=toy)
    ax_v.axhspan((1 - s) ** 2, (1 + s) ** 2, color="0.88", label="robust interval")
    ax_v.set_yscale("log")
    ax_v.set_xlabel("step t")
    ax_v.set_ylabel(r"$\alpha\, h(x_t)$ visited")
    ax_v.set_title(rf"curvature seen at YellowFin's $\alpha$, $\mu$={mu_f:g}")
    ax_v.legend(fontsize=7, markerscale=6, ncols=3, **_BELOW)  # the interval shades the panel
    m = np.linspace(mus.min() - 0.05, min(mus.max() + 0.05, 0.99), 100)
    ax_r.plot(np.sqrt(m), np.sqrt(m), **style("prediction", label=r"theory $\sqrt{\mu}$"))
    for toy in TOYS:
        lo, hi = (np.sqrt(mus) * (1 + arr[f"interval_{toy}"][:, k]) for k in (0, 1))
        rate = arr[f"rate_{toy}"]
        ax_r.errorbar(
            np.sqrt(mus),
            rate,
            yerr=np.clip([rate - lo, hi - rate], 0.0, None),
            fmt=_MARKERS[toy],
            ms=4,
            mfc="none",
            color=_COLORS[toy],
            label=f"{toy} (mean, interval)",
        )
    ax_r.set_xlabel(r"$\sqrt{\mu}$")
    ax_r.set_ylabel("measured rate")
    ax_r.set_title(r"YellowFin's $\alpha = (1-\sqrt{\mu})^2 / h_{min}$")
    ax_r.legend(fontsize=6.5)
    _scan_panel(ax_s, arr)
    return fig


def _scan_panel(ax, arr) -> None:
    """Mean ``rate / sqrt(mu) - 1`` over the scan, the claim's band and the predicted side."""
    pos, mus = arr["positions"], arr["mus"]
    ax.axvspan(pos.min() - 0.05, 0.0, color="0.9", label="lazy side (predicted: slower)")
    ax.axhspan(-0.02, 0.02, color=style("prediction")["color"], alpha=0.15, label="2% band")
    styles = ("-", "--", "-.", ":")
    for toy in ("smooth", "stitched"):
        dev = arr[f"scan_rate_{toy}"] / np.sqrt(mus)[:, None] - 1.0
        for k, mu in enumerate(mus):
            ax.plot(
                pos,
                np.minimum(dev[k], 0.15),
                marker=_MARKERS[toy],
                ms=3.0 + 2.0 * (len(mus) - 1 - k),  # same toy, other mu: another size
                mfc="none",
                lw=0.8,
                ls=styles[k % len(styles)],
                color=_COLORS[toy],
                label=rf"{toy}, $\mu$={mu:g}",
            )
    ax.set_xlabel("position of alpha (0 = YellowFin, 1 = right end; < 0 lazy)")
    ax.set_ylabel(r"mean rate / $\sqrt{\mu}$ - 1 (cycle: 1/$\sqrt{\mu}$ - 1)")
    ax.set_title("scan: robust curvature vs measured rate")
    ax.set_ylim(-0.03, 0.17)
    ax.legend(fontsize=6, ncols=2, **_BELOW)  # the lazy side shades part of the panel
