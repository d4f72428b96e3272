"""Experiment 11 (yellowfin-vs-adam): crossings and their censoring, grids that extend past an
edge, the edge precondition, and the quick run (a smoke run: its 300-step budget is below 10x
YellowFin's 200-step slow start)."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest

from experiments import reproduce
from experiments.library import _yellowfin_vs_adam_grids as grids
from experiments.library import yellowfin_vs_adam as yva
from experiments.library._yellowfin_vs_adam_checks import DECIDING, metric_label
from experiments.library._yellowfin_vs_adam_metrics import crossing
from experiments.record import Record


def test_smoothing_first_reach_and_grid() -> None:
    x = np.array([4.0, 2.0, 0.0, 6.0])
    np.testing.assert_allclose(yva.smoothed(x, 2), [4.0, 3.0, 1.0, 3.0])
    assert yva.first_reach(yva.smoothed(x, 2), 1.0) == 3.0  # 1-based iteration count
    assert yva.first_reach(np.array([0.0, 5.0, 0.0]), 1.0, start=1) == 3.0  # skips the slow start
    assert math.isinf(yva.first_reach(x, -1.0))
    g = yva.grid(1e-2, 3, -1, 2)
    np.testing.assert_allclose(np.log10(g), [-2 - 1 / 3, -2, -2 + 1 / 3, -2 + 2 / 3])


def _linear(start: float, slope: float, n: int) -> np.ndarray:
    return start + slope * np.arange(1, n + 1)


def test_crossings_targets_censoring_and_direction() -> None:
    """Held-out readings every 10 steps to step 100 (YellowFin to 150); slow start 30 steps."""
    at = np.arange(1, 16) * 10
    two = lambda c: np.stack([c, c + 0.0])  # noqa: E731  (two identical seeds)
    curves = {
        "adam": two(_linear(10.0, -0.5, 10)),  # ends at 5.0 at step 100
        "sgdm": two(_linear(10.0, -0.4, 10)),  # ends at 6.0
        "yellowfin": two(_linear(10.0, -1.0, 15)),  # 5.0 at step 50
    }
    kw = dict(steps=100, budgets={"yellowfin": 150, "adam": 100, "sgdm": 100}, slow_start=30)
    c = crossing("heldout_loss", curves, at, window=1, seed=0, **kw)
    np.testing.assert_allclose(c.targets, 5.0)  # the better baseline's final value
    np.testing.assert_allclose(c.iterations["yellowfin"], 50.0)
    np.testing.assert_allclose(c.iterations["adam"], 100.0)
    assert math.isinf(c.iterations["sgdm"][0]) and c.censored["sgdm"][0] == 101.0
    assert c.ratio == pytest.approx(0.5) and c.speedup == pytest.approx(2.0)
    # accuracy: higher is better; a YellowFin that never gets there is censored at 151
    acc = {m: -v for m, v in curves.items()}
    acc["yellowfin"] = two(np.full(15, -9.0))
    c = crossing("heldout_accuracy", acc, at, window=1, seed=0, **kw)
    np.testing.assert_allclose(c.targets, -5.0)
    assert c.censored["yellowfin"][0] == 151.0 and c.ratio == pytest.approx(1.51)
    # a YellowFin that reaches the target only inside its slow start is not counted there
    early = dict(curves, yellowfin=two(np.r_[np.full(3, 1.0), np.full(12, 9.0)]))
    c = crossing("heldout_loss", early, at, window=1, seed=0, **kw)
    assert math.isinf(c.iterations["yellowfin"][0])


def _fake_grid(optimum: float):
    """Runs with loss (log10(lr / optimum))^2 + 1 at every step: the best rate is ``optimum``."""

    def train_grid(models, make, lrs, task, *, steps, **_):
        final = np.log10(np.asarray(lrs, np.float64) / optimum) ** 2 + 1.0
        shape = (len(models), len(lrs))
        return SimpleNamespace(losses=np.broadcast_to(final[None, :, None], (*shape, steps)))

    return train_grid


@pytest.mark.parametrize(("extensions", "on_edge"), [(8, False), (2, True)])
def test_grid_extends_while_the_best_rate_is_on_an_edge(monkeypatch, extensions, on_edge) -> None:
    monkeypatch.setattr(grids, "train_grid", _fake_grid(1.0))
    cfg = yva.YellowFinVsAdamConfig(
        steps=10, max_extensions=extensions, grid_half=1, smooth=2, eval_every=10
    )
    built = SimpleNamespace(models=[None] * 3, task=None, eval_x=None, eval_y=None, eval_batch=1)
    prog = grids.Progress({"resnet": 1.0}, {"resnet": 18}, 15, cfg)
    total = prog.total
    out = grids.tune(built, None, 1e-2, cfg, "resnet.adam", prog)
    assert out["on_edge"] is on_edge
    steps = np.diff(np.log10(out["grid"]))
    np.testing.assert_allclose(steps, 1 / 3)  # 3 points per decade throughout
    assert prog.total == total + 3 * 10 * (len(out["grid"]) - 3)  # the ETA grows with the grid
    if on_edge:  # two extensions from [1e-2 10^-1/3, 1e-2 10^1/3] reach 1e-2 10^3/3 only
        assert out["best"] == pytest.approx(out["grid"][-1])
        assert out["best"] == pytest.approx(1e-2 * 10 ** (3 / 3))
    else:  # the optimum 1.0 is found and has a neighbour on each side
        assert out["best"] == pytest.approx(1.0)
        assert out["grid"][0] < out["best"] < out["grid"][-1]


def check_record(rec: Record, cfg: yva.YellowFinVsAdamConfig) -> None:
    """What every yellowfin-vs-adam record of ``cfg`` must satisfy (quick: smoke or n/a)."""
    pre = [c for c in rec.checks if c.kind == "precondition"]
    if all(c.passed for c in pre):
        assert rec.verdict == "smoke" and "slow start" in rec.smoke
    else:
        assert rec.verdict == "not applicable"
    assert sum(c.headline for c in rec.checks) == 1
    names = {c.name for c in rec.checks if c.kind == "reproduction"}
    for task in cfg.tasks:
        meas = rec.measurement[task]
        deciding = {metric_label(task, m) for m in DECIDING[task]}
        assert set(meas["deciding"]) == deciding
        assert {f"{task}_{m}_yellowfin_within_1.5x_best_baseline" for m in deciding} <= names
        for label, cr in meas["crossings"].items():
            lo, hi = cr["ratio_interval"]
            assert lo <= cr["yellowfin_over_best_baseline"] <= hi
            yf = np.asarray(cr["iterations"]["yellowfin"], np.float64)
            assert yf.shape == (cfg.seeds,)
            assert np.all(yf > yva.SLOW_START)  # never read inside the slow start
            if label == "train_loss":  # the best baseline reaches its own end value in budget
                best = np.minimum(cr["iterations"]["adam"], cr["iterations"]["sgdm"])
                assert np.all(best <= cfg.steps)
        if task == "lstm":  # perplexity targets: exp of a loss per token above 0
            assert meas["crossings"]["heldout_perplexity"]["target_is"] == "perplexity"
            assert min(meas["crossings"]["heldout_perplexity"]["target_per_seed"]) > 1.0
        for m in yva.METHODS:
            res = meas["resources"][m]
            assert res["member_steps_per_s"] is None or res["member_steps_per_s"] > 0
            assert res["peak_bytes"] is None or res["peak_bytes"] > 0
        for m in ("adam", "sgdm"):
            grid = rec.arrays[f"{task}_{m}_grid"]
            np.testing.assert_allclose(np.diff(np.log10(grid)), 1 / 3, rtol=1e-9)
            assert np.isclose(grid, meas["tuned_learning_rate"][m]).any()


def test_quick_lstm_alone_is_smoke_and_renders() -> None:
    """The quick configuration's LSTM task alone (the ResNet's compilation makes the whole quick
    run a few CPU minutes; that run is the slow test below)."""
    cfg = dataclasses.replace(yva.YellowFinVsAdamConfig.quick(), tasks=("lstm",))
    rec = yva.run(cfg, 0)
    check_record(rec, cfg)
    fig = yva.plot(rec)
    assert len(fig.axes) == 4 * 2


@pytest.mark.slow
def test_quick_run_is_smoke_with_three_seeds_and_renders(tmp_path) -> None:
    exp = yva.EXPERIMENT
    cfg = yva.YellowFinVsAdamConfig.quick()
    assert exp.device == "cpu" and cfg.steps < 10 * yva.SLOW_START
    rec = reproduce.run_experiment(exp, quick=True, seed=0, out=tmp_path)
    assert "plot_error" not in rec.provenance
    assert (tmp_path / exp.name / "figure.png").read_bytes().startswith(b"\x89PNG")
    check_record(Record.load(tmp_path / exp.name), cfg)
