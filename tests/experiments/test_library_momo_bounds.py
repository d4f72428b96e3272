"""Smoke test of experiment 14 (momo-bounds) on its quick configuration: verdict and figure."""

from __future__ import annotations

import numpy as np

from experiments import reproduce
from experiments.library import momo_bounds
from experiments.record import Record


def test_quick_run_holds_and_renders(tmp_path) -> None:
    exp = momo_bounds.EXPERIMENT
    rec = reproduce.run_experiment(exp, quick=True, seed=0, out=tmp_path)
    assert rec.verdict == "holds", rec.summary
    assert "plot_error" not in rec.provenance
    assert all(rec.measurement["checks"].values())
    png = (tmp_path / exp.name / "figure.png").read_bytes()
    assert png.startswith(b"\x89PNG") and (tmp_path / exp.name / "figure.svg").stat().st_size > 0

    back = Record.load(tmp_path / exp.name)
    # Independent check of the certificate's accounting: on a quadratic minibatch loss with
    # f_B(x*) = 0 and beta = 0, the Polyak step tau = f_B / ||g||^2 shrinks ||x - x*||^2 by exactly
    # 3 tau f_B (expand ||e - tau H e||^2 with e^T H e = 2 f_B, ||H e||^2 = ||g||^2), three times
    # what the certificate claims. Where the cap is inactive the total slack
    # D^2 - sum tau f_B therefore tends to (2/3) D^2 from above as the run converges.
    total = back.measurement["certificate_total_min_over_D2"]
    assert 2.0 / 3.0 - 1e-9 <= total <= 0.70
    # The O(1/K) bound for beta = 0 is attained within two orders of magnitude at the end.
    beta0 = list(back.arrays["betas"]).index(0.0)
    ratio = back.arrays["f_xbar_mean"][beta0, :, -1] / back.arrays["bound"][beta0, :, -1]
    assert np.all(ratio <= 1.0) and np.max(ratio) > 1e-3
    # MoMo*: every run's estimate ends at the true f_* = 1 (the shift), from the floor 0.
    final = back.arrays["lower_bound_runs"][..., -1]
    np.testing.assert_allclose(final, 1.0, atol=0.05)
