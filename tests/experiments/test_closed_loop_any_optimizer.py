"""closed-loop-any-optimizer: a tiny run whose checks decide, and the verdict's paths on planted
measurements (a slower or faster closed loop, an off tracking reading, a rebounding control)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from matplotlib.figure import Figure

from experiments.library import closed_loop_any_optimizer as exp
from experiments.library._cl_any_measure import (
    assess_case,
    block_means,
    control_status,
    ladder,
)

FULL = exp.ClosedLoopAnyConfig()


def _tracking(cfg, settled: float = 0.2) -> dict:
    # planted: the finite-step readings approach `settled` as c lr^2 (Richardson removes it)
    return {
        "lrs": [0.005, 0.0025],
        "mu": [settled - 0.016, settled - 0.004],
        "se": [1e-3, 1e-3],
        "sensor": [cfg.target, cfg.target],
        "capped": [1.0, 1.0],
        "traces": np.zeros((2, 10)),
    }


def _case(cfg, seed: int, *, closed_rate: float = 1.0, sync_climb: float = 0.0) -> dict:
    """Planted losses: exponential descent to a floor with multiplicative noise across seeds; the
    closed loop descends ``closed_rate`` times as fast; the control climbs over the second half."""
    rng = np.random.default_rng(seed)
    steps = np.arange(0.0, 2001.0, 10.0)

    def curve(rate: float, climb: float = 0.0) -> np.ndarray:
        base = 50.0 * np.exp(-rate * steps) + 0.01
        base = base * (1.0 + climb * np.clip(steps / steps[-1] - 0.5, 0, None) * 2)
        return base[None] * np.exp(0.1 * rng.standard_normal((cfg.seeds, steps.size)))

    out = {"steps": steps, "sync": curve(0.01, sync_climb), "open": curve(0.005)}
    out["closed"] = curve(0.005 * closed_rate)
    out["closed_mu"] = np.full((cfg.seeds, steps.size), 0.2)
    return out


def _cases(cfg, **kw) -> dict:
    return {
        f"{bed}_{n}": _case(cfg, i, **kw)
        for i, (bed, n) in enumerate((b, n) for b in exp.BEDS for n in cfg.optimizers)
    }


def test_first_order_prediction_is_the_inverted_total_momentum() -> None:
    rec = exp.make_record(FULL, _tracking(FULL), _cases(FULL, closed_rate=2.0), 0)
    track = next(c for c in rec.checks if c.name == "settled_beta_first_order")
    # 1 - (1 - b)/M = target  <=>  b = 1 - M (1 - target) = 1 - 16 * 0.05
    assert track.predicted == pytest.approx(0.2, abs=1e-12)
    assert track.measured["extrapolated"] == pytest.approx(0.2, abs=1e-12)
    assert track.outcome == "pass"


def test_faster_closed_loop_holds_and_slower_fails() -> None:
    fast = exp.make_record(FULL, _tracking(FULL), _cases(FULL, closed_rate=2.0), 0)
    assert fast.verdict == "holds", fast.summary
    assert sum(c.headline for c in fast.checks) == 1
    slow = exp.make_record(FULL, _tracking(FULL), _cases(FULL, closed_rate=0.5), 0)
    assert slow.verdict == "fails", slow.summary
    speed = [c for c in slow.checks if c.name.startswith("speedup_")]
    assert len(speed) == 2 * len(FULL.optimizers)
    assert all(c.kind == "reproduction" and c.outcome == "fail" for c in speed)


def test_equal_loops_are_unresolved() -> None:
    rec = exp.make_record(FULL, _tracking(FULL), _cases(FULL, closed_rate=1.0), 0)
    assert rec.verdict in ("unresolved", "fails"), rec.summary
    assert any(c.outcome == "unresolved" for c in rec.checks if c.name.startswith("speedup_"))


def test_an_off_tracking_reading_fails_even_in_a_smoke_run() -> None:
    quick = exp.ClosedLoopAnyConfig.quick()
    rec = exp.make_record(quick, _tracking(quick, settled=0.35), _cases(quick, closed_rate=2), 0)
    assert rec.verdict == "fails", rec.summary
    track = next(c for c in rec.checks if c.name == "settled_beta_first_order")
    assert track.kind == "verification" and track.outcome == "fail"
    ok = exp.make_record(quick, _tracking(quick), _cases(quick, closed_rate=2.0), 0)
    assert ok.verdict == "smoke" and "8 seeds" in ok.smoke


def test_a_rebounding_control_everywhere_is_not_applicable() -> None:
    cases = _cases(FULL, closed_rate=2.0, sync_climb=20.0)
    rec = exp.make_record(FULL, _tracking(FULL), cases, 0)
    assert rec.verdict == "not applicable", rec.summary
    pre = next(c for c in rec.checks if c.kind == "precondition")
    assert "rebounds" in pre.note
    assert not any(c.name.startswith("speedup_") for c in rec.checks)


def test_a_diverging_open_loop_counts_the_whole_horizon() -> None:
    cfg = FULL
    case = _case(cfg, 0)
    case["open"] = np.full_like(case["open"], np.inf)
    a = assess_case(case, case["steps"], cfg, 0, chance=None)
    assert a["applicable"] and a["open_iterations"] == case["steps"][-1]
    assert a["interval"][0] > 1.0 and a["unreached_open_closed"][0] == cfg.seeds * cfg.levels


def test_measurement_helpers() -> None:
    m, t = block_means(np.arange(10.0)[None], 5)
    assert m.tolist() == [[2.0, 7.0]] and t.tolist() == [5.0, 10.0]
    with pytest.raises(ValueError, match="every"):
        block_means(np.zeros((1, 4)), 0)
    steps = np.arange(0.0, 1000.0, 10.0)
    flat = np.full((3, steps.size), 1.0)
    stuck = control_status(flat, steps, block=100, rebound_limit=3.0, chance=np.log(10.0))
    assert stuck["applicable"] and stuck["late"] == pytest.approx(1.0)
    chance = control_status(2.0 * flat, steps, block=100, rebound_limit=3.0, chance=np.log(10))
    assert not chance["applicable"] and "never trained" in chance["reason"]
    cfg = dataclasses.replace(FULL, levels=3)
    down = np.exp(-steps / 100.0)[None].repeat(2, 0)
    lv = ladder(down, down, steps, cfg)
    assert lv.size == 3 and lv[0] < 1.0 and lv[-1] == pytest.approx(2 * down[0, -10:].mean())
    assert ladder(flat, flat, steps, cfg).size == 0


def test_plot_of_a_planted_record() -> None:
    rec = exp.make_record(FULL, _tracking(FULL), _cases(FULL, closed_rate=2.0), 0)
    assert isinstance(exp.plot(rec), Figure)


def test_tiny_run_decides_its_checks() -> None:
    # one optimizer (compilation dominates a tiny run): MoMo, the one the tracking check reads
    cfg = dataclasses.replace(
        exp.ClosedLoopAnyConfig.quick(),
        optimizers=("momo",),
        nqm_lrs=(1.0,),
        net_lrs=(1.0,),
        track_lrs=(0.005, 0.0025),
        track_steps=1200,
        seeds=3,
        nqm_steps=400,
        net_steps=300,
        net_hidden=(16,),
        block=50,
    )
    rec = exp.run(cfg, 0)
    assert rec.verdict in ("smoke", "fails", "not applicable"), rec.summary
    kinds = {c.kind for c in rec.checks}
    assert {"identity", "verification", "precondition"} <= kinds
    assert all(c.outcome in ("pass", "fail", "unresolved") for c in rec.checks)
    cases = rec.measurement["cases"]
    assert set(cases) == {f"{b}_{n}" for b in exp.BEDS for n in cfg.optimizers}
    for k, a in cases.items():
        assert isinstance(a["applicable"], bool) and a["reason"], k
    track = rec.arrays["track_momo"]
    # the loop keeps its value inside the bounds of optimizers.closed_loop
    assert np.all(np.isfinite(track)) and np.all(np.abs(track) < 1.0)
    assert set(rec.measurement["closed_loop_settled_momentum"]) == set(cases)
