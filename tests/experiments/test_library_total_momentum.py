"""Smoke test of experiment 9 (total momentum sync vs async) on its quick configuration."""

from __future__ import annotations

import numpy as np

from experiments import reproduce
from experiments.library import total_momentum
from experiments.record import Record


def test_quick_run_holds_and_renders(tmp_path) -> None:
    exp = total_momentum.EXPERIMENT
    rec = reproduce.run_experiment(exp, quick=True, seed=0, out=tmp_path)
    assert rec.verdict == "holds", rec.summary
    assert "plot_error" not in rec.provenance
    assert all(rec.measurement["checks"].values())
    png = (tmp_path / exp.name / "figure.png").read_bytes()
    assert png.startswith(b"\x89PNG") and (tmp_path / exp.name / "figure.svg").stat().st_size > 0

    back = Record.load(tmp_path / exp.name)
    mus = back.arrays["mus"]
    # first order 1 - (1 - mu)/16, computed here by hand
    np.testing.assert_allclose(back.arrays["first_order"], 1 - (1 - mus) / 16, rtol=1e-12)
    # synchronous readings are the algorithmic momentum up to float32 rounding
    np.testing.assert_allclose(back.arrays["sim_sync_algo"], mus, atol=1e-4)
    np.testing.assert_allclose(back.arrays["net_sync"], mus, atol=1e-4)
    # with the algorithm's step and the applied gradient the sensor reads mu_L under asynchrony
    # too: the convention, not the asynchrony, decides what is measured
    np.testing.assert_allclose(back.arrays["sim_async_algo"], mus, atol=1e-3)
    # asynchronous simulator readings: above 0.93 for 16 workers whatever mu_L
    assert np.all(back.arrays["sim_async_total"] > 0.93)
    # the sensor's step bias is real and shrinks with the step: halving alpha moves the reading
    # towards first order (golden, seed 0: gap 0.016 -> 0.004 at mu_L = 0, 0.005 -> -0.001 at 0.5)
    first = back.arrays["first_order"]
    gap, gap_half = (
        np.abs(back.arrays[k] - first) for k in ("sim_async_total", "sim_async_total_half")
    )
    assert np.all(gap_half < gap)
    np.testing.assert_allclose(back.arrays["sim_async_total"], [0.9533, 0.9736], atol=2e-3)
    # the comparison with first order is made on the reading extrapolated to alpha -> 0, with an
    # allowance of 4 standard errors of that value + 0.005, whatever the step bias measured
    m = back.measurement
    r, r_half = back.arrays["sim_async_total"], back.arrays["sim_async_total_half"]
    se, se_half = back.arrays["sim_async_total_se"], back.arrays["sim_async_total_half_se"]
    zero = back.arrays["sim_async_total_zero_step"]
    np.testing.assert_allclose(zero, (4 * r_half - r) / 3, rtol=1e-12)
    zero_se = back.arrays["sim_async_total_zero_step_se"]
    np.testing.assert_allclose(zero_se, np.hypot(4 * se_half, se) / 3, rtol=1e-12)
    np.testing.assert_allclose(m["sim_async_allowed_gap"], 4 * zero_se + 0.005, rtol=1e-12)
    # measured (seed 0): the extrapolated values lie 0.0003 and 0.0029 from first order
    np.testing.assert_allclose(zero, first, atol=0.004)


def test_step_extrapolation_removes_a_quadratic_step_bias() -> None:
    r0, c, alpha = 0.9375, 3.0, 0.1
    est, se = total_momentum.step_extrapolation(
        np.array(r0 + c * alpha**2), np.array(r0 + c * (alpha / 2) ** 2), 0.003, 0.001
    )
    np.testing.assert_allclose(est, r0, rtol=1e-14)
    np.testing.assert_allclose(se, np.hypot(0.004, 0.003) / 3, rtol=1e-14)
    # a linear bias is reduced to a third, with the sign kept
    est, _ = total_momentum.step_extrapolation(r0 + c * alpha, r0 + c * alpha / 2, 0.0, 0.0)
    np.testing.assert_allclose(est - r0, c * alpha / 3, rtol=1e-12)


def test_a_reading_moving_away_as_the_step_halves_is_not_admitted() -> None:
    # r(alpha) 0.01 and r(alpha/2) 0.02 above first order: the bias grows as the step shrinks.
    # The extrapolation lands 0.0233 above first order, far outside 4 SE + 0.005; an allowance
    # built from 2 |r(alpha) - r(alpha/2)| would have admitted the reading (0.01 <= 0.02 + ...).
    first = 0.96875
    est, se = total_momentum.step_extrapolation(first + 0.01, first + 0.02, 5e-4, 5e-4)
    np.testing.assert_allclose(est - first, 0.07 / 3, rtol=1e-12)
    assert abs(est - first) > 4 * se + total_momentum.TotalMomentumConfig().total_tol
