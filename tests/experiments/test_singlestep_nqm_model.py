"""The oracle model of singlestep-yellowfin-nqm against closed forms and direct sampling."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from scipy.special import gammaln

import theory
from experiments.library import _singlestep_nqm_model as model
from experiments.library import _singlestep_nqm_runs as runs


def test_stationary_moments_are_the_fixed_point_of_the_second_moment_recursion() -> None:
    h, c = theory.nqm_spectrum(6, 1.0, 4)
    m = model.stationary_moments(0.7, 0.4, h, c)
    np.testing.assert_allclose(m[:, 0], theory.stationary_variance(0.7, 0.4, h, c), rtol=1e-12)
    # one more step of p <- T p + alpha^2 c (1, 1, 1) leaves them unchanged
    t_op = theory.second_moment_operator(0.7, 0.4, h)
    again = np.einsum("kij,kj->ki", t_op, m) + (0.49 * c)[:, None]
    np.testing.assert_allclose(again, m, rtol=1e-12)
    with pytest.raises(ValueError, match="alpha"):
        model.stationary_moments(5.0, 0.4, h, c)


@pytest.mark.parametrize("k", [1, 3, 10])
def test_expected_norm_of_equal_weights_is_the_chi_mean(k: int) -> None:
    # Q = s2 chi2_k: E sqrt(Q) = sqrt(2 s2) Gamma((k+1)/2) / Gamma(k/2)
    s2 = 0.3
    exact = math.sqrt(2 * s2) * math.exp(gammaln((k + 1) / 2) - gammaln(k / 2))
    assert model.expected_norm(np.full(k, s2)) == pytest.approx(exact, rel=1e-8)


def test_expected_norm_of_unequal_weights_matches_sampling() -> None:
    s2 = np.array([1.0, 0.2, 0.05, 0.01])
    z = np.random.default_rng(0).standard_normal((400_000, 4))
    sampled = float(np.mean(np.sqrt(np.sum(s2 * z * z, axis=1))))
    assert model.expected_norm(s2) == pytest.approx(sampled, rel=3e-3)
    assert model.expected_norm(s2) < math.sqrt(s2.sum())  # Jensen


def test_window_of_one_sample_has_equal_extremes_and_wider_windows_spread() -> None:
    h, c = theory.nqm_spectrum(8, 1.0, 16)
    lo1, hi1, _ = model.window_extremes(0.5, 0.5, h, c, window=1, samples=3000)
    assert lo1 == pytest.approx(hi1, rel=1e-12)
    lo, hi, clipped = model.window_extremes(0.5, 0.5, h, c, window=20, samples=3000)
    assert lo < lo1 < hi and 0.0 < clipped < 0.2
    r = model.oracle_readings(0.5, 0.5, h, c, samples=3000)
    assert r["h_min"] < r["grad_var"] < r["h_max"]
    assert r["dist_to_opt"] < r["inv_sqrt_mean_sq"]
    assert r["floor"] == pytest.approx(float(theory.nqm_floor(0.5, 0.5, h, c)))


def test_window_extremes_match_a_direct_stationary_simulation() -> None:
    # Run the recursion long enough to be stationary, then read windows of 20 (numpy).
    h, c = theory.nqm_spectrum(4, 1.0, 16)
    alpha, mu, w = 0.8, 0.3, 20
    rng = np.random.default_rng(1)
    n = 4000
    y = np.zeros((n, 4))
    v = np.zeros((n, 4))
    for _ in range(400):
        g = h * y + np.sqrt(c) * rng.standard_normal((n, 4))
        y_new = y + mu * v - alpha * g
        v, y = y_new - y, y_new
    q = []
    for _ in range(w):
        g = h * y + np.sqrt(c) * rng.standard_normal((n, 4))
        q.append(np.sum(g * g, axis=1))
        y_new = y + mu * v - alpha * g
        v, y = y_new - y, y_new
    q = np.array(q)
    lo, hi, _ = model.window_extremes(alpha, mu, h, c, window=w, samples=n, seed=2)
    assert lo == pytest.approx(float(np.exp(np.mean(np.log(q.min(0) + 1e-6)))), rel=0.05)
    assert hi == pytest.approx(float(np.exp(np.mean(np.log(q.max(0) + 1e-6)))), rel=0.03)


def test_fixed_point_is_self_consistent() -> None:
    h, c = theory.nqm_spectrum(8, 1.0, 16)
    alpha, mu, r = model.proxy_fixed_point(h, c, samples=500)
    mu2, a2 = theory.singlestep(
        r["grad_var"] + 1e-6, r["dist_to_opt"] + 1e-6, r["h_min"] + 1e-6, r["h_max"] + 1e-6
    )
    assert float(mu2) == pytest.approx(mu, abs=1e-5)
    assert float(a2) == pytest.approx(alpha, rel=1e-5)
    with pytest.raises(ValueError, match="iters"):
        model.proxy_fixed_point(h, c, samples=500, iters=1)


@pytest.mark.parametrize("module", [model, runs])
def test_docstring_examples_run(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
