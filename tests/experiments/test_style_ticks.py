"""Short log axes label fewer mantissas as they grow, so that their labels never run together;
non-method series take the palette in order."""

from __future__ import annotations

import pytest
from _figure_checks import figure_problems

from experiments.style import PALETTE, STYLE, figure, readable_log_ticks, series_color


def _labels(ax) -> list[str]:
    fig = ax.figure
    readable_log_ticks(fig)
    fig.draw_without_rendering()
    lo, hi = ax.get_xlim()
    ticks = [*ax.xaxis.get_major_ticks(), *ax.xaxis.get_minor_ticks()]
    return [t.label1.get_text() for t in ticks if t.label1.get_text() and lo <= t.get_loc() <= hi]


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (2.0, 4.5, {"2", "3", "4"}),  # under half a decade: every tick
        (1.5, 9.0, {"2", "3", "5"}),  # under a decade: 1, 2, 3, 5
        (0.07, 1.8, {"0.1", "0.2", "0.5", "1"}),  # up to 1.5 decades: 1, 2, 5
    ],
)
def test_short_log_axes_label_fewer_mantissas_as_they_grow(lo, hi, expected) -> None:
    fig, ax = figure()
    ax.semilogx([lo, hi], [0.0, 1.0], color="k")
    ax.set_xlim(lo, hi)
    labels = set(_labels(ax))
    assert labels == expected, labels
    assert not [p for p in figure_problems(fig) if "tick labels" in p]


def test_the_noise_floor_axis_no_longer_crowds() -> None:
    # 0.064 to 2.1 labelled at every mantissa wrote 0.07 0.08 0.09 0.1 into each other.
    fig, ax = figure()
    ax.loglog([0.064, 2.1], [1.0, 2.0], color="k")
    assert "0.08" not in _labels(ax)
    assert not [p for p in figure_problems(fig) if "tick labels" in p]


def test_series_colours_are_the_palette_in_order_and_not_a_method_colour_first() -> None:
    assert [series_color(i) for i in range(len(PALETTE) + 1)] == [*PALETTE, PALETTE[0]]
    with pytest.raises(ValueError, match="i must be an integer >= 0"):
        series_color(-1)
    assert series_color(0) != STYLE["sgd"]["color"]
