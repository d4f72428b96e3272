"""The drawn data of a matplotlib figure in display coordinates (pixels), for the figure checks.

:func:`drawn_artists` turns each line, marker series, error-bar series, scatter, band, shaded span
and heat map of an axes into a :class:`Drawn`: its visible segments with their half width, its
marker centres with their size and fill, its filled regions, and the (colour, line style, marker)
key that a legend entry must match.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import (
    Collection,
    LineCollection,
    PathCollection,
    PolyCollection,
    QuadMesh,
)
from matplotlib.colors import to_rgba
from matplotlib.container import ErrorbarContainer
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.spines import Spine
from matplotlib.transforms import Bbox

_NO_MARKER = {None, "None", "none", "", " ", ","}
_NO_LINE = {"None", "none", "", " "}


@dataclass
class Drawn:
    """One drawn artist in display coordinates."""

    what: str  # a readable name for messages
    order: tuple[float, int]  # (zorder, position among the axes' children): drawing order
    segments: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, 2)))  # (n, 2, 2) px
    half_width: float = 0.0  # px
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # marker centres, px
    size: float = 0.0  # marker extent (diameter), px
    filled: bool = True
    shape: str = ""
    regions: list[Bbox] = field(default_factory=list)  # filled areas (heat maps)
    key: tuple[tuple[float, ...] | None, str, str] | None = None  # (rgb, linestyle, marker)
    label: str = ""
    alpha: float = 1.0
    needs_legend: bool = True


def rgb(color: object) -> tuple[float, ...] | None:
    try:
        rgba = to_rgba(color)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if rgba[3] == 0 else tuple(round(c, 3) for c in rgba[:3])


def neutral(rgb: tuple[float, ...] | None) -> bool:
    return rgb is not None and max(rgb) - min(rgb) < 0.05


def _linestyle(ls: object) -> str:
    if ls in _NO_LINE or ls is None:
        return "none"
    return {"solid": "-", "dashed": "--", "dotted": ":", "dashdot": "-."}.get(str(ls), str(ls))


def _px(fig: Figure, points: float) -> float:
    return float(points) * fig.dpi / 72.0


def finite_segments(xy: np.ndarray) -> np.ndarray:
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    ok = np.all(np.isfinite(xy), axis=1)
    both = ok[:-1] & ok[1:]
    return np.stack([xy[:-1][both], xy[1:][both]], axis=1) if len(xy) > 1 else np.zeros((0, 2, 2))


def clip_to(segments: np.ndarray, box: Bbox) -> np.ndarray:
    """The parts of segments inside ``box`` (Liang-Barsky), as segments."""
    if not len(segments):
        return segments
    p, q = segments[:, 0], segments[:, 1]
    d = q - p
    t0, t1 = np.zeros(len(p)), np.ones(len(p))
    keep = np.ones(len(p), dtype=bool)
    for axis, lo, hi in ((0, box.x0, box.x1), (1, box.y0, box.y1)):
        for num, den in ((p[:, axis] - lo, -d[:, axis]), (hi - p[:, axis], d[:, axis])):
            with np.errstate(divide="ignore", invalid="ignore"):
                r = num / den
            parallel = den == 0
            keep &= ~(parallel & (num < 0))
            t0 = np.where(~parallel & (den < 0), np.maximum(t0, r), t0)
            t1 = np.where(~parallel & (den > 0), np.minimum(t1, r), t1)
    keep &= t0 <= t1
    return np.stack([p + t0[:, None] * d, p + t1[:, None] * d], axis=1)[keep]


def grow(box: Bbox, pad: float) -> Bbox:
    return Bbox.from_extents(box.x0 - pad, box.y0 - pad, box.x1 + pad, box.y1 + pad)


def meets(box: Bbox, other: Bbox) -> bool:
    return box.x0 < other.x1 and other.x0 < box.x1 and box.y0 < other.y1 and other.y0 < box.y1


def _line(fig: Figure, line: Line2D, label: str, order: tuple[float, int]) -> Drawn:
    xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
    ls = _linestyle(line.get_linestyle())
    marker = line.get_marker()
    marker = "none" if marker in _NO_MARKER else str(marker)
    face = line.get_markerfacecolor()
    drawn = Drawn(
        what=f"line {label!r}" if label else "an unlabelled line",
        order=order,
        label=label,
        alpha=1.0 if line.get_alpha() is None else float(line.get_alpha()),
        key=(rgb(line.get_color()), ls, marker),
    )
    if ls != "none" and line.get_linewidth() > 0:
        drawn.segments = finite_segments(xy)
        drawn.half_width = _px(fig, line.get_linewidth()) / 2.0
    if marker != "none":
        drawn.points = xy[np.all(np.isfinite(xy), axis=1)]
        drawn.size = _px(fig, line.get_markersize())
        drawn.filled = rgb(face) is not None and line.get_fillstyle() != "none"
        drawn.shape = marker
    return drawn


def _collection(fig: Figure, coll: Artist, order: tuple[float, int]) -> Drawn | None:
    if not isinstance(coll, Collection):
        return None
    label = str(coll.get_label() or "")
    label = "" if label.startswith("_") else label
    if isinstance(coll, QuadMesh) or (isinstance(coll, ContourSet) and coll.filled):
        if isinstance(coll, QuadMesh):
            coords = coll.get_coordinates().reshape(-1, 2)
        else:
            coords = np.concatenate([p.vertices for p in coll.get_paths() if len(p.vertices)])
        xy = coll.get_transform().transform(coords)
        xy = xy[np.all(np.isfinite(xy), axis=1)]
        box = Bbox.from_extents(*xy.min(axis=0), *xy.max(axis=0))
        return Drawn("a heat map", order, regions=[box], needs_legend=False)
    if isinstance(coll, PathCollection):
        offsets = coll.get_offset_transform().transform(coll.get_offsets())
        sizes = coll.get_sizes()
        faces = coll.get_facecolors()
        edge = coll.get_edgecolors()
        color = faces[0] if len(faces) else (edge[0] if len(edge) else None)
        return Drawn(
            what=f"scatter {label!r}" if label else "an unlabelled scatter",
            order=order,
            points=offsets[np.all(np.isfinite(offsets), axis=1)],
            size=_px(fig, float(np.sqrt(sizes.max()))) if len(sizes) else 0.0,
            filled=len(faces) > 0 and float(np.max(faces[:, 3])) > 0,
            shape="scatter" + str(hash(coll.get_paths()[0].vertices.round(3).tobytes())),
            label=label,
            key=(rgb(color), "none", "o") if color is not None else None,
            needs_legend=coll.get_array() is None,  # colour-mapped: read off a colour bar
        )
    if isinstance(coll, LineCollection):
        segs = [coll.get_transform().transform(np.asarray(s)) for s in coll.get_segments()]
        seg = np.concatenate([finite_segments(s) for s in segs]) if segs else np.zeros((0, 2, 2))
        lw = coll.get_linewidths()
        return Drawn(
            what=f"lines {label!r}" if label else "unlabelled line segments",
            order=order,
            segments=seg,
            half_width=_px(fig, float(np.max(lw))) / 2.0 if len(lw) else 0.5,
            label=label,
            needs_legend=False,
        )
    if isinstance(coll, PolyCollection):  # fill_between: its outline
        segs = [
            finite_segments(coll.get_transform().transform(p.vertices)) for p in coll.get_paths()
        ]
        faces = coll.get_facecolors()
        return Drawn(
            what=f"band {label!r}" if label else "an unlabelled band",
            order=order,
            segments=np.concatenate(segs) if segs else np.zeros((0, 2, 2)),
            half_width=0.5,
            label=label,
            key=(rgb(faces[0]), "fill", "none") if len(faces) else None,
            needs_legend=False,
        )
    return None


def drawn_artists(fig: Figure, ax: Axes) -> list[Drawn]:
    """The data artists of ``ax`` in drawing order; an error bar's data line takes its label."""
    bars: dict[int, str] = {}  # id of an error-bar part -> label of its container
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            label = container.get_label() or ""
            label = "" if label.startswith("_") else label
            data_line, caps, bar_cols = container.lines
            if data_line is not None:
                bars[id(data_line)] = label
            for part in (*caps, *bar_cols):
                bars[id(part)] = "\0part"
    children = [c for c in ax.get_children() if c.get_visible()]
    order = sorted(range(len(children)), key=lambda i: (children[i].get_zorder(), i))
    out = []
    for i in order:
        art, key = children[i], (float(children[i].get_zorder()), i)
        if bars.get(id(art)) == "\0part":
            if isinstance(art, LineCollection):
                d = _collection(fig, art, key)
                if d is not None:
                    d.what = "error bars"
                    out.append(d)
            continue
        if isinstance(art, Line2D):
            label = bars.get(id(art), art.get_label() or "")
            label = "" if label.startswith("_") else label
            d = _line(fig, art, label, key)
            if len(d.segments) or len(d.points):
                out.append(d)
            elif label:  # an empty proxy carries a legend entry's look
                d.needs_legend = False
                d.what = "proxy"
                out.append(d)
        elif isinstance(art, AxesImage):
            out.append(
                Drawn("an image", key, regions=[art.get_window_extent()], needs_legend=False)
            )
        elif isinstance(art, Patch) and not isinstance(art, Spine) and art is not ax.patch:
            path = art.get_transform().transform_path(art.get_path())
            label = art.get_label() or ""
            label = "" if label.startswith("_") else label
            out.append(
                Drawn(
                    what=f"span {label!r}" if label else "an unlabelled patch",
                    order=key,
                    segments=finite_segments(path.vertices),
                    half_width=_px(fig, art.get_linewidth()) / 2.0,
                    label=label,
                    key=(rgb(art.get_facecolor()), "fill", "none"),
                    needs_legend=rgb(art.get_facecolor()) is not None,
                )
            )
        else:
            d = _collection(fig, art, key)
            if d is not None:
                out.append(d)
    return out
