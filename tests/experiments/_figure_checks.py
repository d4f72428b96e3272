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

import numpy as np
from _figure_artists import Drawn, clip_to, drawn_artists, grow, meets, neutral
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.transforms import Bbox

from experiments.style import readable_log_ticks


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
                if shown and meets(grow(box, -1.0), text.get_window_extent(renderer)):
                    yield f"{name} covers the text {text.get_text()!r} of {_title(ax)!r}"
            if _is_colorbar(ax):
                continue
            inner = Bbox.intersection(box, ax.bbox)
            if inner is None or inner.width <= 1 or inner.height <= 1:
                continue
            inner = grow(inner, -1.0)  # touching is not covering
            for d in drawn[ax]:
                if d.what == "proxy":
                    continue
                if any(meets(inner, r) for r in d.regions):
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
                    visible = clip_to(d.segments, ax.bbox)
                    if len(clip_to(visible, grow(inner, d.half_width))):
                        yield f"{name} covers {d.what} in {_title(ax)!r}"
    for legend in legends:
        texts = [t.get_text() for t in legend.get_texts()]
        for text in sorted({t for t in texts if texts.count(t) > 1}):
            yield f"legend entry {text!r} appears {texts.count(text)} times in one legend"
    for a, b in itertools.combinations(legends, 2):
        if meets(a.get_window_extent(renderer), b.get_window_extent(renderer)):
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
    neutral_styles = {(k[1], k[2]) for k in keys if neutral(k[0])}
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
        visible = clip_to(d.segments, ax.bbox)
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
            if not meets(grow(lo_box, 1.0), grow(hi_box, high.half_width + 1.0)):
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
                if meets(grow(a, -0.5), grow(b, -0.5)):
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
