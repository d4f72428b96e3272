"""Figure of experiment 13 (momo-robustness): final loss against the learning rate, with bands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from experiments.framework import figure, style


def plot_bands(
    arrays: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str]],
    factor: float,
    cap_inactive: Mapping[str, float | None] | None = None,
) -> Figure:
    """One panel per pair: the seed-median final training loss of each method against the
    learning rate (thin lines: each seed), each seed's good band as a horizontal segment at its
    threshold ``factor x best`` (a triangle marks an open end), and the learning rate from which a
    capped method's cap never binds (dotted)."""
    fig, axes = figure(ncols=len(pairs), height=4.6)
    axes = np.atleast_1d(axes)
    cap_inactive = cap_inactive or {}
    for ax, pair in zip(axes, pairs, strict=True):
        for k, name in enumerate(pair):
            key = name.replace("-", "_")
            lr, loss = arrays[f"{key}_lr"], arrays[f"{key}_loss"]
            band, opened = arrays[f"{key}_band"], arrays[f"{key}_open"]
            st = style(name)
            for row in loss:
                ax.loglog(lr, row, color=st["color"], lw=0.5, alpha=0.35)
            with np.errstate(all="ignore"):
                med = np.nanmedian(np.where(np.isfinite(loss), loss, np.nan), axis=0)
            # Both methods can reach the same loss at one learning rate: the first gets larger
            # hollow markers, the second smaller filled ones drawn on top, so neither hides.
            marks = {"ms": 6, "mfc": "none"} if k == 0 else {"ms": 3}
            ax.loglog(lr, med, **style(name, lw=1.2, **marks, label=f"{st['label']} (seed median)"))
            for row, (a, b), (ob, oa) in zip(loss, band, opened, strict=True):
                y = factor * np.nanmin(row)
                ax.plot([lr[a], lr[b]], [y, y], color=st["color"], lw=2.0, alpha=0.6)
                for end, flag, marker in ((lr[a], ob, "<"), (lr[b], oa, ">")):
                    if flag:
                        ax.plot([end], [y], color=st["color"], marker=marker, ls="none", ms=6)
            where = cap_inactive.get(name)
            if where is not None:
                ax.axvline(where, color=st["color"], lw=0.9, ls=":")
                ax.plot([], [], color=st["color"], lw=0.9, ls=":",
                        label=f"{st['label']}: cap never binds above")  # fmt: skip
        ax.plot([], [], color="0.4", lw=0.5, alpha=0.5, label="one seed")
        ax.plot(
            [], [], color="0.4", lw=2.0, alpha=0.6, label=f"good band (loss <= {factor:g} x best)"
        )
        ax.plot([], [], color="0.4", marker=">", ls="none", label="band open (censored)")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("final training loss")
        ax.set_title(f"{style(pair[0])['label']} vs {style(pair[1])['label']}")
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    return fig
