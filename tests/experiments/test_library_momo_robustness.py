"""Experiment 13 (momo-robustness): good bands, the growing grid, the checks, and the quick run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from experiments import reproduce
from experiments.checks import decide
from experiments.library import momo_robustness
from experiments.library._lr_band import block, explore, good_band
from experiments.record import Record

CFG = momo_robustness.MomoRobustnessConfig.quick()


def _parabola(center: float, floor: float, seeds: int = 3, spread: float = 0.0):
    """Synthetic sweep: loss = floor (1 + (log10 lr - center)^2), seed s shifted by s * spread."""

    def measure(lrs):
        x = np.log10(lrs)[None, :] - center - spread * np.arange(seeds)[:, None]
        return floor * (1.0 + x**2), None

    return measure


def _flat_above(top_capped: float, seeds: int = 3):
    """Synthetic capped method: loss falls until lr = 1 and is flat above; the cap never binds
    for lr > top_capped."""
    calls = []

    def measure(lrs):
        calls.append(lrs)
        x = np.minimum(np.log10(lrs), 0.0)
        loss = np.tile(0.1 * (1.0 + x**2), (seeds, 1))
        capped = np.tile(np.where(lrs > top_capped, 0.0, 0.5), (seeds, 1))
        return loss, capped

    return measure, calls


def test_good_band_width_is_in_decades_not_grid_points() -> None:
    curve = lambda lr: 0.1 * (1.0 + (np.log10(lr) + 2.0) ** 2)  # noqa: E731
    coarse = np.concatenate([block(d, 3) for d in range(-5, 1)])
    fine = np.concatenate([block(d, 6) for d in range(-5, 1)])
    # factor 2.2: good for |log10 lr + 2| <= 1.095, so both grids end the band at 1e-3 and 1e-1
    wc, wf = good_band(coarse, curve(coarse), 2.2), good_band(fine, curve(fine), 2.2)
    assert wc.width == pytest.approx(2.0) and wf.width == pytest.approx(2.0)
    assert wf.hi - wf.lo == 2 * (wc.hi - wc.lo)  # twice the points, the same decades
    # a diverged (NaN) neighbour ends the band; a band at the grid end is open
    loss = np.array([0.12, 0.1, np.nan, 0.1])
    b = good_band(np.array([1e-3, 1e-2, 1e-1, 1.0]), loss, 2.0)
    assert (b.lo, b.hi, b.open_below, b.open_above) == (0, 1, True, False)
    assert good_band(np.array([1.0, 2.0]), np.array([np.nan, np.inf]), 2.0).best == -1
    with pytest.raises(ValueError, match="factor"):
        good_band(np.array([1.0]), np.array([1.0]), 0.5)


def test_explore_grows_the_grid_until_every_band_closes() -> None:
    ex = explore(_parabola(-2.0, 0.1), start=(-2, -2), cap=(-7, 4), per_decade=3, factor=2.5)
    assert (ex.stop_below, ex.stop_above) == ("closed", "closed")
    assert all(not (b.open_below or b.open_above) for b in ex.bands)
    assert [b.width for b in ex.bands] == pytest.approx([2.0] * 3)
    # a band wider than the cap allows stays open, and the record says why
    ex = explore(_parabola(-2.0, 0.1), start=(-2, -2), cap=(-3, -1), per_decade=3, factor=50.0)
    assert (ex.stop_below, ex.stop_above) == ("cap", "cap")


def test_explore_stops_where_the_cap_no_longer_binds() -> None:
    measure, calls = _flat_above(top_capped=5.0)
    ex = explore(measure, start=(-1, 0), cap=(-7, 4), per_decade=3, factor=2.0)
    assert ex.stop_above == "uncapped" and all(b.open_above for b in ex.bands)
    # blocks -1, 0, then -2 below (loss at 0.1 is 2x the best) and 1 above; nothing beyond 46
    assert ex.lrs[-1] < 100.0 and len(calls) == 4
    assert momo_robustness.cap_inactive_from(ex) == pytest.approx(10.0)


def _explorations(momo_measure, spread: float = 0.0) -> dict:
    kw = {"cap": (-7, 4), "per_decade": 3}
    return {
        "momo": explore(momo_measure, start=(-1, 0), factor=2.0, **kw),
        "sgdm": explore(_parabola(-1.5, 0.1, spread=spread), start=(-2, -1), factor=2.0, **kw),
        "momo-adam": explore(_parabola(-2.5, 0.1), start=(-3, -2), factor=5.0, **kw),
        "adam": explore(_parabola(-2.5, 0.1), start=(-3, -2), factor=2.0, **kw),
    }


def test_an_open_band_makes_the_comparison_not_applicable() -> None:
    measure, _ = _flat_above(top_capped=5.0)
    checks, diffs = momo_robustness.compare(_explorations(measure), CFG)
    by = {c.name: c for c in checks}
    assert by["bands_closed_momo_vs_sgdm"].outcome == "fail"
    assert "cap never binds" in by["bands_closed_momo_vs_sgdm"].note
    assert (
        by["momo_band_wider_than_sgdm"].outcome == "unresolved"
        and diffs["momo_vs_sgdm"]["mean"] is None
    )
    assert by["momo_adam_band_wider_than_adam"].outcome == "pass"  # factor 5 vs 2: wider
    assert decide(checks) == "not applicable"


def test_closed_bands_are_compared_by_a_bootstrap_interval() -> None:
    # MoMo a parabola 4x flatter than SGD-M's: wider on every seed -> holds
    flat = lambda lrs: (0.1 * (1.0 + (np.log10(lrs) / 2.0) ** 2)[None, :].repeat(3, 0), None)  # noqa: E731
    checks, diffs = momo_robustness.compare(_explorations(flat), CFG)
    assert decide(checks) == "holds", [(c.name, c.outcome, c.note) for c in checks]
    assert diffs["momo_vs_sgdm"]["interval"][0] > 0
    # MoMo narrower than SGD-M (the same shape, SGD-M flatter) -> fails
    narrow = lambda lrs: (0.1 * (1.0 + (2 * np.log10(lrs)) ** 2)[None, :].repeat(3, 0), None)  # noqa: E731
    assert decide(momo_robustness.compare(_explorations(narrow), CFG)[0]) == "fails"
    # a method that never trains is not applicable whatever the widths
    untrained = lambda lrs: (np.full((3, lrs.size), 2.3) + 0.01 * np.log10(lrs) ** 2, None)  # noqa: E731
    checks, _ = momo_robustness.compare(_explorations(untrained), CFG)
    assert next(c for c in checks if c.name == "training_progressed").outcome == "fail"
    assert decide(checks) == "not applicable"


def test_config_refuses_fewer_than_three_seeds() -> None:
    with pytest.raises(ValueError, match="seeds"):
        momo_robustness.run(dataclasses.replace(CFG, seeds=2), 0)


def test_quick_run_is_not_applicable_because_momo_cap_goes_inactive(tmp_path) -> None:
    exp = momo_robustness.EXPERIMENT
    rec = reproduce.run_experiment(exp, quick=True, seed=0, out=tmp_path)
    assert "plot_error" not in rec.provenance
    png = (tmp_path / exp.name / "figure.png").read_bytes()
    assert png.startswith(b"\x89PNG") and (tmp_path / exp.name / "figure.svg").stat().st_size > 0
    back = Record.load(tmp_path / exp.name)
    m = back.measurement
    kinds = {c.name: (c.kind, c.outcome) for c in back.checks}
    assert kinds["training_progressed"] == ("precondition", "pass")
    # MoMo's cap stops binding a few decades above its best lr: every larger lr is the same run,
    # so its band has no upper edge and MoMo vs SGD-M is not applicable.
    assert m["grid_stop"]["momo"]["above"] == "uncapped" and m["cap_inactive_from_lr"]["momo"] > 1
    assert kinds["bands_closed_momo_vs_sgdm"] == ("precondition", "fail")
    assert back.verdict == "not applicable", back.summary
    # widths are decades of the grid (multiples of 1/per_decade), each method's grid closed below
    for w in m["band_width_decades"].values():
        cells = np.asarray(w) * CFG.per_decade
        np.testing.assert_allclose(cells, np.round(cells), atol=1e-9)
    assert all(s["below"] == "closed" for s in m["grid_stop"].values())
    assert (
        m["grid_stop"]["sgdm"]["above"] == "closed" and m["grid_stop"]["adam"]["above"] == "closed"
    )
