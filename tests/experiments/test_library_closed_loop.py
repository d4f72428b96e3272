"""Experiment 10 (closed momentum loop, 16 workers): quick run, and the verdict's paths on planted
measurements (a rebounding control, a faster or slower closed loop, an off tracking reading)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from experiments import reproduce
from experiments.checks import decide
from experiments.library import _closed_loop_net as closed_loop_net
from experiments.library import closed_loop
from experiments.library._closed_loop_measure import iterations_to_levels, rebound, richardson
from experiments.record import Record
from tests.experiments._tiny_run import run_tiny

FULL = closed_loop.ClosedLoopConfig()


# The quick configuration's tracking (the check's readings are the quick run's), 4 seeds of 800
# steps on the bed and 2 network seeds of 400 updates: every stage and check of the quick run, a
# third of its cost (compilation of the six arms dominates).
TINY = dataclasses.replace(
    closed_loop.ClosedLoopConfig.quick(), seeds=4, steps=800, net_seeds=2, net_steps=400
)


def _assert_tracking(rec: Record, cfg: closed_loop.ClosedLoopConfig) -> dict:
    """The tracking check of a run at the quick tracking settings; returns the checks by name."""
    by_name = {c.name: c for c in rec.checks}
    # first-order inversion of 1 - (1 - mu)/M = target, by hand: 1 - 16 * 0.05 = 0.2
    track = by_name["settled_mu_algo_first_order"]
    assert track.kind == "verification" and track.outcome == "pass"
    assert track.predicted == pytest.approx(1 - 16 * (1 - cfg.target), abs=1e-12)
    # the finite-step readings sit below first order and approach it as the step halves
    # (measured: 0.176 and 0.197; extrapolated 0.204)
    per_step = list(track.measured["per_step"].values())
    assert per_step[0] < per_step[1] < track.predicted + cfg.track_tol
    assert by_name["loop_sensor_reads_target"].kind == "identity"
    return by_name


def _assert_network_kinds_and_files(rec: Record, by_name: dict, out) -> None:
    """The network stage's check kinds and sensor numbers, the figure and the written record."""
    assert by_name["net_loop_sensor_reads_target"].kind == "identity"
    assert by_name["net_total_momentum_compensated"].kind == "reproduction"
    assert by_name["net_speedup"].kind == "reproduction"
    gaps = rec.measurement["network"]["total_momentum_vs_target"]
    assert 0.0 < gaps["open"]["total_momentum"] < 1.0
    assert "plot_error" not in rec.provenance
    png = (out / closed_loop.EXPERIMENT.name / "figure.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    back = Record.load(out / closed_loop.EXPERIMENT.name)
    assert back.verdict == "smoke" and np.isfinite(back.arrays["B1_closed"]).all()


def test_tiny_run_through_the_runner_has_every_stage_and_a_passing_tracking_check(
    tmp_path, monkeypatch
) -> None:
    exp = closed_loop.EXPERIMENT
    cfg = TINY
    rec = run_tiny(monkeypatch, exp, cfg, tmp_path)
    assert rec.verdict == "smoke", rec.summary
    assert "4 seeds" in rec.smoke and "2 network seeds" in rec.smoke
    assert rec.config["steps"] == 800 and rec.config["net_steps"] == 400
    by_name = _assert_tracking(rec, cfg)
    assert by_name["loop_sensor_reads_target"].outcome == "pass"
    assert by_name["synchronous_control_settles"].outcome == "pass"
    head = [c for c in rec.checks if c.headline]
    assert [c.name for c in head] == ["speedup_B1_gain0.02"]
    assert head[0].kind == "reproduction"
    bed = rec.measurement["beds"]["B=1"]
    # the ladder lies below the loss at the end of the warm-up and is descended after it
    assert bed["applicable"] and len(bed["ladder"]) == cfg.levels
    assert np.all(np.diff(bed["ladder"]) < 0)
    assert 0 < bed["open_iterations"] < cfg.steps - cfg.warm_up
    # the network stage (digits MLP, 2 seeds): the control trains (measured late loss 0.06 vs
    # chance 2.30), so the speed is read; kinds fixed, the independent sensor's numbers
    assert by_name["net_data_present"].passed
    assert by_name["net_control_trains"].kind == "precondition"
    assert by_name["net_control_trains"].passed
    _assert_network_kinds_and_files(rec, by_name, tmp_path)
    back = Record.load(tmp_path / closed_loop.EXPERIMENT.name)
    assert back.arrays["B1_closed"].shape == (cfg.steps // cfg.record_every + 1,)


@pytest.mark.slow
def test_quick_run_is_a_smoke_run_with_a_passing_tracking_check(tmp_path) -> None:
    exp = closed_loop.EXPERIMENT
    rec = reproduce.run_experiment(exp, quick=True, seed=0, out=tmp_path)
    cfg = closed_loop.ClosedLoopConfig.quick()
    assert rec.verdict == "smoke", rec.summary
    assert "16 seeds" in rec.smoke and "4 network seeds" in rec.smoke
    by_name = _assert_tracking(rec, cfg)
    assert by_name["synchronous_control_settles"].outcome == "pass"
    head = [c for c in rec.checks if c.headline]
    assert [c.name for c in head] == ["speedup_B1_gain0.02"]
    bed = rec.measurement["beds"]["B=1"]
    # the ladder lies below the loss at the end of the warm-up and is descended after it
    assert bed["applicable"] and len(bed["ladder"]) == cfg.levels
    assert np.all(np.diff(bed["ladder"]) < 0)
    assert 0 < bed["open_iterations"] < cfg.steps - cfg.warm_up
    # the network stage (digits MLP, 4 seeds): kinds fixed, the independent sensor's numbers
    assert by_name["net_data_present"].passed
    assert by_name["net_control_trains"].kind == "precondition"
    _assert_network_kinds_and_files(rec, by_name, tmp_path)


def _cfg(**kw) -> closed_loop.ClosedLoopConfig:
    return dataclasses.replace(FULL, steps=2000, **kw)


def _tracking(mu_algo=(0.176, 0.197)) -> dict:
    return {
        "alphas": [0.005, 0.0025],
        "mu_algo": list(mu_algo),
        "mu_algo_se": [5e-4, 5e-4],
        "traces": np.zeros((2, 10)),
        "loop_sensor": [0.95, 0.95],
    }


def _bed(cfg, seed: int, *, sync_climb: float = 0.0, closed_rate: float = 1.0) -> dict:
    """Planted losses: exponential descent to a floor, multiplicative noise across seeds;
    the synchronous control climbs by ``sync_climb`` x over the second half of the horizon."""
    rng = np.random.default_rng(seed)
    steps = np.arange(0.0, cfg.steps + 1, cfg.record_every)

    def curve(rate: float, climb: float = 0.0) -> np.ndarray:
        base = 50.0 * np.exp(-rate * steps) + 0.01
        base = base * (1.0 + climb * np.clip(steps / cfg.steps - 0.5, 0, None) * 2)
        return base[None] * np.exp(0.1 * rng.standard_normal((cfg.seeds, steps.size)))

    bed = {"steps": steps, "sync": curve(0.01, sync_climb), "open": curve(0.01)}
    for g in cfg.gains:
        bed[f"closed_{g:g}"] = curve(0.01 * closed_rate)
    return bed


def _record(cfg, beds, trk=None) -> Record:
    return closed_loop.make_record(cfg, trk or _tracking(), beds, seed=0)


def test_planted_rebounding_control_is_not_applicable() -> None:
    cfg = _cfg()
    beds = {b: _bed(cfg, b, sync_climb=20.0, closed_rate=2.0) for b in cfg.batches}
    rec = _record(cfg, beds)
    assert rec.verdict == "not applicable"
    pre = next(c for c in rec.checks if c.kind == "precondition")
    assert pre.outcome == "fail" and "rebounds" in pre.note
    assert all(v > cfg.rebound_limit for v in pre.measured.values())
    # no speedup is read on a bed whose control rebounds
    assert not any(c.name.startswith("speedup") for c in rec.checks)
    # one settled bed is enough for the claim to apply there (and only there)
    beds[16] = _bed(cfg, 16, closed_rate=2.0)
    rec = _record(cfg, beds)
    assert rec.verdict == "holds", rec.summary
    assert {c.name for c in rec.checks if c.name.startswith("speedup")} == {
        f"speedup_B16_gain{g:g}" for g in cfg.gains
    }


@pytest.mark.parametrize(("closed_rate", "verdict"), [(2.0, "holds"), (0.5, "fails")])
def test_speedup_decides_on_settled_beds(closed_rate: float, verdict: str) -> None:
    cfg = _cfg()
    rec = _record(cfg, {b: _bed(cfg, b, closed_rate=closed_rate) for b in cfg.batches})
    assert rec.verdict == verdict, rec.summary
    head = next(c for c in rec.checks if c.headline)
    assert head.name == "speedup_B1_gain0.02"
    ratio = head.measured["ratio"]
    assert (ratio > 1.5) if closed_rate > 1 else (ratio < 0.7)


def test_off_tracking_reading_fails_even_in_a_smoke_run() -> None:
    cfg = _cfg(batches=(1,), gains=(0.02,), seeds=8)
    beds = {1: _bed(cfg, 1, closed_rate=2.0)}
    assert _record(cfg, beds).verdict == "smoke"
    # settling at 0.5 instead of 0.2 at a vanishing step is a bug, not a smoke result
    assert _record(cfg, beds, _tracking((0.45, 0.48))).verdict == "fails"


def test_measurement_helpers() -> None:
    t = np.arange(0.0, 1000.0, 10.0)
    assert rebound(np.exp(-t / 100) + 0.1, t, 100)["ratio"] == pytest.approx(1.0, abs=0.01)
    climb = np.where(t < 500, np.exp(-t / 50), np.exp(-10) * 1.01 ** (t - 500))
    assert rebound(climb, t, 100)["ratio"] > 10
    its, ok = iterations_to_levels(np.exp(-t / 100)[None], t, np.array([0.5, 0.1, 1e-9]), 200)
    # counted from the warm-up (step 200); exp(-t/100) <= 0.5 already at 200 -> 0 iterations
    assert its.tolist() == [[0.0, 40.0, 790.0]] and ok.tolist() == [[True, True, False]]
    assert richardson(0.2 + 0.016, 0.2 + 0.004, 0.0, 0.0) == (0.2, 0.0)


def test_gpu_tier_without_cifar_is_not_applicable_naming_the_variable(monkeypatch) -> None:
    monkeypatch.delenv("MOMLAB_CIFAR_DIR", raising=False)
    cfg = closed_loop.ClosedLoopConfig.gpu()
    assert cfg.net_dataset == "cifar100" and cfg.workers == 16
    net = closed_loop.network_stage(cfg, 0)
    assert [c.name for c in net[1]] == ["net_data_present"]
    assert "MOMLAB_CIFAR_DIR" in net[1][0].note
    cfg = _cfg(batches=(1,))
    rec = closed_loop.make_record(cfg, _tracking(), {1: _bed(cfg, 1)}, 0, net)
    assert rec.verdict == "not applicable"
    assert "MOMLAB_CIFAR_DIR" in rec.summary and "MOMLAB_CIFAR_DIR" in str(rec.measurement)


def _planted_arms(monkeypatch, *, closed_rate: float, control_loss: float = 0.01) -> None:
    """Replace the network training by planted arms: loss curves exp(-rate t) + floor with noise,
    total-momentum sums giving open 0.99 and closed 0.96 against a target 0.95."""

    def fake(name, make, bed, *, seeds, steps, workers, keep, **_):
        rng = np.random.default_rng(len(name))
        t = np.arange(steps, dtype=float)
        rate = 0.01 * (closed_rate if name.startswith("net_closed") else 1.0)
        floor = control_loss if name == "net_sync" else 0.01
        loss = (2.3 * np.exp(-rate * t) + floor)[None] * np.exp(
            0.05 * rng.standard_normal((len(seeds), steps))
        )
        total = 0.96 if name.startswith("net_closed") else 0.99
        ones = np.ones((len(seeds), steps))
        return {
            "loss": loss,
            "total_ls_num": total * ones + 0.002 * rng.standard_normal(ones.shape),
            "total_ls_den": ones,
            "tuned_momentum": 0.95 * ones,
            "momentum": 0.95 * ones,
            "mu_hat": 0.95 * ones,
            "mu_algo": 0.5 * ones,
            "mu_target": 0.95 * ones,
        }

    monkeypatch.setattr(closed_loop_net, "staged_arm", fake)


@pytest.mark.parametrize(
    ("closed_rate", "control_loss", "outcome"),
    [(2.0, 0.01, "pass"), (0.5, 0.01, "fail"), (2.0, 2.3, "not applicable")],
)
def test_network_stage_on_planted_arms(monkeypatch, closed_rate, control_loss, outcome) -> None:
    _planted_arms(monkeypatch, closed_rate=closed_rate, control_loss=control_loss)
    cfg = dataclasses.replace(closed_loop.ClosedLoopConfig.quick(), net_seeds=8, net_steps=1500)
    _, checks = closed_loop_net.network_stage(cfg, 0)
    by = {c.name: c for c in checks}
    if outcome == "not applicable":
        # a control that stays at chance: the claim does not apply, no speed is read
        assert not by["net_control_trains"].passed and "net_speedup" not in by
        assert decide(checks) == "not applicable"
        return
    assert by["net_control_trains"].passed
    assert by["net_speedup"].outcome == outcome
    # total momentum 0.99 open, 0.96 closed, target 0.95: the closed loop is nearer
    comp = by["net_total_momentum_compensated"]
    assert comp.passed and comp.measured["difference"] == pytest.approx(0.03, abs=2e-3)
    assert decide(checks) == ("holds" if outcome == "pass" else "fails")
