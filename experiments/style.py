"""One plotting style for every figure: a colour per method, a figure factory, reproducible saving.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot state, Agg rendering), at
a fixed DPI, and saved as PNG and SVG without timestamps and with a fixed SVG id salt, so the same
record gives byte-identical figures.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from experiments.record import atomic_write_bytes

DPI = 120
PANEL_SIZE = (4.2, 3.3)  # inches per panel

# Colour-blind-safe qualitative colours (Paul Tol's "bright" and "vibrant" schemes, SRON technical
# note SRON/EPS/TN/09-002): one hue per method, every one readable on white (no pale yellow), and
# the two YellowFin variants far apart (orange and indigo, not orange and vermilion).
_BLUE, _CYAN, _TEAL, _ORANGE = "#0077BB", "#33BBEE", "#009988", "#EE7733"
_INDIGO, _MAGENTA, _OLIVE, _RED = "#332288", "#EE3377", "#999933", "#CC3311"
_GREY, _BLACK = "#555555", "#000000"
PALETTE = (_BLUE, _ORANGE, _TEAL, _MAGENTA, _INDIGO, _CYAN, _OLIVE, _RED, _GREY)
"""Colours for series that are not methods (a parameter sweep's curves), in order of use."""

STYLE: dict[str, dict[str, Any]] = {
    "sgd": {"color": _GREY, "linestyle": "-", "marker": "o", "label": "SGD"},
    "sgdm": {"color": _CYAN, "linestyle": "-", "marker": "s", "label": "momentum SGD"},
    "heavy-ball": {"color": _BLUE, "linestyle": "-", "marker": "s", "label": "heavy ball"},
    "adam": {"color": _TEAL, "linestyle": "-", "marker": "^", "label": "Adam"},
    "yellowfin": {"color": _ORANGE, "linestyle": "-", "marker": "D", "label": "YellowFin"},
    "yellowfin-closed": {
        "color": _INDIGO,
        "linestyle": "-",
        "marker": "v",
        "label": "YellowFin (closed loop)",
    },
    "momo": {"color": _MAGENTA, "linestyle": "-", "marker": "P", "label": "MoMo"},
    "momo-adam": {"color": _OLIVE, "linestyle": "-", "marker": "X", "label": "MoMo-Adam"},
    "theory": {"color": _BLACK, "linestyle": "--", "marker": None, "label": "theory"},
    "prediction": {"color": _BLACK, "linestyle": "--", "marker": None, "label": "prediction"},
    "bound": {"color": _BLACK, "linestyle": ":", "marker": None, "label": "bound"},
    "measured": {"color": _RED, "linestyle": "none", "marker": "o", "label": "measured"},
}

RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.cmap": "viridis",
    "svg.hashsalt": "momentum-lab",
    "svg.fonttype": "path",
    "savefig.dpi": DPI,
}
matplotlib.rcParams.update(RC)  # text added after figure() follows the house style too


def style(method: str, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``Axes.plot`` for ``method`` (a key of :data:`STYLE`).

    Example:
        >>> ax.plot(t, loss, **style("yellowfin"))  # doctest: +SKIP

    Raises:
        ValueError: for a method that has no style.
    """
    if method not in STYLE:
        raise ValueError(f"method must be one of {', '.join(STYLE)} (got {method!r})")
    kwargs = {k: v for k, v in STYLE[method].items() if v is not None}
    kwargs.update(overrides)
    return kwargs


def series_color(i: int) -> str:
    """Colour of the ``i``-th series that is not a method (a sweep over mu, kappa, M, ...).

    The colours of :data:`PALETTE` in order, repeated past its end; method colours
    (:data:`STYLE`) stay reserved for methods, so a mu sweep never reads as "YellowFin vs MoMo".

    Example:
        >>> series_color(0) == PALETTE[0]
        True
    """
    if not isinstance(i, (int, np.integer)) or i < 0:
        raise ValueError(f"i must be an integer >= 0 (got {i!r})")
    return PALETTE[int(i) % len(PALETTE)]


def moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of a noisy trace that skips non-finite samples.

    ``out_t = sum_{|s - t| < width/2, x_s finite} x_s / #{finite x_s in the window}`` (NaN where a
    window holds no finite sample), the same length as ``x``.

    Example:
        >>> moving_average(np.array([1.0, np.nan, 3.0, 5.0]), 2).tolist()
        [1.0, 1.0, 3.0, 4.0]
    """
    if width < 1:
        raise ValueError(f"width must be an integer >= 1 (got {width!r})")
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x)
    kernel = np.ones(width)
    num = np.convolve(np.where(ok, x, 0.0), kernel, "same")
    den = np.convolve(ok.astype(float), kernel, "same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def figure(
    ncols: int = 1, nrows: int = 1, *, width: float | None = None, height: float | None = None
) -> tuple[Figure, Any]:
    """A figure with ``nrows x ncols`` panels in the house style.

    Returns:
        ``(fig, axes)``: ``axes`` is a single Axes for one panel, else a NumPy array of shape
        ``(nrows, ncols)`` squeezed like :func:`matplotlib.pyplot.subplots`.

    Raises:
        ValueError: when ``ncols`` or ``nrows`` is not in [1, 8].
    """
    for label, n in (("ncols", ncols), ("nrows", nrows)):
        if not (isinstance(n, (int, np.integer)) and 1 <= n <= 8):
            raise ValueError(f"{label} must be an integer in [1, 8] (got {n!r})")
    size = (width or PANEL_SIZE[0] * ncols, height or PANEL_SIZE[1] * nrows)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=size, dpi=DPI, layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=True)
    return fig, axes


def _mantissa(value: float) -> float:
    """``m`` in ``value = m 10^e`` with ``1 <= m < 10`` (rounded: tick values are exact)."""
    return round(value / 10.0 ** np.floor(np.log10(value) + 1e-9), 6)


def _plain_on(mantissas: tuple[int, ...]):
    """A formatter writing ``value`` plainly when its mantissa is in ``mantissas``, else ``""``."""
    from matplotlib.ticker import FuncFormatter

    def fmt(value: float, _pos: int) -> str:
        return f"{value:g}" if value > 0 and _mantissa(value) in mantissas else ""

    return FuncFormatter(fmt)


def readable_log_ticks(fig: Figure, max_decades: float = 1.5) -> None:
    """Plain tick labels (``2``, ``3``, ``4``) on log axes that span less than ``max_decades``.

    Matplotlib labels the minor ticks of a short log axis in scientific form (``4x10^0``), which
    reads badly; a short axis gets plain numbers instead. Longer axes keep powers of ten. So that
    the labels do not run into each other, fewer are written as the axis grows: every tick below
    half a decade, the mantissas 1, 2, 3, 5 below one decade, and 1, 2, 5 up to ``max_decades``.
    """
    for ax in fig.axes:
        for axis, scale, limits in (
            (ax.yaxis, ax.get_yscale(), ax.get_ylim()),
            (ax.xaxis, ax.get_xscale(), ax.get_xlim()),
        ):
            lo, hi = sorted(limits)
            if scale != "log" or not lo > 0:
                continue
            span = np.log10(hi / lo)
            if span >= max_decades:
                continue
            if span < 0.5:
                mantissas: tuple[int, ...] = tuple(range(1, 10))
            elif span < 1.0:
                mantissas = (1, 2, 3, 5)
            else:
                mantissas = (1, 2, 5)
            axis.set_major_formatter(_plain_on(mantissas))
            axis.set_minor_formatter(_plain_on(mantissas))


def render(fig: Figure, fmt: str) -> bytes:
    """The figure encoded as ``"png"`` or ``"svg"`` bytes, reproducibly (no timestamps).

    Short log axes get plain tick labels first (:func:`readable_log_ticks`).
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"fmt must be 'png' or 'svg' (got {fmt!r})")
    readable_log_ticks(fig)
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    buf = io.BytesIO()
    with matplotlib.rc_context(RC):
        fig.draw_without_rendering()  # settle the constrained layout so every save is identical
        fig.savefig(buf, format=fmt, dpi=DPI, metadata=metadata)
    return buf.getvalue()


def save_figure(fig: Figure, directory: str | Path, stem: str = "figure") -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.svg`` atomically into ``directory``; return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in ("png", "svg"):
        path = directory / f"{stem}.{fmt}"
        atomic_write_bytes(path, render(fig, fmt))
        paths.append(path)
    return paths
