"""The figure checks find each fault they name on a small figure, and pass its corrected version."""

from __future__ import annotations

import numpy as np
from _figure_checks import figure_problems

from experiments.style import figure, series_color, style


def _only(problems: list[str], word: str) -> list[str]:
    return [p for p in problems if word in p]


def test_a_clean_figure_has_no_problem() -> None:
    fig, ax = figure()
    x = np.linspace(0.0, 1.0, 50)
    ax.plot(x, x**2, **style("theory", label="theory"))
    ax.plot(x[::7], x[::7] ** 2, **style("measured", mfc="none"))
    ax.legend(loc="upper left")
    assert figure_problems(fig) == []


def test_a_legend_over_a_line_is_found_and_one_below_the_axes_is_not() -> None:
    for where, expected in ((None, 1), ({"loc": "upper center", "bbox_to_anchor": (0.5, -0.2)}, 0)):
        fig, ax = figure()
        ax.plot([0.0, 1.0], [1.0, 1.0], color="k", label="flat line at the top")
        ax.plot([0.0, 1.0], [0.0, 1.0], color="C1", label="rising")
        ax.legend(**(where or {"loc": "upper left"}))
        assert len(_only(figure_problems(fig), "covers line")) == expected


def test_a_legend_over_a_heat_map_or_a_shaded_span_is_found() -> None:
    fig, (a, b) = figure(ncols=2)
    a.pcolormesh(np.arange(4.0), np.arange(4.0), np.ones((3, 3)))
    a.plot([], [], color="w", label="edge")
    a.legend()
    b.axvspan(0.0, 1.25, color="0.8", label="interval")
    b.set_xlim(0.0, 2.5)
    b.legend(loc="center")  # across the span's right edge
    problems = figure_problems(fig)
    assert _only(problems, "covers a heat map") and _only(problems, "covers span 'interval'")


def test_a_reference_line_outside_every_legend_is_found() -> None:
    fig, ax = figure()
    ax.plot([0, 1], [0, 1], color=series_color(0), label="data")
    ax.axhline(0.5, color="0.3", ls=":")  # drawn, never named
    ax.legend(loc="upper left")
    assert _only(figure_problems(fig), "is in no legend")
    ax.axhline(0.25, color="0.3", ls="--", label="reference")
    ax.legend(loc="upper left")
    assert len(_only(figure_problems(fig), "is in no legend")) == 1  # the named one passes


def test_one_neutral_entry_stands_for_a_line_style_in_every_colour() -> None:
    fig, ax = figure()
    for i in range(3):
        ax.plot([0, 1], [i, i + 1], color=series_color(i), label=f"series {i}")
        ax.plot([0, 1], [i + 0.3, i + 0.8], color=series_color(i), ls="-.")
    ax.plot([], [], color="0.3", ls="-.", label="matched start")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    assert _only(figure_problems(fig), "no legend") == []
    fig, ax = figure()
    ax.plot([0, 1], [0, 1], color=series_color(0), label="series 0")
    ax.plot([0, 1], [0.3, 0.8], color=series_color(0), ls="-.")
    ax.plot([], [], color="0.3", ls="--", label="another style")  # not the dash-dot
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    assert _only(figure_problems(fig), "no legend")


def test_markers_at_one_place_hide_unless_sizes_or_shapes_differ() -> None:
    xs, ys = np.arange(5.0), np.arange(5.0) ** 2
    fig, ax = figure()
    ax.plot(xs, ys, "o", color=series_color(0), label="first")
    ax.plot(xs, ys, "o", color=series_color(1), label="second, on top")
    ax.legend(loc="upper left")
    assert _only(figure_problems(fig), "5 of 5 markers of line 'first'")
    fig, ax = figure()
    ax.plot(xs, ys, "o", ms=8, mfc="none", color=series_color(0), label="first, large hollow")
    ax.plot(xs, ys, "s", ms=3, color=series_color(1), label="second, small filled")
    ax.plot(xs, ys, "D", ms=8, mfc="none", color=series_color(2), label="third, other shape")
    ax.legend(loc="upper left")
    assert _only(figure_problems(fig), "hidden") == []


def test_a_line_under_an_equal_line_is_hidden_and_a_wider_one_is_not() -> None:
    t = np.linspace(0.0, 1.0, 100)
    for lw, hidden in ((1.0, True), (3.5, False)):
        fig, ax = figure()
        ax.plot(t, np.exp(-3 * t), color=series_color(0), lw=lw, label="bound")
        ax.plot(t, np.exp(-3 * t), color=series_color(1), lw=1.0, ls="-.", label="attains it")
        ax.legend(loc="upper right")
        assert bool(_only(figure_problems(fig), "is hidden under")) is hidden


def test_crowded_tick_labels_are_found() -> None:
    fig, ax = figure(width=2.0)
    ax.set_xticks(np.arange(12.0), [f"label {i}" for i in range(12)])
    assert _only(figure_problems(fig), "tick labels")


def test_a_legend_that_names_one_entry_twice_is_found() -> None:
    fig, ax = figure()
    for i in range(2):
        ax.plot([0, 1], [i, i + 1], **style("prediction", color=series_color(i)))
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    assert _only(figure_problems(fig), "'prediction' appears 2 times")
