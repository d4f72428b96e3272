"""Figure of experiment 4 (rate-failures): the Lessard-Recht-Packard counterexample's distances
and iterates, the abrupt toy's distances and its rates against the local prediction."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from experiments.framework import Record, figure, style
from experiments.style import series_color


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
    starts = arr["lessard_starts"]
    # Every start in range ends on the same cycle: their traces coincide, so they are drawn pale,
    # as one bundle.
    for i in range(n):
        ax_ld.semilogy(
            t,
            np.abs(x[i]),
            color=series_color(1),
            lw=0.8,
            alpha=0.4,
            label=(
                f"counterexample, {n} starts x0 in [{starts.min():g}, {starts.max():g}]"
                if i == 0
                else None
            ),
        )
    ax_ld.semilogy(
        t,
        np.abs(x[n]),
        color=series_color(0),
        lw=1.0,
        label=f"counterexample, x0={float(arr['lessard_contrast_x0']):g}",
    )
    cd = arr["lessard_control_dist"]
    ax_ld.semilogy(np.arange(cd.size), cd, color="0.45", lw=1.0, label="control quadratic")
    ax_ld.semilogy(
        t, 3.3 * s**t, **style("prediction", label=rf"theory $\sqrt{{\mu}}^t$={s:.3g}$^t$")
    )
    ax_ld.set_ylim(1e-16, 30.0)
    ax_ld.set_xlim(0, 120)
    ax_ld.set_xlabel("step t")
    ax_ld.set_ylabel(r"$|x_t - x^*|$")
    ax_ld.set_title(r"Lessard et al.: $\alpha$=1/9, $\mu$=4/9")
    ax_ld.legend(fontsize=6.5, ncols=2, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    k = min(60, x.shape[1])
    for i in range(n):
        ax_lx.plot(t[:k], x[i, :k], color=series_color(1), lw=0.7, alpha=0.4)
    last = x[:n, -1]
    per = arr["lessard_periods"][:n]
    # The cycle's points, once: every start that cycles lands on the same points (to 1e-6).
    cycles = [np.round(x[i, -int(p) :], 6) for i, p in enumerate(per) if p]
    if cycles:
        points = np.unique(np.concatenate(cycles))
        ax_lx.plot(
            np.full(points.size, k - 1),
            points,
            **style("measured", label=f"cycle points ({len(cycles)} of {n} starts)"),
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
    fracs = arr["abrupt_fracs"]
    for i, f in enumerate(fracs):
        d = arr["abrupt_dist"][i]
        ax_ad.semilogy(ta, d / d[0], color=series_color(i), lw=0.9, label=f"toy, pos {f:.1f}")
    cd = arr["abrupt_control_dist"][0]
    # The control converges at sqrt(mu)^t: drawn wide under the thinner prediction.
    ax_ad.semilogy(ta, cd / cd[0], color="0.6", lw=3.0, label="control quadratic")
    ax_ad.semilogy(ta, sa**ta, **style("prediction", lw=1.2, label=r"$\sqrt{\mu}^t$"))
    ax_ad.set_ylim(1e-16, 1e11)
    ax_ad.set_xlim(0, int(ta[-1]))
    ax_ad.set_xlabel("step t")
    ax_ad.set_ylabel(r"$|x_t - x^*| / |x_0 - x^*|$")
    ax_ad.set_title(rf"abrupt curvature (stitched 1-16), $\mu$={mu_a:g}")
    ax_ad.legend(fontsize=6.5, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.2))
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
        color="0.45",
        label="measured, control quadratic",
    )
    ax_ar.set_ylim(sa - 0.03, 1.01)
    ax_ar.set_xlabel(r"position of $\alpha$ in the robust interval")
    ax_ar.set_ylabel("rate")
    ax_ar.set_title("rate vs the local spectral-radius prediction")
    ax_ar.legend(fontsize=6.5, loc="center left")
    return fig
