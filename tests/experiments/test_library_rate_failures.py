"""Experiment 4 (where the sqrt(mu) rate fails) on its quick configuration: verdict, checks and
figure; a start outside the cycle's basin fails the reproduction and a tuning that leaves the
robust interval makes it not applicable."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from experiments import reproduce
from experiments.library import rate_failures
from experiments.record import Record

EXPECTED = {
    "curvature_in_robust_region": ("precondition", "pass"),
    "lessard_control_keeps_rate": ("verification", "pass"),
    "abrupt_control_keeps_rate": ("verification", "pass"),
    "lessard_limit_cycle_from_every_start": ("reproduction", "pass"),
    "abrupt_rate_misses_sqrt_mu": ("reproduction", "pass"),
}


def test_quick_run_holds_and_renders(tmp_path) -> None:
    exp = rate_failures.EXPERIMENT
    rec = reproduce.run_experiment(exp, quick=True, seed=0, out=tmp_path)
    assert rec.verdict == "holds", rec.summary
    assert not rec.smoke
    assert "plot_error" not in rec.provenance
    png = (tmp_path / exp.name / "figure.png").read_bytes()
    assert png.startswith(b"\x89PNG") and (tmp_path / exp.name / "figure.svg").stat().st_size > 0

    back = Record.load(tmp_path / exp.name)
    assert {c.name: (c.kind, c.outcome) for c in back.checks} == EXPECTED
    assert [c.name for c in back.checks if c.headline] == ["lessard_limit_cycle_from_every_start"]
    # Theory: the counterexample's generalised curvature range is [13, 25] (1 + 24/x on [1, 2),
    # 25 - 24/x beyond, 25 below 1), and the local rate at Polyak's tuning is sqrt(4/9) = 2/3.
    # h_min sits on the corner at x = 2, which the bounded minimiser locates to ~1e-8 relative.
    np.testing.assert_allclose(back.prediction["lessard_curvature_range"], [13.0, 25.0], rtol=1e-7)
    # h = 25 is the double root alpha*h = (1 + sqrt(mu))^2, where the radius moves like the square
    # root of the curvature's rounding (~1e-15 -> ~3e-8).
    assert back.prediction["lessard_local_rate"] == pytest.approx(2.0 / 3.0, rel=1e-6)
    # Every start in [3.07, 3.46] ends in the period-3 cycle of Lessard et al., whose point
    # nearest x* = 0 is 0.6465... (identical for every start: the cycle is an attractor).
    assert set(back.measurement["lessard_periods"]) == {3}
    np.testing.assert_allclose(back.measurement["lessard_min_tail_distance"], 0.64653061, rtol=1e-7)
    # ... while from x0 = 3 the same tuning converges, and the control quadratic keeps 2/3
    # (jackknife error ~1e-3 on ~70 steps down to the float64 floor).
    assert back.measurement["lessard_contrast_start"]["period"] == 0
    assert back.measurement["lessard_contrast_start"]["min_tail_distance"] < 1e-30
    assert back.measurement["lessard_control_rate"] == pytest.approx(2.0 / 3.0, rel=5e-3)
    # Abrupt toy at mu = 0.9: the local prediction is sqrt(mu) everywhere in the interval, the
    # control quadratic matches it to 0.1%, and the toy fails for most positions (one diverges).
    sqrt_mu = np.sqrt(0.9)
    np.testing.assert_allclose(back.arrays["abrupt_local_rate"], sqrt_mu, rtol=1e-12)
    np.testing.assert_allclose(back.arrays["abrupt_control_rate"], sqrt_mu, rtol=1e-3)
    assert back.arrays["abrupt_failed"].sum() >= 3
    assert back.arrays["abrupt_diverged"].any()


def _small(**kwargs) -> rate_failures.RateFailuresConfig:
    quick = rate_failures.RateFailuresConfig.quick()
    small = {"lessard_points": 2, "abrupt_fracs": (0.3, 0.7), "abrupt_steps": 600}
    return dataclasses.replace(quick, **{**small, **kwargs})


def test_starts_that_converge_fail_the_reproduction() -> None:
    # From x0 in [2.9, 3.0] the same tuning converges (outside the cycle's basin): the published
    # cycle is not reproduced there, and the verdict says so.
    rec = rate_failures.run(_small(lessard_x0=(2.9, 3.0)), seed=0)
    outcome = {c.name: c.outcome for c in rec.checks}
    assert outcome["lessard_limit_cycle_from_every_start"] == "fail"
    assert outcome["lessard_control_keeps_rate"] == "pass"
    assert rec.verdict == "fails", rec.summary


def test_curvature_outside_the_robust_interval_is_not_applicable(monkeypatch) -> None:
    # Heavy ball tuned with alpha = 1.3/9 (Polyak's tuning for a smaller L) has robust interval
    # h in [0.77, 19.2]: the counterexample's curvature 25 leaves it, a slower rate is then what
    # the spectral theory itself predicts, and the failures say nothing about the guarantee.
    real = rate_failures.lessard_counterexample

    def detuned() -> object:
        obj = real()
        info = tuple((k, (1.3 / 9.0, 4.0 / 9.0) if k == "tuning" else v) for k, v in obj.info)
        return dataclasses.replace(obj, info=info)

    monkeypatch.setattr(rate_failures, "lessard_counterexample", detuned)
    rec = rate_failures.run(_small(), seed=0)
    pre = next(c for c in rec.checks if c.name == "curvature_in_robust_region")
    assert pre.outcome == "fail" and pre.measured["lessard_robust"] is False
    assert rec.verdict == "not applicable", rec.summary


def test_limit_cycle_detector() -> None:
    cfg = rate_failures.RateFailuresConfig.quick()
    t = np.arange(200)
    cycle = np.tile([2.1, -1.8, 0.65], 67)[:200]
    assert rate_failures.limit_cycle(cycle, 0.0, cfg)[0] == 3
    assert rate_failures.limit_cycle(0.9**t, 0.0, cfg)[0] == 0  # converges: no cycle
    assert rate_failures.limit_cycle(1.0 + 0.5 * np.sin(0.1 * np.sqrt(2) * t), 0.0, cfg)[0] == 0
    assert rate_failures.limit_cycle(np.full(200, 5.0), 0.0, cfg)[0] == 1  # a spurious fixed point


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lessard_x0": (3.5, 3.0)}, "lessard_x0"),
        ({"abrupt_fracs": (0.0, 0.5)}, "abrupt_fracs"),
        ({"abrupt_mu": 1.0}, "abrupt_mu"),
        ({"abrupt_h": (1.0, 1e6)}, "abrupt_h"),
        ({"control_h": (-1.0,)}, "control_h"),
    ],
)
def test_bad_config_names_the_parameter(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        rate_failures.RateFailuresConfig(**kwargs)
