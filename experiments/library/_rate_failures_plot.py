"""Figure of experiment 4 (rate-failures): the Lessard-Recht-Packard counterexample's distances
and iterates, the abrupt toy's distances and its rates against the local prediction."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from experiments.framework import Record, figure, style


def plot(record: Record) -> Figure:
    """Counterexample distances and iterates; abrupt-toy distances and rates vs the prediction."""
    arr = record.arrays
    fig, axes = figure(ncols=2, nrows=2)
    (ax_ld, ax_lx), (ax_ad, ax_ar) = axes
    mu = float(arr["lessard_alpha_mu"][1])
    x = arr["lessard_x"]
    t = np.arange(x.shape[1])
    s = np.sqrt(mu)
    n = arr["lessard_starts"].size
    for i in range(n):
        ax_ld.semilogy(
            t,
            np.abs(x[i]),
            color=style("yellowfin")["color"],
            lw=0.8,
            alpha=0.7,
            label="counterexample, x0 in range" if i == 0 else None,
        )
    ax_ld.semilogy(
        t,
        np.abs(x[n]),
        color=style("heavy-ball")["color"],
        lw=1.0,
        label=f"counterexample, x0={float(arr['lessard_contrast_x0']):g}",
    )
    cd = arr["lessard_control_dist"]
    ax_ld.semilogy(np.arange(cd.size), cd, color=style("momo")["color"], lw=1.0, label="control")
    ax_ld.semilogy(
        t, 3.3 * s**t, **style("prediction", label=rf"theory $\sqrt{{\mu}}^t$={s:.3g}$^t$")
    )
    ax_ld.set_ylim(1e-16, 30.0)
    ax_ld.set_xlim(0, 120)
    ax_ld.set_xlabel("step t")
    ax_ld.set_ylabel(r"$|x_t - x^*|$")
    ax_ld.set_title(r"Lessard et al.: $\alpha$=1/9, $\mu$=4/9")
    ax_ld.legend(fontsize=6.5)
    k = min(60, x.shape[1])
    for i in range(n):
        ax_lx.plot(t[:k], x[i, :k], color=style("yellowfin")["color"], lw=0.7, alpha=0.7)
    last = x[:n, -1]
    per = arr["lessard_periods"][:n]
    for i in range(n):
        p = int(per[i])
        if p:
            ax_lx.plot(
                np.full(p, k - 1),
                x[i, -p:],
                **style("measured", label="cycle points" if i == 0 else None),
            )
    ax_lx.axhline(1.0, color="0.5", lw=0.7, ls=":", label="kinks of f'")
    ax_lx.axhline(2.0, color="0.5", lw=0.7, ls=":")
    ax_lx.axhline(0.0, **style("prediction", label=r"$x^*$ (predicted limit)"))
    ax_lx.set_xlabel("step t")
    ax_lx.set_ylabel(r"$x_t$")
    ax_lx.set_title(f"iterates settle into a period-{int(per.max()) if last.size else 0} cycle")
    ax_lx.legend(fontsize=6.5, loc="lower right")

    mu_a = float(arr["abrupt_mu"])
    sa = np.sqrt(mu_a)
    ta = arr["abrupt_t"]
    cmap = [style(k)["color"] for k in ("heavy-ball", "yellowfin", "momo", "adam", "sgd")]
    fracs = arr["abrupt_fracs"]
    for i, f in enumerate(fracs):
        d = arr["abrupt_dist"][i]
        ax_ad.semilogy(ta, d / d[0], color=cmap[i % len(cmap)], lw=0.9, label=f"toy, pos {f:.1f}")
    cd = arr["abrupt_control_dist"][0]
    ax_ad.semilogy(ta, cd / cd[0], color="0.4", lw=0.9, ls="-.", label="control quadratic")
    ax_ad.semilogy(ta, sa**ta, **style("prediction", label=r"$\sqrt{\mu}^t$"))
    ax_ad.set_ylim(1e-16, 1e11)
    ax_ad.set_xlim(0, int(ta[-1]))
    ax_ad.set_xlabel("step t")
    ax_ad.set_ylabel(r"$|x_t - x^*| / |x_0 - x^*|$")
    ax_ad.set_title(rf"abrupt curvature (stitched 1-16), $\mu$={mu_a:g}")
    ax_ad.legend(fontsize=6, ncols=2)
    ax_ar.axhline(sa, **style("prediction", label=r"local prediction $\sqrt{\mu}$"))
    rate = arr["abrupt_rate"]
    div = arr["abrupt_diverged"].astype(bool)
    fin = np.isfinite(rate) & ~div
    ax_ar.errorbar(
        fracs[fin],
        rate[fin],
        yerr=arr["abrupt_stderr"][fin],
        **style("measured", label="measured, stitched toy", ms=5),
    )
    if div.any():
        ax_ar.plot(fracs[div], np.full(div.sum(), 1.0), "x", color="k", ms=7, label="diverged")
    ax_ar.errorbar(
        fracs,
        arr["abrupt_control_rate"],
        yerr=arr["abrupt_control_stderr"],
        fmt="s",
        mfc="none",
        ms=5,
        color=style("momo")["color"],
        label="measured, control quadratic",
    )
    ax_ar.set_ylim(sa - 0.03, 1.01)
    ax_ar.set_xlabel(r"position of $\alpha$ in the robust interval")
    ax_ar.set_ylabel("rate")
    ax_ar.set_title("rate vs the local spectral-radius prediction")
    ax_ar.legend(fontsize=6.5, loc="center left")
    return fig
