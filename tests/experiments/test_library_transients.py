"""Smoke test of experiment 5 (transients) on its quick configuration: verdict and figure."""

from __future__ import annotations

import numpy as np

from experiments import reproduce
from experiments.library import transients
from experiments.record import Record


def test_quick_run_holds_and_renders(tmp_path) -> None:
    exp = transients.EXPERIMENT
    rec = reproduce.run_experiment(exp, quick=True, seed=0, out=tmp_path)
    assert rec.verdict == "holds", rec.summary
    assert "plot_error" not in rec.provenance
    assert all(rec.measurement["checks"].values())
    png = (tmp_path / exp.name / "figure.png").read_bytes()
    assert png.startswith(b"\x89PNG") and (tmp_path / exp.name / "figure.svg").stat().st_size > 0

    back = Record.load(tmp_path / exp.name)
    # Golden numbers of the zero-velocity peak at Polyak's tuning, kappa = 10, 100, 1000
    # (closed-form gains maximised over t and a fine curvature grid; 3 significant digits).
    np.testing.assert_allclose(back.arrays["peak_measured"], [1.309, 3.707, 11.64], rtol=1e-3)
    # The matched start attains the Chebyshev bound (at the lazy edge h_min) without exceeding it.
    ratio = back.arrays["sup_gain_matched"] / back.arrays["chebyshev_bound"]
    assert 0.999 <= ratio.max() <= 1.0 + 1e-9
