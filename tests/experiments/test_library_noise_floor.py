"""Experiment 6 (noise floor) on its quick configuration: verdict, checks and figure; a misstated
floor fails it and a run too short to resolve a 2% error is unresolved."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import theory
from experiments import reproduce
from experiments.library import noise_floor
from experiments.record import Record


def test_quick_run_holds_and_renders(tmp_path) -> None:
    exp = noise_floor.EXPERIMENT
    rec = reproduce.run_experiment(exp, quick=True, seed=0, out=tmp_path)
    assert rec.verdict == "holds", rec.summary
    assert not rec.smoke
    assert "plot_error" not in rec.provenance
    png = (tmp_path / exp.name / "figure.png").read_bytes()
    assert png.startswith(b"\x89PNG") and (tmp_path / exp.name / "figure.svg").stat().st_size > 0

    back = Record.load(tmp_path / exp.name)
    assert {c.name: (c.kind, c.outcome) for c in back.checks} == {
        "floor_1d_matches_closed_form": ("verification", "pass"),
        "nqm_floor_matches_sum": ("verification", "pass"),
    }
    assert [c.name for c in back.checks if c.headline] == ["floor_1d_matches_closed_form"]
    arr = back.arrays
    cfg = noise_floor.NoiseFloorConfig.quick()
    # The prediction is the closed form on the grid (mu = 0: alpha c / (2 (2 - alpha h))).
    a0 = arr["alpha_h"][:, 0] / cfg.h
    np.testing.assert_allclose(arr["pred"][:, 0], a0 * cfg.c / (2 * (2 - a0 * cfg.h)), rtol=1e-12)
    h, c = theory.nqm_spectrum(cfg.nqm_dim, cfg.nqm_p, cfg.nqm_batch)
    np.testing.assert_allclose(
        arr["nqm_pred"][0, 0], theory.nqm_floor(cfg.nqm_alphas[0], cfg.nqm_mus[0], h, c)
    )
    # Quick runs resolve every floor to 0.5% (between-seed standard error) and the acceptance
    # band (3.97 stderr: Student t, 31 dof, Bonferroni over 25 points at 1%) stays inside 2%
    # (golden: quick seed 0 has worst gap 0.8%, largest |gap|/stderr 2.6, widest band 1.75%).
    assert back.measurement["max_rel_stderr"] < 0.005
    assert back.measurement["max_abs_rel_error"] < 0.012
    assert back.tolerance["threshold_stderr"] == pytest.approx(3.97, abs=0.01)
    # Gaussian x: the loss h x^2 / 2 and E x^2 are tied exactly, record by record.
    np.testing.assert_allclose(arr["meas"], 0.5 * cfg.h * arr["meas_var"], rtol=1e-10)
    # YellowFin's surrogate is an approximation: it is off by a factor > 1.5 somewhere on the grid.
    ratio = np.asarray(back.measurement["yellowfin_surrogate_over_exact_variance"], dtype=float)
    assert np.max(np.abs(np.log(ratio))) > np.log(1.5)


def _small(**kwargs) -> noise_floor.NoiseFloorConfig:
    return dataclasses.replace(
        noise_floor.NoiseFloorConfig.quick(), alpha_h=(0.4,), mus=(0.5,), nqm_dim=4,
        nqm_alphas=(0.6,), nqm_mus=(0.5,), steps=1000, **kwargs,
    )  # fmt: skip


def test_a_wrong_prediction_is_reported_as_fails(monkeypatch) -> None:
    # The verdict can fail: a floor misstated by 5% is ~10 standard errors off with 8 seeds.
    real = theory.stationary_loss
    monkeypatch.setattr(noise_floor.theory, "stationary_loss", lambda *a: 1.05 * real(*a))
    rec = noise_floor.run(_small(seeds=8), seed=1)
    outcome = {c.name: c.outcome for c in rec.checks}
    assert outcome["floor_1d_matches_closed_form"] == "fail"
    assert rec.verdict == "fails", rec.summary


def test_two_seeds_cannot_resolve_the_floor() -> None:
    # With 2 seeds the t threshold (1 dof) is ~127 stderr: every gap is inside a band far wider
    # than 2% of the floor, so the checks are unresolved, not passed.
    rec = noise_floor.run(_small(seeds=2), seed=1)
    assert {c.outcome for c in rec.checks} == {"unresolved"}
    assert rec.verdict == "unresolved", rec.summary


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seeds", 1),
        ("mus", (0.0, 1.0)),
        ("alpha_h", (0.5, 2.5)),
        ("nqm_alphas", (0.0,)),
        ("steps", 100),
    ],
)
def test_bad_config_raises(field: str, value: object) -> None:
    cfg = dataclasses.replace(noise_floor.NoiseFloorConfig.quick(), **{field: value})
    with pytest.raises(ValueError, match=field.split("_")[0]):
        noise_floor.run(cfg, seed=0)
