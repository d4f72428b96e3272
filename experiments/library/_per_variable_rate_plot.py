"""Figure of experiment 12 (per-variable-rate): per-variable distances and fitted rates."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from experiments.framework import Record, figure, style


def _first(mask: np.ndarray) -> int | None:
    idx = np.nonzero(mask)[0]
    return int(idx[-1]) if idx.size else None


def plot(record: Record) -> Figure:
    """Left, middle: normalised distances of tracked variables over the late window against the
    predicted rate, for the last inside and the last outside run. Right: every run's fitted rates
    in units of the prediction's log-rate, with the tolerance band."""
    arr = record.arrays
    fig, axes = figure(ncols=3)
    if "rates" not in arr:
        axes[0].set_title("no usable run")
        return fig
    inside = np.asarray(arr["inside"], bool)
    c_var = style("sgdm")["color"]
    for ax, pick, name in (
        (axes[0], _first(inside), "inside"),
        (axes[1], _first(~inside), "outside"),
    ):
        if pick is None:
            ax.set_title(f"no {name} run")
            continue
        r = arr["shown"][pick]
        t = np.arange(r.shape[0])
        for j in range(r.shape[1]):
            ax.semilogy(t, r[:, j], color=c_var, lw=0.5, alpha=0.5)
        ax.plot([], [], color=c_var, lw=0.8, label="variables (measured)")
        rho, mu = arr["predicted_rate"][pick], arr["mu"][pick]
        ax.semilogy(t, rho**t, **style("prediction", label=f"predicted {rho:.5f}$^t$ (theory)"))
        if name == "outside":
            ax.semilogy(t, np.sqrt(mu) ** t, **style("bound", label=r"$\sqrt{\mu}^t$"))
        ax.set_ylim(1e-8, 1e2)
        ax.set_xlabel("step in the late window")
        ax.set_ylabel(r"$|w_{i,t} - w_i^*| / |w_{i,0} - w_i^*|$")
        ax.set_title(
            rf"{name}: $\mu$={mu:g}, $\alpha$={arr['alpha'][pick]:.3g}: "
            f"{arr['fraction_following_prediction'][pick]:.0%} follow"
        )
        ax.legend(fontsize=7, loc="lower left")
    ax = axes[2]
    colors = [style(m)["color"] for m in ("heavy-ball", "yellowfin", "momo", "adam", "sgdm")]
    for i in range(arr["rates"].shape[0]):
        lr = np.log(arr["rates"][i]) / np.log(arr["predicted_rate"][i])
        lr = lr[np.isfinite(lr)]
        kind = "inside" if inside[i] else "outside"
        ax.hist(
            np.clip(lr, 0.5, 1.5),
            bins=40,
            range=(0.5, 1.5),
            histtype="step",
            color=colors[i % len(colors)],
            label=rf"$\mu$={arr['mu'][i]:g}, $\alpha/\alpha_{{lo}}$="
            f"{arr['alpha'][i] / arr['alpha_lo'][i]:.2g} ({kind})",
        )
    ax.axvline(1.0, **style("prediction", label="predicted late rate (theory)"))
    tol = float(np.nanmax(arr["log_tolerance"] / -np.log(arr["predicted_rate"])))
    ax.axvspan(1 - tol, 1 + tol, color="0.5", alpha=0.15, label="largest tolerance")
    ax.set_xlabel(r"$\log \rho_i / \log \rho_{predicted}$")
    ax.set_ylabel("variables")
    ax.set_title("fitted per-variable late rates")
    ax.legend(fontsize=6)
    return fig
