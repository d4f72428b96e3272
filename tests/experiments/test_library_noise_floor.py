"""Smoke test of experiment 6 (noise floor) on its quick configuration: verdict and figure."""

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
    assert "plot_error" not in rec.provenance
    png = (tmp_path / exp.name / "figure.png").read_bytes()
    assert png.startswith(b"\x89PNG") and (tmp_path / exp.name / "figure.svg").stat().st_size > 0

    back = Record.load(tmp_path / exp.name)
    arr = back.arrays
    cfg = noise_floor.NoiseFloorConfig.quick()
    # The prediction is the closed form on the grid (mu = 0: alpha c / (2 (2 - alpha h))).
    a0 = arr["alpha_h"][:, 0] / cfg.h
    np.testing.assert_allclose(arr["pred"][:, 0], a0 * cfg.c / (2 * (2 - a0 * cfg.h)), rtol=1e-12)
    h, c = theory.nqm_spectrum(cfg.nqm_dim, cfg.nqm_p, cfg.nqm_batch)
    np.testing.assert_allclose(
        arr["nqm_pred"][0, 0], theory.nqm_floor(cfg.nqm_alphas[0], cfg.nqm_mus[0], h, c)
    )
    # Quick runs resolve every floor to better than 1% (between-seed standard error), and the
    # measurements sit well inside the 2% band (golden bound: the quick seed-0 worst gap is 0.6%).
    assert back.measurement["max_rel_stderr"] < 0.01
    assert back.measurement["max_abs_rel_error"] < 0.015
    # Gaussian x: the loss h x^2 / 2 and E x^2 are tied exactly, record by record.
    np.testing.assert_allclose(arr["meas"], 0.5 * cfg.h * arr["meas_var"], rtol=1e-10)
    # YellowFin's surrogate is an approximation: it is off by a factor > 1.5 somewhere on the grid.
    ratio = np.asarray(back.measurement["yellowfin_surrogate_over_exact_variance"], dtype=float)
    assert np.max(np.abs(np.log(ratio))) > np.log(1.5)


def test_a_wrong_prediction_is_reported_as_fails(monkeypatch) -> None:
    # The verdict can fail: with the floor misstated by 5% every point leaves the 2% band.
    real = theory.stationary_loss
    monkeypatch.setattr(noise_floor.theory, "stationary_loss", lambda *a: 1.05 * real(*a))
    cfg = dataclasses.replace(
        noise_floor.NoiseFloorConfig.quick(), alpha_h=(0.4,), mus=(0.5,), nqm_dim=4,
        nqm_alphas=(0.6,), nqm_mus=(0.5,), steps=1000, seeds=4,
    )  # fmt: skip
    rec = noise_floor.run(cfg, seed=1)
    assert rec.verdict == "fails", rec.summary


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
