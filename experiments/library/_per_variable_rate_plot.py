"""Figure of experiment 12 (per-variable-rate).

Top left: fraction of tracked variables following ``sqrt(mu)`` against ``alpha / alpha_lo`` (the
robust interval starts at 1), per network and momentum, full-batch runs filled (inside) or hollow
(outside), minibatch runs as crosses. Top right: measured median late rate against the predicted
one, as ``1 - rate`` on log axes, with the identity. Bottom left: normalised distances of tracked
variables of one inside and one outside run against the predicted rate. Bottom right: histogram of
the fitted rates in units of the predicted log-rate, with the largest tolerance band.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from experiments.framework import Record, figure, style
from experiments.style import PALETTE

NETS = (("mlp", "o", "MLP"), ("lstm", "^", "LSTM"))


def _legend(ax) -> None:
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _mu_colors(arr: dict) -> dict[float, str]:
    mus = sorted({float(m) for n, _, _ in NETS for m in arr.get(f"{n}_mu", [])})
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(mus)}


def _fractions(ax, arr: dict, colors: dict[float, str]) -> None:
    for net, marker, label in NETS:
        if f"{net}_mu" not in arr:
            continue
        mu, x = arr[f"{net}_mu"], arr[f"{net}_alpha"] / arr[f"{net}_alpha_lo"]
        inside = np.asarray(arr[f"{net}_inside"], bool)
        frac = arr[f"{net}_fraction_following_sqrt_mu"]
        for m in np.unique(mu):
            sel = mu == m
            for flag, face, where in (
                (True, colors[float(m)], "inside"),
                (False, "none", "outside"),
            ):
                pick = sel & (inside == flag)
                if pick.any():
                    ax.plot(
                        x[pick],
                        frac[pick],
                        ls="none",
                        marker=marker,
                        ms=6,
                        mec=colors[float(m)],
                        mfc=face,
                        label=rf"{label} $\mu$={m:g}, {where} (full batch)",
                    )
        if f"{net}_noisy_mu" in arr:
            nmu = arr[f"{net}_noisy_mu"]
            lo = {float(m): float(a) for m, a in zip(mu, arr[f"{net}_alpha_lo"], strict=True)}
            nx = np.array(
                [a / lo[float(m)] for a, m in zip(arr[f"{net}_noisy_alpha"], nmu, strict=True)]
            )
            ax.plot(
                nx,
                arr[f"{net}_noisy_fraction_following_sqrt_mu"],
                ls="none",
                marker="x",
                color="0.3",
                ms=6,
                label=f"{label} minibatch (noisy case)",
            )
    ax.axvline(
        1.0,
        **style(
            "bound",
            label=r"robust interval starts ($\alpha h_{min}$ = "
            r"$(1-\sqrt{\mu})^2$)",
        ),
    )
    ax.set_xscale("log")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel(r"$\alpha / \alpha_{lo}$")
    ax.set_ylabel(r"fraction following $\sqrt{\mu}$")
    ax.set_title(r"variables at $\sqrt{\mu}$ vs $\alpha$ and $\mu$")
    _legend(ax)


def _medians(ax, arr: dict, colors: dict[float, str]) -> None:
    lo_hi = []
    for net, marker, label in NETS:
        if f"{net}_mu" not in arr:
            continue
        pred, med = 1 - arr[f"{net}_predicted_rate"], 1 - arr[f"{net}_median_rate"]
        inside = np.asarray(arr[f"{net}_inside"], bool)
        for i, m in enumerate(arr[f"{net}_mu"]):
            ax.plot(
                pred[i],
                med[i],
                ls="none",
                marker=marker,
                ms=6,
                mec=colors[float(m)],
                mfc=colors[float(m)] if inside[i] else "none",
            )
        ax.plot([], [], ls="none", marker=marker, color="0.3", label=f"{label} (filled: inside)")
        lo_hi += [pred.min(), pred.max()]
    if lo_hi:
        lo, hi = min(lo_hi) / 1.5, max(lo_hi) * 1.5
        pad = max(1.0, 10**1.6 / (hi / lo)) ** 0.5  # >= 1.6 decades: keeps these tick labels
        grid = np.geomspace(lo / pad, hi * pad, 10)
        ax.loglog(grid, grid, **style("prediction", label="measured = predicted (theory)"))
        ax.set_xlim(grid[0], grid[-1])
        ax.set_ylim(grid[0], grid[-1])
    for m, c in colors.items():
        ax.plot([], [], color=c, lw=3, label=rf"$\mu$={m:g}")
    for axis in (ax.xaxis, ax.yaxis):  # plain labels at 1, 2, 5 x 10^k; no minor labels
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(r"predicted $1 - \max_h \rho(\alpha, \mu, h)$")
    ax.set_ylabel(r"measured $1 -$ median $\rho_i$")
    ax.set_title("median late rate vs prediction")
    _legend(ax)


def _distances(ax, arr: dict) -> None:
    net = "lstm" if "lstm_shown" in arr else "mlp"
    if f"{net}_shown" not in arr:
        ax.set_title("no usable run")
        return
    inside = np.asarray(arr[f"{net}_inside"], bool)
    c_var = style("sgdm")["color"]
    for pick, ls, name in (
        (np.nonzero(inside)[0], "-", "inside"),
        (np.nonzero(~inside)[0], ":", "outside"),
    ):
        if not pick.size:
            continue
        i = int(pick[-1])
        r = arr[f"{net}_shown"][i]
        t = np.arange(r.shape[0])
        for j in range(r.shape[1]):
            ax.semilogy(
                t,
                r[:, j],
                color=c_var if name == "inside" else PALETTE[1],
                lw=0.4,
                alpha=0.5,
                ls=ls,
            )
        ax.plot(
            [],
            [],
            color=c_var if name == "inside" else PALETTE[1],
            lw=0.8,
            ls=ls,
            label=rf"{name} variables, $\mu$={arr[f'{net}_mu'][i]:g} (measured)",
        )
        rho = arr[f"{net}_predicted_rate"][i]
        ax.semilogy(
            t,
            rho**t,
            **style(
                "prediction" if name == "inside" else "bound",
                label=f"{name}: predicted {rho:.5f}$^t$ (theory)",
            ),
        )
    ax.set_ylim(1e-8, 1e2)
    ax.set_xlabel("step in the late window")
    ax.set_ylabel(r"$|w_{i,t} - w_i^*| / |w_{i,0} - w_i^*|$")
    ax.set_title(f"{net.upper()}: tracked variables")
    _legend(ax)


def _histogram(ax, arr: dict) -> None:
    k, tols = 0, []
    for net, _, label in NETS:
        if f"{net}_rates" not in arr:
            continue
        for i in range(arr[f"{net}_rates"].shape[0]):
            pred = arr[f"{net}_predicted_rate"][i]
            lr = np.log(arr[f"{net}_rates"][i]) / np.log(pred)
            lr = lr[np.isfinite(lr)]
            where = "in" if arr[f"{net}_inside"][i] else "out"
            ax.hist(
                np.clip(lr, 0.5, 1.5),
                bins=40,
                range=(0.5, 1.5),
                histtype="step",
                color=PALETTE[k % len(PALETTE)],
                label=rf"{label} $\mu$={arr[f'{net}_mu'][i]:g} {where}, "
                rf"$\alpha/\alpha_{{lo}}$={arr[f'{net}_alpha'][i] / arr[f'{net}_alpha_lo'][i]:.2g}",
            )
            tols.append(arr[f"{net}_log_tolerance"][i] / -np.log(pred))
            k += 1
    ax.axvline(1.0, **style("prediction", label="predicted late rate (theory)"))
    if tols:
        tol = float(np.nanmax(tols))
        ax.axvspan(1 - tol, 1 + tol, color="0.5", alpha=0.15, label="largest tolerance")
    ax.set_xlabel(r"$\log \rho_i / \log \rho_{predicted}$")
    ax.set_ylabel("variables")
    ax.set_title("fitted per-variable late rates")
    _legend(ax)


def plot(record: Record) -> Figure:
    """The four panels of the module docstring."""
    arr = record.arrays
    fig, axes = figure(ncols=2, nrows=2, width=13.0, height=7.5)
    colors = _mu_colors(arr)
    _fractions(axes[0, 0], arr, colors)
    _medians(axes[0, 1], arr, colors)
    _distances(axes[1, 0], arr)
    _histogram(axes[1, 1], arr)
    return fig
