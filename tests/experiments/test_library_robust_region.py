"""Smoke test of experiment 1 (robust region) on its quick configuration: verdict and figure."""

from __future__ import annotations

import numpy as np

from experiments import reproduce
from experiments.library import robust_region
from experiments.record import Record


def test_quick_run_holds_and_renders(tmp_path) -> None:
    exp = robust_region.EXPERIMENT
    rec = reproduce.run_experiment(exp, quick=True, seed=0, out=tmp_path)
    assert rec.verdict == "holds", rec.summary
    assert "plot_error" not in rec.provenance
    png = (tmp_path / exp.name / "figure.png").read_bytes()
    assert png.startswith(b"\x89PNG") and (tmp_path / exp.name / "figure.svg").stat().st_size > 0

    back = Record.load(tmp_path / exp.name)
    # Golden numbers: inside the robust region the measured rate is sqrt(mu) (the jackknife error
    # of the quick runs is <= 0.02 at mu = 0.25, where only ~40 steps reach the float64 floor).
    means = np.array(back.measurement["robust_mean_rate"], dtype=float)
    np.testing.assert_allclose(
        means, np.sqrt(robust_region.RobustRegionConfig.quick().mu_slices), atol=5e-3
    )
    assert back.measurement["points_measured"] >= 30
    # The map is the theory on the grid: sqrt(mu) at alpha*h = 1 (inside for every mu in [0, 1)).
    a, mu, rho = back.arrays["map_a"], back.arrays["map_mu"], back.arrays["map_rho"]
    j = int(np.argmin(np.abs(a - 1.0)))
    inside = ((1 - np.sqrt(mu)) ** 2 < a[j]) & (a[j] < (1 + np.sqrt(mu)) ** 2)
    np.testing.assert_allclose(rho[inside, j], np.sqrt(mu[inside]), rtol=1e-12)
