"""Generalised curvature against analytic curvatures and dense brute-force grids."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from theory import curvature_range, generalized_curvature, robust_on_interval, spectral_radius


def lessard_grad(x: np.ndarray) -> np.ndarray:
    """Lessard-Recht-Packard (2016) counterexample: m = 1, L = 25, minimiser 0."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x < 1.0, 25.0 * x, np.where(x < 2.0, x + 24.0, 25.0 * x - 24.0))


@settings(max_examples=100, deadline=None)
@given(st.floats(0.1, 10.0), st.floats(-5.0, 5.0), st.floats(-3.0, 3.0))
def test_quadratic_has_constant_curvature(h: float, x_star: float, lo: float) -> None:
    fprime = lambda x: h * (x - x_star)  # noqa: E731
    xs = np.linspace(lo, lo + 4.0, 33)
    # h (x - x*) below the normal range is rounded by the callable itself (lo = 5e-324, x* = 0
    # gives f'(lo) = 1e-323, "curvature" 2), which no method can undo: keep such points out.
    assume(np.all((xs == x_star) | (np.abs(xs - x_star) > 1e-290)))
    got = generalized_curvature(fprime, x_star, xs)
    # h (x - x*) / (x - x*) is h up to two roundings (subtraction is exact only sometimes)
    away = xs != x_star
    np.testing.assert_allclose(got[away], h, rtol=1e-12)
    # at x = x* a central difference with step eps^(1/3): rounding error ~ eps^(2/3) ~ 4e-11
    np.testing.assert_allclose(got[~away], h, rtol=1e-10)
    h_min, h_max = curvature_range(fprime, x_star, lo, lo + 4.0)
    np.testing.assert_allclose([h_min, h_max], h, rtol=1e-10)


def test_quartic_range_and_limit_at_the_minimiser() -> None:
    fprime = lambda x: x + x**3  # noqa: E731  f = x^2/2 + x^4/4, h(x) = 1 + x^2
    xs = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    # at x* the value is a central difference of f' with step eps^(1/3): truncation ~ eps^(2/3)
    np.testing.assert_allclose(generalized_curvature(fprime, 0.0, xs), 1.0 + xs**2, rtol=1e-9)
    h_min, h_max = curvature_range(fprime, 0.0, -1.0, 2.0, n=101)
    np.testing.assert_allclose([h_min, h_max], [1.0, 5.0], rtol=1e-9)


def test_range_refinement_beats_the_grid() -> None:
    # h(x) = 2 + cos(7 x) on a coarse grid: the polished extrema are 1 and 3 (brute force below)
    fprime = lambda x: (2.0 + np.cos(7.0 * x)) * x  # noqa: E731
    h_min, h_max = curvature_range(fprime, 0.0, 0.05, 2.0, n=15)
    dense = generalized_curvature(fprime, 0.0, np.linspace(0.05, 2.0, 2_000_001))
    # Brent's bounded search stops at xatol ~ 1e-12; near a smooth extremum the value is then
    # within ~ h'' xatol^2 of it, and the dense grid is within h'' (1e-6)^2 / 8
    np.testing.assert_allclose([h_min, h_max], [dense.min(), dense.max()], atol=1e-10)
    np.testing.assert_allclose([h_min, h_max], [1.0, 3.0], atol=1e-12)


def test_lessard_function_curvature_range_and_robustness() -> None:
    h_min, h_max = curvature_range(lessard_grad, 0.0, -5.0, 5.0)
    dense = generalized_curvature(lessard_grad, 0.0, np.linspace(-5.0, 5.0, 1_000_001))
    np.testing.assert_allclose([h_min, h_max], [13.0, 25.0], rtol=1e-12)
    np.testing.assert_allclose([h_min, h_max], [dense.min(), dense.max()], rtol=1e-12)
    # quadratic-optimal tuning for m = 1, L = 25: alpha = 1/9, mu = 4/9; edges 1/9 and 25/9, and
    # alpha h(x) in [13/9, 25/9] keeps every local operator at radius sqrt(mu) = 2/3
    assert robust_on_interval(1 / 9, 4 / 9, lessard_grad, 0.0, -5.0, 5.0)
    hs = np.linspace(h_min, h_max * (1 - 1e-12), 50)
    np.testing.assert_allclose(spectral_radius(1 / 9, 4 / 9, hs), 2 / 3, rtol=1e-7)
    # a larger step pushes the steepest part into the over-step side
    assert not robust_on_interval(0.12, 4 / 9, lessard_grad, 0.0, -5.0, 5.0)


def test_robust_on_interval_matches_a_brute_force_check() -> None:
    fprime = lambda x: x + x**3  # noqa: E731  h in [1, 1 + max x^2]
    rng = np.random.default_rng(3)
    for _ in range(40):
        alpha, mu = rng.uniform(0.05, 1.5), rng.uniform(0.0, 0.95)
        lo, hi = -rng.uniform(0.1, 2.0), rng.uniform(0.1, 2.0)
        a = alpha * generalized_curvature(fprime, 0.0, np.linspace(lo, hi, 20_001))
        s = np.sqrt(mu)
        brute = bool(np.all(((1 - s) ** 2 <= a) & (a <= (1 + s) ** 2)))
        margin = min(abs(a.min() - (1 - s) ** 2), abs(a.max() - (1 + s) ** 2))
        if margin > 1e-6:  # away from ties the answers must agree
            assert robust_on_interval(alpha, mu, fprime, 0.0, lo, hi) == brute


def test_non_positive_curvature_is_never_robust() -> None:
    fprime = lambda x: x - x**3  # noqa: E731  h = 1 - x^2 < 0 for |x| > 1
    assert not robust_on_interval(0.5, 0.5, fprime, 0.0, -2.0, 2.0)
    assert curvature_range(fprime, 0.0, -2.0, 2.0)[0] < 0


def test_scalar_only_callable() -> None:
    fprime = lambda x: math.sin(x)  # noqa: E731  h = sin(x)/x, f = 1 - cos(x)
    h = generalized_curvature(fprime, 0.0, [0.5, 1.0])
    np.testing.assert_allclose(h, np.sin([0.5, 1.0]) / [0.5, 1.0], rtol=1e-15)
    assert float(generalized_curvature(fprime, 0.0, 0.0)) == pytest.approx(1.0, rel=1e-9)
    h_min, h_max = curvature_range(fprime, 0.0, 0.0, 1.0, n=11)
    np.testing.assert_allclose([h_min, h_max], [np.sin(1.0), 1.0], rtol=1e-9)


@pytest.mark.parametrize(
    ("call", "name", "valid"),
    [
        (lambda: generalized_curvature(np.sin, np.nan, 1.0), "x_star", "finite real number"),
        (lambda: generalized_curvature(np.sin, 0.0, [1.0, np.inf]), "x", "finite real number"),
        (lambda: generalized_curvature(lambda x: x * np.nan, 0.0, 1.0), "fprime", "finite values"),
        (lambda: generalized_curvature(3.0, 0.0, 1.0), "fprime", "a callable"),
        (lambda: curvature_range(np.sin, 0.0, 1.0, 1.0), "lo", "(-inf, hi)"),
        (lambda: robust_on_interval(0.1, 0.5, np.sin, 0.0, 2.0, 1.0), "lo", "(-inf, hi)"),
        (lambda: curvature_range(np.sin, 0.0, 0.0, 1.0, n=1), "n", "an integer in [2, 1000000]"),
        (lambda: robust_on_interval(0.0, 0.5, np.sin, 0.0, 0.0, 1.0), "alpha", "(0, inf)"),
        (lambda: robust_on_interval(0.1, 1.0, np.sin, 0.0, 0.0, 1.0), "mu", "[0, 1)"),
    ],
)
def test_bad_input_names_the_parameter_and_its_range(call, name: str, valid: str) -> None:
    """The message starts with the parameter's name and states the valid range."""
    with pytest.raises(ValueError, match=rf"^{re.escape(name)}\b") as info:
        call()
    assert valid in str(info.value), str(info.value)


def test_numeric_arguments_broadcast_and_the_callable_is_shared() -> None:
    """x_star, lo, hi (and alpha, mu) broadcast; each element equals the scalar call."""
    fprime = lambda x: x + x**3  # noqa: E731  h(x) = 1 + x^2 for x* = 0
    his = np.array([[1.0], [2.0]])
    los = np.array([-1.0, 0.0, 0.5])
    h_min, h_max = curvature_range(fprime, 0.0, los, his, n=51)
    assert h_min.shape == h_max.shape == (2, 3)
    for i, j in np.ndindex(2, 3):
        want = curvature_range(fprime, 0.0, float(los[j]), float(his[i, 0]), n=51)
        assert (h_min[i, j], h_max[i, j]) == want
        assert isinstance(want[0], float)
    np.testing.assert_allclose(h_max[:, 0], 1.0 + his[:, 0] ** 2, rtol=1e-9)
    alphas = np.array([0.3, 0.7])
    got = robust_on_interval(alphas, [[0.5], [0.9]], fprime, 0.0, -1.0, 2.0, n=51)
    assert got.shape == (2, 2) and got.dtype == np.bool_
    for i, j in np.ndindex(2, 2):
        mu = (0.5, 0.9)[i]
        assert got[i, j] == robust_on_interval(alphas[j], mu, fprime, 0.0, -1.0, 2.0, n=51)
    assert got.tolist() == [[True, False], [True, True]]


def test_shape_mismatch_names_the_parameters() -> None:
    with pytest.raises(ValueError, match=r"^x_star, lo, hi must have broadcastable shapes"):
        curvature_range(np.sin, 0.0, [0.0, 1.0], [2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match=r"^alpha, mu, x_star, lo, hi must have broadcastable"):
        robust_on_interval([0.1, 0.2], [0.5, 0.6, 0.7], np.sin, 0.0, 0.0, 1.0)
    # the same check and message in both functions, on the first bad pair after broadcasting
    with pytest.raises(ValueError, match=r"^lo must lie in \(-inf, hi\) \(got lo=2, hi=2\)"):
        curvature_range(np.sin, 0.0, [0.0, 2.0], 2.0)
    with pytest.raises(ValueError, match=r"^lo must lie in \(-inf, hi\) \(got lo=3, hi=1\)"):
        robust_on_interval(0.1, 0.5, np.sin, 0.0, [[0.0], [3.0]], [1.0, 2.0])
