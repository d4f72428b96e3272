"""The figure palette: distinct hues per method, readable on white, one colour per method."""

from __future__ import annotations

import itertools

import numpy as np
from matplotlib.colors import to_rgb

from experiments.style import PALETTE, STYLE

METHODS = (
    "sgd",
    "sgdm",
    "heavy-ball",
    "adam",
    "yellowfin",
    "yellowfin-closed",
    "momo",
    "momo-adam",
)


def _linear(rgb: np.ndarray) -> np.ndarray:
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def _lab(color: str) -> np.ndarray:
    """CIE L*a*b* (D65) of an sRGB colour (CIE 15:2004)."""
    xyz = np.array(
        [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
    ) @ _linear(np.array(to_rgb(color)))
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _contrast_on_white(color: str) -> float:
    """WCAG 2 contrast ratio against white."""
    lum = float(np.array([0.2126, 0.7152, 0.0722]) @ _linear(np.array(to_rgb(color))))
    return 1.05 / (lum + 0.05)


def test_method_colours_are_far_apart_in_lab() -> None:
    colors = {m: STYLE[m]["color"] for m in METHODS}
    assert len(set(colors.values())) == len(METHODS)
    # Delta E 76 > 28 between every two methods: clearly different colours, not two shades of one
    # (the former Okabe-Ito assignment had sky blue and blue 26 apart, orange and vermilion 33).
    worst = min(
        (float(np.linalg.norm(_lab(colors[a]) - _lab(colors[b]))), a, b)
        for a, b in itertools.combinations(METHODS, 2)
    )
    assert worst[0] > 28.0, worst


def test_every_colour_is_readable_on_white() -> None:
    # 2:1 and above: the pale yellow #F0E442 (1.3:1) that MoMo-Adam had is out.
    for color in {*PALETTE, *(STYLE[m]["color"] for m in STYLE)}:
        assert _contrast_on_white(color) >= 2.0, color


def test_every_method_has_a_label_and_a_marker() -> None:
    for m in METHODS:
        assert STYLE[m]["label"] and STYLE[m]["marker"]


def test_short_log_axes_get_plain_tick_labels() -> None:
    from experiments.style import figure, readable_log_ticks

    fig, (short, long) = figure(ncols=2)
    short.semilogy([0, 1], [2.0, 4.5])  # less than a decade: 2, 3, 4 rather than 4x10^0
    long.semilogy([0, 1], [1e-3, 1e2])
    readable_log_ticks(fig)
    fig.draw_without_rendering()
    minor = [t.get_text() for t in short.get_yticklabels(minor=True) if t.get_text()]
    assert minor and all("times" not in t and "^" not in t for t in minor), minor
    assert "3" in minor
    major_long = [t.get_text() for t in long.get_yticklabels() if t.get_text()]
    assert any("10^" in t for t in major_long), major_long
