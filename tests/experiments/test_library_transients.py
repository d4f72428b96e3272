"""Experiment 5 (transients) on its quick configuration: verdict, checks and figure; a planted
momentum error fails it and a horizon shorter than the peak makes it not applicable."""

from __future__ import annotations

import numpy as np
import pytest

from experiments import reproduce
from experiments.library import transients
from experiments.record import Record
from optimizers import heavy_ball

EXPECTED = {
    "horizon_covers_peak": ("precondition", "pass"),
    "simulation_equals_closed_form": ("verification", "pass"),
    "matched_start_below_chebyshev_bound": ("verification", "pass"),
    "peak_matches_theory": ("verification", "pass"),
    "zero_velocity_peak_above_1": ("reproduction", "pass"),
    "peak_scales_like_sqrt_kappa": ("reproduction", "pass"),
}


def test_quick_run_holds_and_renders(tmp_path) -> None:
    exp = transients.EXPERIMENT
    rec = reproduce.run_experiment(exp, quick=True, seed=0, out=tmp_path)
    assert rec.verdict == "holds", rec.summary
    assert not rec.smoke
    assert "plot_error" not in rec.provenance
    png = (tmp_path / exp.name / "figure.png").read_bytes()
    assert png.startswith(b"\x89PNG") and (tmp_path / exp.name / "figure.svg").stat().st_size > 0

    back = Record.load(tmp_path / exp.name)
    assert {c.name: (c.kind, c.outcome) for c in back.checks} == EXPECTED
    assert [c.name for c in back.checks if c.headline] == ["peak_scales_like_sqrt_kappa"]
    # Golden numbers of the zero-velocity peak at Polyak's tuning, kappa = 10, 100, 1000
    # (closed-form gains maximised over t and a fine curvature grid; 3 significant digits), and
    # its slope over the top decade (the closed form tends to sqrt(kappa) / e).
    np.testing.assert_allclose(back.arrays["peak_measured"], [1.309, 3.707, 11.64], rtol=1e-3)
    assert back.measurement["peak_slope_top_decade"] == pytest.approx(0.4971, abs=1e-4)
    # The matched start attains the Chebyshev bound (at the lazy edge h_min) without exceeding it.
    ratio = back.arrays["sup_gain_matched"] / back.arrays["chebyshev_bound"]
    assert 0.999 <= ratio.max() <= 1.0 + 1e-9


def test_a_momentum_error_fails_the_verification(monkeypatch) -> None:
    # A heavy ball whose momentum is 3% low no longer follows the closed-form gains.
    monkeypatch.setattr(transients, "heavy_ball", lambda lr, m: heavy_ball(lr, 0.97 * m))
    cfg = transients.TransientsConfig(kappas=(10.0, 100.0), directions=16, steps=60)
    rec = transients.run(cfg, seed=0)
    outcome = {c.name: c.outcome for c in rec.checks}
    assert outcome["simulation_equals_closed_form"] == "fail"
    assert rec.verdict == "fails", rec.summary


def test_a_horizon_shorter_than_the_peak_is_not_applicable() -> None:
    # At kappa = 1000 the zero-velocity peak comes at step 15: ten steps cannot measure it.
    cfg = transients.TransientsConfig(kappas=(100.0, 1000.0), directions=16, steps=10)
    rec = transients.run(cfg, seed=0)
    assert {c.name: c.outcome for c in rec.checks}["horizon_covers_peak"] == "fail"
    assert rec.verdict == "not applicable", rec.summary


@pytest.mark.parametrize("kappas", [(10.0,), (100.0, 10.0), (1.0, 10.0)])
def test_bad_kappas_raise(kappas: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="kappas"):
        transients.TransientsConfig(kappas=kappas)
