"""Experiment 11 (yellowfin-vs-adam): grids that extend past an edge, the edge precondition, and the
quick run (a smoke run: its 300-step budget is below 10x YellowFin's 200-step slow start)."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest

from experiments import reproduce
from experiments.library import yellowfin_vs_adam as yva
from experiments.record import Record


def test_smoothing_first_reach_and_grid() -> None:
    x = np.array([4.0, 2.0, 0.0, 6.0])
    np.testing.assert_allclose(yva.smoothed(x, 2), [4.0, 3.0, 1.0, 3.0])
    assert yva.first_reach(yva.smoothed(x, 2), 1.0) == 3.0  # 1-based iteration count
    assert yva.first_reach(np.array([0.0, 5.0, 0.0]), 1.0, start=1) == 3.0  # skips the slow start
    assert math.isinf(yva.first_reach(x, -1.0))
    g = yva.grid(1e-2, 3, -1, 2)
    np.testing.assert_allclose(np.log10(g), [-2 - 1 / 3, -2, -2 + 1 / 3, -2 + 2 / 3])


def _fake_grid(optimum: float):
    """Runs with loss (log10(lr / optimum))^2 + 1 at every step: the best rate is ``optimum``."""

    def train_grid(models, make, lrs, task, *, steps, chunk):
        final = np.log10(np.asarray(lrs, np.float64) / optimum) ** 2 + 1.0
        shape = (len(models), len(lrs))
        return SimpleNamespace(
            losses=np.broadcast_to(final[None, :, None], (*shape, steps)),
            test_loss=np.broadcast_to(final, shape),
            test_accuracy=np.zeros(shape),
        )

    return train_grid


@pytest.mark.parametrize(("extensions", "on_edge"), [(8, False), (2, True)])
def test_grid_extends_while_the_best_rate_is_on_an_edge(monkeypatch, extensions, on_edge) -> None:
    monkeypatch.setattr(yva, "train_grid", _fake_grid(1.0))
    cfg = yva.YellowFinVsAdamConfig(steps=10, max_extensions=extensions, grid_half=1, smooth=2)
    out = yva._tune([None, None, None], None, 1e-2, None, cfg, 10)
    assert out["on_edge"] is on_edge
    steps = np.diff(np.log10(out["grid"]))
    np.testing.assert_allclose(steps, 1 / 3)  # 3 points per decade throughout
    if on_edge:  # two extensions from [1e-2 10^-1/3, 1e-2 10^1/3] reach 1e-2 10^3/3 only
        assert out["best"] == pytest.approx(out["grid"][-1])
        assert out["best"] == pytest.approx(1e-2 * 10 ** (3 / 3))
    else:  # the optimum 1.0 is found and has a neighbour on each side
        assert out["best"] == pytest.approx(1.0)
        assert out["grid"][0] < out["best"] < out["grid"][-1]


def _check_record(rec: Record, cfg: yva.YellowFinVsAdamConfig) -> None:
    # a quick run decides nothing unless a precondition fails (then it says not applicable)
    pre = [c for c in rec.checks if c.kind == "precondition"]
    if all(c.passed for c in pre):
        assert rec.verdict == "smoke" and "slow start" in rec.smoke
    else:
        assert rec.verdict == "not applicable"
    assert sum(c.headline for c in rec.checks) == 1
    for task in cfg.tasks:
        meas = rec.measurement[task]
        for m in yva.METHODS:
            it = np.asarray(meas["iterations"][m], np.float64)
            assert it.shape == (cfg.seeds,)
            assert rec.arrays[f"{task}_{m}_smoothed"].shape[0] == cfg.seeds
        # YellowFin's crossings are never read inside its slow start
        yf = np.asarray(meas["iterations"]["yellowfin"], np.float64)
        assert np.all(yf > yva.SLOW_START)
        # the best baseline reaches its own end value within its budget, on every seed
        best = np.minimum(meas["iterations"]["adam"], meas["iterations"]["sgdm"])
        assert np.all(best <= cfg.steps)
        lo, hi = meas["ratio_interval"]
        assert lo <= meas["yellowfin_over_best_baseline"] <= hi
        # grids are 3 per decade and the tuned rate is on them
        for m in ("adam", "sgdm"):
            grid = rec.arrays[f"{task}_{m}_grid"]
            np.testing.assert_allclose(np.diff(np.log10(grid)), 1 / 3, rtol=1e-9)
            assert np.isclose(grid, meas["tuned_learning_rate"][m]).any()


def test_quick_lstm_alone_is_smoke_and_renders() -> None:
    """The quick configuration's LSTM task alone (the ResNet's compilation makes the whole quick
    run a few CPU minutes; that run is the slow test below)."""
    cfg = dataclasses.replace(yva.YellowFinVsAdamConfig.quick(), tasks=("lstm",))
    rec = yva.run(cfg, 0)
    _check_record(rec, cfg)
    fig = yva.plot(rec)
    assert len(fig.axes) == 4


@pytest.mark.slow
def test_quick_run_is_smoke_with_three_seeds_and_renders(tmp_path) -> None:
    exp = yva.EXPERIMENT
    cfg = yva.YellowFinVsAdamConfig.quick()
    assert exp.device == "cpu" and cfg.steps < 10 * yva.SLOW_START
    rec = reproduce.run_experiment(exp, quick=True, seed=0, out=tmp_path)
    assert "plot_error" not in rec.provenance
    assert (tmp_path / exp.name / "figure.png").read_bytes().startswith(b"\x89PNG")
    _check_record(Record.load(tmp_path / exp.name), cfg)
