"""Smoke test of experiment 3 (constant rate on non-convex toys) on its quick configuration."""

from __future__ import annotations

import numpy as np
import pytest

from experiments import reproduce
from experiments.library import nonconvex_constant_rate as ncr
from experiments.record import Record


def test_quick_run_holds_and_renders(tmp_path) -> None:
    exp = ncr.EXPERIMENT
    rec = reproduce.run_experiment(exp, quick=True, seed=0, out=tmp_path)
    assert rec.verdict == "holds", rec.summary
    assert "plot_error" not in rec.provenance
    assert all(rec.measurement["checks"].values())
    png = (tmp_path / exp.name / "figure.png").read_bytes()
    assert png.startswith(b"\x89PNG") and (tmp_path / exp.name / "figure.svg").stat().st_size > 0

    back = Record.load(tmp_path / exp.name)
    cfg = ncr.NonconvexRateConfig.quick()
    # Theory's curvature range over the visited region is the toys' documented [h_min, h_max]
    # (self-similar toys: every shell attains both ends); the extremes are polished by a bounded
    # minimiser, hence 1e-9.
    np.testing.assert_allclose(back.arrays["range_smooth"], cfg.smooth_h, rtol=1e-9)
    np.testing.assert_allclose(back.arrays["range_stitched"], cfg.stitched_h, rtol=1e-9)
    sqrt_mu = np.sqrt(np.asarray(cfg.mus))
    for toy in ncr.TOYS:
        rate = back.arrays[f"rate_{toy}"]
        # det A_t = mu bounds the rate below by sqrt(mu); the jackknife errors of the quick runs
        # are <= 0.008, so the lower bound is checked with that slack, the claim's 2% above
        assert np.all(rate >= sqrt_mu - 0.01), (toy, rate)
        assert np.all(rate <= sqrt_mu * 1.02 + 4 * back.arrays[f"stderr_{toy}"]), (toy, rate)
    # the smooth toy, the claim's own case, stays within 1% (2.5 jackknife errors of <= 0.4%)
    np.testing.assert_allclose(back.arrays["rate_smooth"], sqrt_mu, rtol=1e-2)
    # the visited curvature stays in the robust interval (the premise, from the measurement side)
    s = np.sqrt(cfg.scan_mu)
    ah = back.arrays["visited_ah_smooth"]
    assert ah.size == cfg.steps + 1 and np.all(np.isfinite(ah))
    assert np.all(ah >= (1 - s) ** 2) and np.all(ah <= (1 + s) ** 2)
    m = back.measurement
    assert m["scan_fractions_with_robust_visited_curvature"] == {"smooth": 6, "stitched": 6}
    # The scan (not in the verdict). Between its ends lies a switch from converging to cycling
    # where a setting's outcome depends on float rounding (the stitched toy's third setting cycles
    # under jax 0.10 and converges under 0.11), so only the ends are asserted, each far from the
    # tolerance: the left end is YellowFin's alpha (in the verdict), and the right end misses
    # sqrt(mu) by more than twice its tolerance (measured: 8.5-10% on the stitched toy, 11% on the
    # smooth one, against a tolerance of 2%).
    for toy in ("smooth", "stitched"):
        rate, err = back.arrays[f"scan_rate_{toy}"], back.arrays[f"scan_stderr_{toy}"]
        tol = np.maximum(cfg.rel_tol, cfg.z_tol * err / s)
        dev = rate / s - 1.0
        keeps = np.asarray(m["scan_keeps_rate"][toy])
        np.testing.assert_array_equal(keeps, np.abs(dev) <= tol)
        assert keeps[0] and abs(dev[0]) <= tol[0], (toy, dev)
        assert dev[-1] > 2 * tol[-1], (toy, dev)
        assert m["scan_fractions_keeping_rate"][toy] == int(keeps.sum())
        # the lower bound sqrt(mu) (det A_t = mu) holds on every scan run, cycles included
        assert np.all(rate >= s * (1 - cfg.floor_rtol) - cfg.z_tol * err), (toy, rate)
    # a premise-holding setting misses sqrt(mu) (the right end), hence "not sufficient"
    assert m["robust_curvature_suffices_not_in_verdict"] == "fails"
    # the summary's lower-bound sentence comes from the check
    assert rec.summary.endswith(ncr.floor_text(m["checks"]["no_run_beats_sqrt_mu"]))


def test_floor_text_follows_the_check() -> None:
    assert ncr.floor_text(True) == "no run beats sqrt(mu)"
    assert "no run" not in ncr.floor_text(False) and "fails" in ncr.floor_text(False)


def test_visited_curvature_premise_uses_the_closed_robust_interval() -> None:
    # f(x) = x^2 (h = 2) at alpha = (1 - sqrt(mu))^2 / 2 sits on the left edge: the closed
    # interval includes it; a step 1e-6 shorter is outside (lazy)
    mu = 0.81

    def fp(x):
        return 2.0 * x

    x = np.array([5.0, -3.0, 1e-80])
    edge = (1 - np.sqrt(mu)) ** 2 / 2.0
    assert ncr.visits_only_robust(edge, mu, fp, 0.0, x)
    assert not ncr.visits_only_robust(edge * (1 - 1e-6), mu, fp, 0.0, x)
    assert ncr.visits_only_robust(3.0 * edge, mu, fp, 0.0, x)
    assert not ncr.visits_only_robust((1 + np.sqrt(mu)) ** 2 / 2.0 * (1 + 1e-6), mu, fp, 0.0, x)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"mus": (0.5, 1.2)}, "mus"),
        ({"scan_mu": 0.7}, "scan_mu"),
        ({"smooth_h": (2.0, 1.0)}, "smooth_h"),
        ({"stitched_ratio": 1.0}, "stitched_ratio"),
        ({"region": 0.5}, "region"),
    ],
)
def test_bad_config_names_the_parameter(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        ncr.NonconvexRateConfig(**kwargs)


def test_momentum_below_the_robust_minimum_is_rejected() -> None:
    # kappa = 9 needs mu >= ((3 - 1) / (3 + 1))^2 = 0.25 for a non-empty robust interval
    cfg = ncr.NonconvexRateConfig(mus=(0.2,), scan_mu=0.2, scan_points=2, steps=100)
    with pytest.raises(ValueError, match="mus"):
        ncr.run(cfg, 0)
