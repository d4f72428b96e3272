"""Checks of a rendered figure: legends off the data, every drawn line in a legend, no hidden
markers or lines, readable tick labels.

:func:`figure_problems` lays the figure out as :func:`experiments.style.render` does (constrained
layout, plain labels on short log axes), then works in display coordinates (pixels):

- *legend off the data*: the box of every legend, clipped to each axes, meets no visible line
  segment (widened by half its line width), no marker (its extent) and no heat map; it meets no tick
  label, axis label or title, no other legend, it lies inside the figure and names no entry twice;
- *every drawn line in a legend*: each visible line, marker series, error-bar series, scatter and
  shaded span is named in a legend, or a legend entry draws it in the same colour, line style and
  marker, or a neutral (grey or black) entry has its line style and marker while another entry
  carries its colour (one "dash-dot: matched" entry for all colours);
- *markers not hidden*: a marker is hidden when one drawn later covers it: a filled one whose extent
  contains it (within 1 px), or a hollow one of the same shape, size (within 2 px) and place
  (within 1.5 px); markers of one series are not compared with each other, nor clouds of more than
  ``cloud`` points;
- *lines not hidden*: a line is hidden when at least 90 % of its visible length lies within the
  half width (+0.5 px) of one line drawn later and it is not more than 2 px wider than that line
  (a wider line under a thin one stays visible as a halo); faint lines (alpha < 0.5) are exempt,
  and so is what lies under them;
- *readable ticks*: the tick labels of one axis do not overlap each other.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
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
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.spines import Spine
from matplotlib.transforms import Bbox

from experiments.style import readable_log_ticks

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


def _rgb(color: object) -> tuple[float, ...] | None:
    try:
        rgba = to_rgba(color)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if rgba[3] == 0 else tuple(round(c, 3) for c in rgba[:3])


def _neutral(rgb: tuple[float, ...] | None) -> bool:
    return rgb is not None and max(rgb) - min(rgb) < 0.05


def _linestyle(ls: object) -> str:
    if ls in _NO_LINE or ls is None:
        return "none"
    return {"solid": "-", "dashed": "--", "dotted": ":", "dashdot": "-."}.get(str(ls), str(ls))


def _px(fig: Figure, points: float) -> float:
    return float(points) * fig.dpi / 72.0


def _finite_segments(xy: np.ndarray) -> np.ndarray:
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    ok = np.all(np.isfinite(xy), axis=1)
    both = ok[:-1] & ok[1:]
    return np.stack([xy[:-1][both], xy[1:][both]], axis=1) if len(xy) > 1 else np.zeros((0, 2, 2))


def _clip_to(segments: np.ndarray, box: Bbox) -> np.ndarray:
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


def _grow(box: Bbox, pad: float) -> Bbox:
    return Bbox.from_extents(box.x0 - pad, box.y0 - pad, box.x1 + pad, box.y1 + pad)


def _meets(box: Bbox, other: Bbox) -> bool:
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
        key=(_rgb(line.get_color()), ls, marker),
    )
    if ls != "none" and line.get_linewidth() > 0:
        drawn.segments = _finite_segments(xy)
        drawn.half_width = _px(fig, line.get_linewidth()) / 2.0
    if marker != "none":
        drawn.points = xy[np.all(np.isfinite(xy), axis=1)]
        drawn.size = _px(fig, line.get_markersize())
        drawn.filled = _rgb(face) is not None and line.get_fillstyle() != "none"
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
            key=(_rgb(color), "none", "o") if color is not None else None,
            needs_legend=coll.get_array() is None,  # colour-mapped: read off a colour bar
        )
    if isinstance(coll, LineCollection):
        segs = [coll.get_transform().transform(np.asarray(s)) for s in coll.get_segments()]
        seg = np.concatenate([_finite_segments(s) for s in segs]) if segs else np.zeros((0, 2, 2))
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
            _finite_segments(coll.get_transform().transform(p.vertices)) for p in coll.get_paths()
        ]
        faces = coll.get_facecolors()
        return Drawn(
            what=f"band {label!r}" if label else "an unlabelled band",
            order=order,
            segments=np.concatenate(segs) if segs else np.zeros((0, 2, 2)),
            half_width=0.5,
            label=label,
            key=(_rgb(faces[0]), "fill", "none") if len(faces) else None,
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
                    segments=_finite_segments(path.vertices),
                    half_width=_px(fig, art.get_linewidth()) / 2.0,
                    label=label,
                    key=(_rgb(art.get_facecolor()), "fill", "none"),
                    needs_legend=_rgb(art.get_facecolor()) is not None,
                )
            )
        else:
            d = _collection(fig, art, key)
            if d is not None:
                out.append(d)
    return out


def _legends(fig: Figure) -> list[Legend]:
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return [*legends, *fig.legends]


def _title(ax: Axes) -> str:
    return ax.get_title() or ax.get_title("left") or ax.get_label() or "untitled axes"


def _is_colorbar(ax: Axes) -> bool:
    return hasattr(ax, "_colorbar")


def _legend_overlaps(
    fig: Figure, renderer, legends: list[Legend], drawn: dict[Axes, list[Drawn]]
) -> Iterator[str]:
    fig_box = fig.bbox
    for legend in legends:
        box = legend.get_window_extent(renderer)
        name = f"legend ({', '.join(t.get_text() for t in legend.get_texts())[:60]})"
        if not (
            box.x0 >= fig_box.x0 - 1
            and box.y0 >= fig_box.y0 - 1
            and box.x1 <= fig_box.x1 + 1
            and box.y1 <= fig_box.y1 + 1
        ):
            yield f"{name} is cut off by the figure's edge"
        for ax in fig.axes:
            texts = [ax.title, ax.xaxis.label, ax.yaxis.label]
            texts += [*ax.get_xticklabels(which="both"), *ax.get_yticklabels(which="both")]
            for text in texts:
                shown = text.get_visible() and text.get_text()
                if shown and _meets(_grow(box, -1.0), text.get_window_extent(renderer)):
                    yield f"{name} covers the text {text.get_text()!r} of {_title(ax)!r}"
            if _is_colorbar(ax):
                continue
            inner = Bbox.intersection(box, ax.bbox)
            if inner is None or inner.width <= 1 or inner.height <= 1:
                continue
            inner = _grow(inner, -1.0)  # touching is not covering
            for d in drawn[ax]:
                if d.what == "proxy":
                    continue
                if any(_meets(inner, r) for r in d.regions):
                    yield f"{name} covers {d.what} in {_title(ax)!r}"
                    continue
                if len(d.points):
                    r = d.size / 2.0
                    p = d.points
                    hit = (
                        (p[:, 0] > inner.x0 - r)
                        & (p[:, 0] < inner.x1 + r)
                        & (p[:, 1] > inner.y0 - r)
                        & (p[:, 1] < inner.y1 + r)
                    )
                    if hit.any():
                        yield f"{name} covers markers of {d.what} in {_title(ax)!r}"
                        continue
                if len(d.segments):
                    visible = _clip_to(d.segments, ax.bbox)
                    if len(_clip_to(visible, _grow(inner, d.half_width))):
                        yield f"{name} covers {d.what} in {_title(ax)!r}"
    for legend in legends:
        texts = [t.get_text() for t in legend.get_texts()]
        for text in sorted({t for t in texts if texts.count(t) > 1}):
            yield f"legend entry {text!r} appears {texts.count(text)} times in one legend"
    for a, b in itertools.combinations(legends, 2):
        if _meets(a.get_window_extent(renderer), b.get_window_extent(renderer)):
            yield "two legends overlap"


def _represented(
    fig: Figure, legends: list[Legend], drawn: dict[Axes, list[Drawn]]
) -> Iterator[str]:
    names = {t.get_text() for legend in legends for t in legend.get_texts()}
    keys = set()
    for ax in fig.axes:
        for d in drawn[ax]:
            if d.label in names and d.key is not None:
                keys.add(d.key)
    colours = {k[0] for k in keys}
    neutral_styles = {(k[1], k[2]) for k in keys if _neutral(k[0])}
    for ax in fig.axes:
        if _is_colorbar(ax):
            continue
        for d in drawn[ax]:
            if not d.needs_legend or d.label in names:
                continue
            if d.key is None:
                yield f"{d.what} in {_title(ax)!r} is in no legend"
                continue
            rgb, ls, marker = d.key
            if d.key in keys or ((ls, marker) in neutral_styles and rgb in colours):
                continue
            yield (
                f"{d.what} in {_title(ax)!r} (colour {rgb}, line {ls!r}, marker {marker!r}) is in"
                " no legend"
            )


def _hidden_markers(ax: Axes, drawn: list[Drawn], cloud: int) -> Iterator[str]:
    series = [d for d in drawn if len(d.points) and len(d.points) <= cloud and d.alpha >= 0.5]
    for i, low in enumerate(series):
        for high in series[i + 1 :]:
            if high.alpha < 0.5:
                continue
            dist = np.linalg.norm(low.points[:, None, :] - high.points[None, :, :], axis=-1)
            if high.filled:
                covered = dist + low.size / 2.0 <= high.size / 2.0 + 1.0
            else:
                same = high.shape == low.shape and abs(high.size - low.size) <= 2.0
                covered = (dist <= 1.5) & same
            n = int(np.any(covered, axis=1).sum())
            if n:
                yield (
                    f"{n} of {len(low.points)} markers of {low.what} in {_title(ax)!r} are hidden "
                    f"under {high.what}"
                )


def _samples(segments: np.ndarray, step: float = 2.0) -> np.ndarray:
    pts = []
    for p, q in segments:
        n = max(1, int(np.ceil(np.linalg.norm(q - p) / step)))
        pts.append(p + np.linspace(0.0, 1.0, n, endpoint=False)[:, None] * (q - p))
    return np.concatenate(pts) if pts else np.zeros((0, 2))


def _distance_to(points: np.ndarray, segments: np.ndarray) -> np.ndarray:
    best = np.full(len(points), np.inf)
    for chunk in np.array_split(segments, max(1, len(segments) // 512)):
        p, d = chunk[:, 0], chunk[:, 1] - chunk[:, 0]
        rel = points[:, None, :] - p[None, :, :]
        dd = np.einsum("sk,sk->s", d, d)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.clip(np.einsum("nsk,sk->ns", rel, d) / dd, 0.0, 1.0)
        t = np.where(dd > 0, t, 0.0)
        near = rel - t[..., None] * d[None, :, :]
        best = np.minimum(best, np.sqrt(np.einsum("nsk,nsk->ns", near, near)).min(axis=1))
    return best


def _hidden_lines(ax: Axes, drawn: list[Drawn]) -> Iterator[str]:
    lines = []
    for d in drawn:
        if d.key is None or d.key[1] in ("none", "fill") or d.what == "error bars":
            continue
        visible = _clip_to(d.segments, ax.bbox)
        if len(visible):
            lines.append((d, visible))
    for i, (low, seg_low) in enumerate(lines):
        if low.alpha < 0.5:
            continue
        pts = _samples(seg_low)
        if len(pts) < 5:
            continue
        pts = pts[:: max(1, len(pts) // 500)]  # 500 evenly spread samples decide a 90 % share
        lo_box = Bbox.from_extents(*pts.min(axis=0), *pts.max(axis=0))
        for high, seg_high in lines[i + 1 :]:
            if low.half_width > high.half_width + 1.0 or high.alpha < 0.5:
                continue  # a halo under a thinner line shows, and so does a line under a pale one
            hi_pts = seg_high.reshape(-1, 2)
            hi_box = Bbox.from_extents(*hi_pts.min(axis=0), *hi_pts.max(axis=0))
            if not _meets(_grow(lo_box, 1.0), _grow(hi_box, high.half_width + 1.0)):
                continue
            near = _distance_to(pts, seg_high) <= high.half_width + 0.5
            if near.mean() >= 0.9:
                yield f"{low.what} in {_title(ax)!r} is hidden under {high.what}"
                break


def _crowded_ticks(fig: Figure, renderer) -> Iterator[str]:
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            boxes = [
                (t.get_text(), t.get_window_extent(renderer))
                for t in axis.get_ticklabels(which="both")
                if t.get_visible() and t.get_text()
            ]
            lo, hi = (ax.bbox.x0, ax.bbox.x1) if name == "x" else (ax.bbox.y0, ax.bbox.y1)
            boxes = [
                (s, b)
                for s, b in boxes
                if lo - 1 <= (b.x0 + b.x1 if name == "x" else b.y0 + b.y1) / 2 <= hi + 1
            ]
            for (s, a), (u, b) in itertools.combinations(boxes, 2):
                if _meets(_grow(a, -0.5), _grow(b, -0.5)):
                    yield f"{name} tick labels {s!r} and {u!r} of {_title(ax)!r} overlap"
                    break


def figure_problems(fig: Figure, *, cloud: int = 200) -> list[str]:
    """Every problem found in ``fig``, as one readable line each (empty: the figure passes)."""
    readable_log_ticks(fig)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    legends = _legends(fig)
    drawn = {ax: drawn_artists(fig, ax) for ax in fig.axes}
    problems = [
        *_legend_overlaps(fig, renderer, legends, drawn),
        *_represented(fig, legends, drawn),
    ]
    for ax in fig.axes:
        if _is_colorbar(ax):
            continue
        problems += [*_hidden_markers(ax, drawn[ax], cloud), *_hidden_lines(ax, drawn[ax])]
    problems += list(_crowded_ticks(fig, renderer))
    return list(dict.fromkeys(problems))


def assert_figure_reads_well(fig: Figure, *, allow: Iterable[str] = ()) -> None:
    """Fail with every problem of :func:`figure_problems` not containing one of ``allow``."""
    allow = tuple(allow)
    problems = [p for p in figure_problems(fig) if not any(a in p for a in allow)]
    assert not problems, "\n".join(problems)
