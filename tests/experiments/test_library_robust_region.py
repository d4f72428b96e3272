"""Experiment 1 (robust region) on its quick configuration: verdict, checks and figure; a planted
momentum error fails it and an unmeasurable grid makes it not applicable."""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments import reproduce
from experiments.library import robust_region
from experiments.record import Record
from optimizers import heavy_ball

EXPECTED = {
    "robust_points_measured": ("precondition", "pass"),
    "robust_rate_is_sqrt_mu": ("verification", "pass"),
    "outside_rate_is_larger_root": ("verification", "pass"),
}


def test_quick_run_holds_and_renders(tmp_path) -> None:
    exp = robust_region.EXPERIMENT
    rec = reproduce.run_experiment(exp, quick=True, seed=0, out=tmp_path)
    assert rec.verdict == "holds", rec.summary
    assert not rec.smoke
    assert "plot_error" not in rec.provenance
    png = (tmp_path / exp.name / "figure.png").read_bytes()
    assert png.startswith(b"\x89PNG") and (tmp_path / exp.name / "figure.svg").stat().st_size > 0

    back = Record.load(tmp_path / exp.name)
    assert {c.name: (c.kind, c.outcome) for c in back.checks} == EXPECTED
    assert [c.name for c in back.checks if c.headline] == ["robust_rate_is_sqrt_mu"]
    # Golden numbers: inside the robust region the measured rate is sqrt(mu) (the jackknife error
    # of the quick runs is <= 0.015 at mu = 0.25, where only ~40 steps reach the float64 floor).
    means = np.array(back.measurement["robust_mean_rate"], dtype=float)
    np.testing.assert_allclose(
        means, np.sqrt(robust_region.RobustRegionConfig.quick().mu_slices), atol=5e-3
    )
    assert back.measurement["points_measured"] >= 30
    assert back.measurement["outside_points"] >= 3
    assert back.measurement["robust_max_gap_over_stderr"] < 3.0
    # The map is the theory on the grid: sqrt(mu) at alpha*h = 1 (inside for every mu in [0, 1)).
    a, mu, rho = back.arrays["map_a"], back.arrays["map_mu"], back.arrays["map_rho"]
    j = int(np.argmin(np.abs(a - 1.0)))
    inside = ((1 - np.sqrt(mu)) ** 2 < a[j]) & (a[j] < (1 + np.sqrt(mu)) ** 2)
    np.testing.assert_allclose(rho[inside, j], np.sqrt(mu[inside]), rtol=1e-12)


def _small(**kwargs) -> robust_region.RobustRegionConfig:
    quick = robust_region.RobustRegionConfig.quick()
    return dataclasses.replace(quick, map_a=20, map_mu=10, points_per_slice=12, **kwargs)


def test_a_momentum_error_fails_the_verification(monkeypatch) -> None:
    # A heavy ball whose momentum is 3% low converges at sqrt(0.97 mu): the robust points leave
    # their jackknife tolerance and the verdict is "fails".
    monkeypatch.setattr(robust_region, "heavy_ball", lambda lr, m: heavy_ball(lr, 0.97 * m))
    rec = robust_region.run(_small(mu_slices=(0.5, 0.81)), seed=0)
    outcome = {c.name: c.outcome for c in rec.checks}
    assert outcome["robust_rate_is_sqrt_mu"] == "fail"
    assert rec.verdict == "fails", rec.summary


def test_too_few_measurable_points_is_not_applicable() -> None:
    # With rho_max below sqrt(mu) no robust point is measurable: the claim is not tested.
    rec = robust_region.run(_small(mu_slices=(0.81,), rho_max=0.85), seed=0)
    assert rec.checks[0].name == "robust_points_measured" and rec.checks[0].outcome == "fail"
    assert rec.verdict == "not applicable", rec.summary
