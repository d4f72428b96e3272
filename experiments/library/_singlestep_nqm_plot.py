"""Figure of singlestep-yellowfin-nqm: SingleStep, YellowFin's tuning and oracles against theory,
the sweep of the oracle fixed point, the speed ladder and the rebound of the loss."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

import theory
from experiments.framework import Record, figure, style
from experiments.style import series_color

_ORACLE_KEYS = ("h_min", "h_max", "grad_var", "dist_to_opt")
_ORACLE_LABELS = (r"$h_{min}$", r"$h_{max}$", "C", "D")
_BELOW = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.2), "ncols": 2}  # legend off the data


def pack(rows: list[dict], speed: list[dict]) -> dict[str, np.ndarray]:
    """The sweep and speed-ladder tables the figure draws, as arrays of the record."""
    sweep_keys = ("kappa", "dim", "batch_size", "mu_late", "mu_fixed_point", "mu_singlestep_true")
    return {
        "sweep": np.array([[*(float(r[k]) for k in sweep_keys), r["settled"]] for r in rows]),
        "speed": np.array(
            [
                [
                    s["target"],
                    s["iterations_yellowfin"],
                    s["iterations_heavy_ball"],
                    *s["speed_interval"],
                    s["speed"],
                ]
                for s in speed
            ]
        ),  # columns: target, iterations YellowFin, heavy ball, interval lo, hi, ratio
    }


def _band(ax, t, values, key: str, label: str, every: int) -> None:
    """Seed mean as markers on a thin line, with the seed min-max range shaded."""
    kw = style(key)
    ax.fill_between(t, values.min(0), values.max(0), color=kw["color"], alpha=0.2, lw=0)
    ax.plot(t, values.mean(0), color=kw["color"], lw=0.8)
    ax.plot(t, values.mean(0), **style(key, linestyle="none", ms=3.5, mfc="none", label=label,
                                       markevery=every))  # fmt: skip


def _read_window(ax, record_arrays) -> None:
    ax.axvline(float(record_arrays["read_from"]), color="0.5", lw=0.8, ls="-.",
               label="read window starts")  # fmt: skip


def _surface(ax_s, ax_bf, fig, arr, late_d: float) -> None:
    """SingleStep surface at the late true distance, and the closed form vs brute force."""
    h_min, h_max, c_true = (float(v) for v in arr["true_stats"])
    mu_opt, a_opt = (float(v) for v in theory.singlestep(c_true, late_d, h_min, h_max))
    mu_lb = float(theory.min_robust_momentum(h_max / h_min))
    a_top = 1.3 * (1.0 - math.sqrt(mu_lb)) ** 2 / h_min
    mu_g, a_g = np.meshgrid(np.linspace(1e-3, 0.999, 240), np.linspace(a_top / 400, a_top, 200))
    mesh = ax_s.contourf(mu_g, a_g, np.log10(mu_g * late_d**2 + a_g**2 * c_true), levels=24)
    fig.colorbar(mesh, ax=ax_s, label=r"$\log_{10}(\mu D^2 + \alpha^2 C)$")
    m = np.linspace(0.0, 0.999, 400)
    curve = (1 - np.sqrt(m)) ** 2 / h_min
    ax_s.plot(m[m >= mu_lb], curve[m >= mu_lb], color="w", lw=1.4, label="feasible curve")
    ax_s.plot(m[m < mu_lb], curve[m < mu_lb], color="w", lw=1.0, ls=":", label="infeasible")
    ax_s.plot(mu_opt, a_opt, "*", color=style("yellowfin")["color"], ms=13, mec="k",
              label="closed form")  # fmt: skip
    x_bf = float(np.interp(np.log(late_d), np.log(arr["d_grid"]), arr["x_bf"]))
    ax_s.plot(x_bf**2, (1 - x_bf) ** 2 / h_min, "x", color="r", ms=8, label="brute force")
    ax_s.set(ylim=(0, a_top), xlabel=r"momentum $\mu$", ylabel=r"learning rate $\alpha$",
             title=f"SingleStep, true statistics, D={late_d:.2g}")  # fmt: skip
    ax_s.legend(fontsize=6.5, facecolor="0.8", **_BELOW)  # inside, it would hide the surface
    d_fine = np.geomspace(arr["d_grid"].min(), arr["d_grid"].max(), 300)
    mu_fine, _ = theory.singlestep(c_true, d_fine, h_min, h_max)
    ax_bf.semilogx(d_fine, np.sqrt(mu_fine), **style("theory", label="closed form"))
    ax_bf.semilogx(arr["d_grid"], arr["x_bf"], **style("measured", mfc="none", label="brute force"))
    ax_bf.axhline(math.sqrt(mu_lb), **style("bound", label="dynamic-range bound"))
    ax_bf.set(
        xlabel="distance to optimum D",
        ylabel=r"optimal $\sqrt{\mu}$",
        title=f"SingleStep optimum (C={c_true:.2g}, " + r"$\kappa$" + f"={h_max / h_min:g})",
    )
    ax_bf.legend(fontsize=7)


def plot(record: Record) -> Figure:
    """Eight panels: surface, brute force, mu_t, alpha_t, oracles, loss, sweep, speed ladder."""
    arr = record.arrays
    fig, axes = figure(ncols=4, nrows=2)
    (ax_s, ax_bf, ax_mu, ax_a), (ax_st, ax_l, ax_sw, ax_sp) = axes
    t = arr["t"]
    every = max(1, len(t) // 25)
    j0 = int(np.searchsorted(t, float(arr["read_from"])))
    _surface(ax_s, ax_bf, fig, arr, float(arr["dist"][:, j0:].mean()))
    a_fp, mu_fp, floor_fp = (float(v) for v in arr["fixed_point"])

    for ax, key, true_key, fp, name in (
        (ax_mu, "yf_momentum", "mu_true", mu_fp, r"momentum $\mu_t$"),
        (ax_a, "yf_learning_rate", "alpha_true", a_fp, r"learning rate $\alpha_t$"),
    ):
        _band(ax, t[1:], arr[key][:, 1:], "yellowfin", "YellowFin", every)
        ax.plot(t[1:], arr[true_key][:, 1:].mean(0),
                **style("bound", label="SingleStep, true statistics"))  # fmt: skip
        ax.axhline(fp, **style("prediction", label="oracle fixed point (theory)"))
        _read_window(ax, arr)
        ax.set(xlabel="step t", ylabel=name)
        ax.legend(fontsize=6.5, **_BELOW)  # the read window's line crosses the whole panel
    ax_mu.set_title("tuned momentum")
    ax_a.set(yscale="log", title="tuned learning rate (no decay)")

    # oracles: measured vs their prediction at the late operating point, and the Hessian's values
    h_min, h_max, c_true = (float(v) for v in arr["true_stats"])
    cols = [series_color(i) for i in (0, 3, 2, 4)]  # statistics, not methods
    truths = (h_min, h_max, c_true, None)
    pred = dict(zip(("grad_var", "dist_to_opt", "h_min", "h_max"), arr["oracle_predicted"],
                    strict=True))  # fmt: skip
    for col, key, truth, name in zip(cols, _ORACLE_KEYS, truths, _ORACLE_LABELS, strict=True):
        ax_st.semilogy(t[1:], arr[f"yf_{key}"][:, 1:].mean(0), color=col, lw=0.9,
                       label=f"YellowFin {name}")  # fmt: skip
        ax_st.plot([t[j0], t[-1]], [pred[key]] * 2, color=col, lw=2.2, ls="--")
        if truth is not None:
            ax_st.axhline(truth, color=col, lw=0.9, ls=":")
    ax_st.semilogy(t, arr["dist"].mean(0), color=cols[3], lw=0.9, ls=":")
    ax_st.plot([], [], **style("prediction", lw=2.2, label="theory at late (alpha, mu)"))
    ax_st.plot([], [], **style("bound", label="Hessian / true distance"))
    ax_st.set(xlabel="step t", ylabel="statistic", title="oracles vs what they estimate")
    ax_st.legend(fontsize=6, ncol=2)

    # loss: YellowFin, heavy ball re-tuned per target, floor at the fixed point
    t_hb = arr["t_hb"]
    _band(ax_l, t, arr["yf_loss"], "yellowfin", "YellowFin", every)
    shades = np.linspace(0.35, 1.0, len(arr["hb_curves"]))
    for curve, shade, row in zip(arr["hb_curves"], shades, arr["speed"], strict=True):
        ax_l.plot(t_hb, curve, color=style("heavy-ball")["color"], alpha=shade, lw=1.0,
                  label=f"heavy ball for target {row[0]:.2g}")  # fmt: skip
    ax_l.axhline(floor_fp, **style("prediction", label="floor at the oracle fixed point"))
    ax_l.axvline(float(arr["best_step"]), color="0.3", lw=0.8, ls=":", label="YellowFin's best")
    ax_l.set(xscale="log", yscale="log", xlabel="step t", ylabel="loss", title="NQM loss")
    ax_l.yaxis.set_minor_formatter(NullFormatter())
    ax_l.legend(fontsize=6, **_BELOW)

    # sweep: late mu vs the oracle fixed point and vs SingleStep at the true statistics
    sw = arr["sweep"]
    ok = sw[:, 6] > 0.5
    lim = [0.0, 1.0]
    ax_sw.plot(lim, lim, color="0.6", lw=0.8, label="equal")
    ax_sw.plot(sw[ok, 4], sw[ok, 3], **style("yellowfin", linestyle="none",
               label="vs oracle fixed point"))  # fmt: skip
    ax_sw.plot(sw[ok, 5], sw[ok, 3], **style("measured", marker="x",
               label="vs SingleStep, true statistics"))  # fmt: skip
    if (~ok).any():
        ax_sw.plot(sw[~ok, 4], sw[~ok, 3], "o", color="0.6", mfc="none", label="not settled")
    ax_sw.set(xlabel=r"predicted $\mu$", ylabel=r"late YellowFin $\mu$", xlim=lim, ylim=lim,
              title=r"sweep over $\kappa$, dimension, noise")  # fmt: skip
    ax_sw.legend(fontsize=6.5)

    # speed ladder: mean iterations to each target; a target YellowFin never reaches sits on top
    sp = arr["speed"]
    factor = float(record.config.get("speed_factor", 2.0))
    ax_sp.plot(sp[:, 0], sp[:, 2], **style("heavy-ball", label="heavy ball re-tuned per target"))
    ax_sp.plot(sp[:, 0], factor * sp[:, 2], **style("bound", label=f"{factor:g} x heavy ball"))
    reached = np.isfinite(sp[:, 1])
    ax_sp.plot(sp[reached, 0], sp[reached, 1], **style("yellowfin", linestyle="none",
               label="YellowFin"))  # fmt: skip
    if (~reached).any():
        ax_sp.plot(sp[~reached, 0], np.full((~reached).sum(), float(t[-1])), "^", ms=8,
                   color=style("yellowfin")["color"], mfc="none",
                   label="YellowFin: not reached in the run")  # fmt: skip
    ax_sp.set(xscale="log", yscale="log", xlabel="loss target", ylabel="iterations (mean)",
              title="iterations to a ladder of targets")  # fmt: skip
    ax_sp.invert_xaxis()
    ax_sp.xaxis.set_minor_formatter(NullFormatter())
    ax_sp.legend(fontsize=6.5)
    return fig
