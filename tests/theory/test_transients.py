"""Finite-step gains against matrix powers (float64, 40 digits), the Chebyshev bound, simulation."""

from __future__ import annotations

import re

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import (
    chebyshev_bound,
    error_gain,
    peak_transient,
    polyak_tuning,
    spectral_radius,
    transition_matrix,
)

EPS = np.finfo(np.float64).eps
STARTS = ["zero_velocity", "matched"]


def start_state(start: str, a: float, mu: float) -> tuple[float, float]:
    """(e_0, e_{-1}): zero velocity, or the x_{-1} that gives x_1 = x_0 - alpha g / (1 + mu)."""
    return (1.0, 1.0) if start == "zero_velocity" else (1.0, 1.0 - a / (1.0 + mu))


@st.composite
def gain_points(draw: st.DrawFn) -> tuple[float, float, float, int, str]:
    kind = draw(st.sampled_from(["any", "edge", "double", "tiny_mu", "negative"]))
    h = 10.0 ** draw(st.floats(-2.0, 2.0))
    if kind == "any":
        mu = draw(st.floats(0.0, 0.999))
        a = draw(st.floats(1e-3, 2.0 * (1.0 + mu) * 0.999))
    elif kind in ("edge", "double"):
        mu = draw(st.floats(1e-6, 0.999))
        s = np.sqrt(mu)
        edge = draw(st.sampled_from([(1 - s) ** 2, (1 + s) ** 2]))
        exponent = -16.0 if kind == "double" else draw(st.floats(-16.0, -1.0))
        a = edge * (1.0 + draw(st.sampled_from([-1.0, 0.0, 1.0])) * 10.0**exponent)
    elif kind == "tiny_mu":
        mu = draw(st.sampled_from([-1.0, 0.0, 1.0])) * 10.0 ** draw(st.floats(-16.0, -4.0))
        a = draw(st.floats(1e-3, 1.95))
    else:
        mu = draw(st.floats(-0.99, -1e-3))
        a = draw(st.floats(1e-3, 2.0 * (1.0 + mu) * 0.999))
    t = draw(st.integers(0, 400))
    return a / h, mu, h, t, draw(st.sampled_from(STARTS))


def exact_gain(alpha: float, mu: float, h: float, t: int, start: str) -> tuple[float, float]:
    """40-digit |first row of A^t applied to the start|, and the scale sum |A^t|_ij |start_j|."""
    with mp.workdps(40):
        a = mp.mpf(alpha) * mp.mpf(h)
        m = mp.mpf(mu)
        e0, em1 = (1, 1) if start == "zero_velocity" else (1, 1 - a / (1 + m))
        mat = mp.matrix([[1 + m - a, -m], [1, 0]]) ** t
        value = abs(mat[0, 0] * e0 + mat[0, 1] * em1)
        scale = abs(mat[0, 0] * e0) + abs(mat[0, 1] * em1)
        return float(value), float(scale)


@settings(max_examples=400, deadline=None)
@given(gain_points())
def test_gain_matches_exact_matrix_power(p: tuple[float, float, float, int, str]) -> None:
    alpha, mu, h, t, start = p
    got = float(error_gain(alpha, mu, h, t, start))
    ref, scale = exact_gain(alpha, mu, h, t, start)
    # e_t = U_t - mu c U_{t-1}: each term carries ~ (t + 1) eps relative error (powers, sin of
    # (t+1) theta). The rounding of alpha*h (and of the discriminant) moves a root by about
    # eps N^2 / gap, gap = |z1 - z2| (at most sqrt(eps) N on the Jordan boundary), and
    # dU_t/dz ~ t^2 rho^(t-1) turns that into the second term; 4 is margin.
    rho = float(spectral_radius(alpha, mu, h))
    b = 1.0 + mu - alpha * h
    n = 1.0 + abs(b) + abs(mu)
    gap = np.sqrt(abs(b * b - 4.0 * mu))
    shift = EPS * n * n / max(gap, np.sqrt(EPS) * n)
    tol = (1e-12 + 64 * EPS * t) * scale + 4 * t * t * rho ** max(t - 1, 0) * shift
    assert abs(got - ref) <= tol


@pytest.mark.parametrize("start", STARTS)
def test_gain_matches_numpy_matrix_power_on_a_grid(start: str) -> None:
    rng = np.random.default_rng(7)
    mu = rng.uniform(-0.95, 0.95, 300)
    a = rng.uniform(0.01, 1.98, 300) * (1 + mu)
    t = rng.integers(0, 80, 300)
    got = error_gain(a, mu, 1.0, t, start)
    for i in range(mu.size):
        e0, em1 = start_state(start, a[i], mu[i])
        power = np.linalg.matrix_power(transition_matrix(a[i], mu[i], 1.0), int(t[i]))
        ref = abs(power[0, 0] * e0 + power[0, 1] * em1)
        scale = abs(power[0, 0] * e0) + abs(power[0, 1] * em1)
        # matrix_power accumulates ~ t eps per entry; the closed form is far more accurate
        assert abs(got[i] - ref) <= (1e-12 + 8 * EPS * t[i]) * scale + 1e-300


def test_gain_special_cases() -> None:
    # gradient descent: (1 - a)^t; matched equals zero velocity at mu = 0
    for start in STARTS:
        np.testing.assert_allclose(
            error_gain(0.3, 0.0, 1.0, np.arange(6), start), 0.7 ** np.arange(6)
        )
    # t = 0 and t = 1 directly; the double root 0 (mu = 0, alpha h = 1) dies after one step
    assert float(error_gain(1.0, 0.5, 1.3, 0)) == 1.0
    np.testing.assert_allclose(error_gain(0.2, 0.5, 1.0, 1), 0.8, rtol=1e-15)
    np.testing.assert_allclose(error_gain(0.2, 0.5, 1.0, 1, "matched"), 1 - 0.2 / 1.5, rtol=1e-15)
    assert error_gain(1.0, 0.0, 1.0, [1, 2, 5]).tolist() == [0.0, 0.0, 0.0]
    # Jordan block, mu = 1/4, alpha h = 1/4, zero velocity: e_t = s^t (1 + t/2), s = 1/2
    t = np.arange(0, 200)
    np.testing.assert_allclose(error_gain(0.25, 0.25, 1.0, t), 0.5**t * (1 + t / 2), rtol=1e-13)


@settings(max_examples=300, deadline=None)
@given(st.floats(1e-4, 0.999), st.floats(0.0, 1.0), st.integers(0, 500))
def test_matched_start_obeys_chebyshev_bound(mu: float, frac: float, t: int) -> None:
    s = np.sqrt(mu)
    a = (1 - s) ** 2 + frac * ((1 + s) ** 2 - (1 - s) ** 2)  # closed robust interval
    got = float(error_gain(a, mu, 1.0, t, "matched"))
    bound = float(chebyshev_bound(mu, t))
    assert got <= bound * (1 + 1e-9) + 1e-300


@settings(max_examples=100, deadline=None)
@given(st.floats(0.01, 0.99), st.integers(0, 300))
def test_chebyshev_bound_is_attained_at_the_lazy_edge(mu: float, t: int) -> None:
    # alpha h = (1 - sqrt(mu))^2 exactly (double root): the bound holds with equality; the rounding
    # of the edge perturbs the double root by ~ sqrt(eps), amplified by t
    a = ((1 - mu) / (1 + np.sqrt(mu))) ** 2
    got = float(error_gain(a, mu, 1.0, t, "matched"))
    bound = float(chebyshev_bound(mu, t))
    assert abs(got - bound) <= (1e-12 + 4 * np.sqrt(EPS) * t) * bound + 1e-300


def simulate_peak(
    alpha: float, mu: float, hs: np.ndarray, start: str, steps: int
) -> tuple[float, int]:
    """Run heavy ball on every curvature in hs from x_0 = 1 and return (max |x_t|, argmax t)."""
    x_prev = np.ones_like(hs)
    x = np.ones_like(hs)
    if start == "matched":
        x_prev, x = x, x - alpha / (1 + mu) * hs * x
        best, t_best, t0 = 1.0, 0, 1
        m = float(np.max(np.abs(x)))
        if m > best:
            best, t_best = m, 1
    else:
        best, t_best, t0 = 1.0, 0, 0
    for t in range(t0 + 1, steps + 1):
        x_prev, x = x, x - alpha * hs * x + mu * (x - x_prev)
        m = float(np.max(np.abs(x)))
        if m > best:
            best, t_best = m, t
    return best, t_best


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize(("kappa", "scale"), [(100.0, 1.0), (1e4, 1.0), (100.0, 0.7)])
def test_peak_transient_matches_simulation(start: str, kappa: float, scale: float) -> None:
    h_min, h_max = 1.0, kappa
    alpha, mu = polyak_tuning(h_min, h_max)
    alpha, mu = float(alpha) * scale, float(mu)
    n_h = 65
    peak, t_peak = peak_transient(alpha, mu, h_min, h_max, start=start, n_h=n_h)
    # the same grid the docstring specifies: geometric points plus the region edges inside
    s = np.sqrt(mu)
    edges = np.array([(1 - s) ** 2, (1 + s) ** 2]) / alpha
    hs = np.unique(
        np.concatenate(
            [np.geomspace(h_min, h_max, n_h), edges[(edges >= h_min) & (edges <= h_max)]]
        )
    )
    ref, t_ref = simulate_peak(alpha, mu, hs, start, steps=20 * int(np.sqrt(kappa)) + 200)
    np.testing.assert_allclose(peak, ref, rtol=1e-10)
    assert int(t_peak) == t_ref


def test_peak_effect_scales_like_sqrt_kappa() -> None:
    # zero-velocity start at Polyak's tuning: the peak grows like sqrt(kappa) (ratio ~ 1/e here)
    ratios = []
    for kappa in (1e2, 1e3, 1e4):
        alpha, mu = polyak_tuning(1.0, kappa)
        peak, _ = peak_transient(alpha, mu, 1.0, kappa)
        ratios.append(float(peak) / np.sqrt(kappa))
    assert all(0.25 < r < 0.5 for r in ratios)
    assert max(ratios) / min(ratios) < 1.1
    # the matched start has no peak: its gain never exceeds 1 in the robust region
    peak, t_peak = peak_transient(*polyak_tuning(1.0, 1e4), 1.0, 1e4, start="matched")
    assert float(peak) == 1.0 and int(t_peak) == 0


def test_peak_transient_with_t_max_and_broadcasting() -> None:
    peak, t_peak = peak_transient([0.1, 0.2], 0.5, 1.0, [10.0, 20.0], t_max=30)
    assert peak.shape == (2,) and t_peak.shape == (2,)
    # an unstable setting has a finite peak on a finite horizon, growing with it
    p10, _ = peak_transient(0.5, 0.0, 1.0, 5.0, t_max=10)
    np.testing.assert_allclose(p10, 1.5**10, rtol=1e-12)
    # a horizon longer than one scan chunk gives the same peak as the automatic stopping rule
    alpha, mu = polyak_tuning(1.0, 1e4)
    auto = peak_transient(alpha, mu, 1.0, 1e4, n_h=17)
    fixed = peak_transient(alpha, mu, 1.0, 1e4, n_h=17, t_max=5000)
    assert float(auto[0]) == float(fixed[0]) and int(auto[1]) == int(fixed[1])


@pytest.mark.parametrize(
    ("call", "name", "valid"),
    [
        (lambda: error_gain(0.0, 0.5, 1.0, 3), "alpha", "(0, inf)"),
        (lambda: error_gain(0.1, 1.0, 1.0, 3), "mu", "(-1, 1)"),
        (lambda: error_gain(0.1, 0.5, -1.0, 3), "h", "(0, inf)"),
        (lambda: error_gain(0.1, 0.5, 1.0, -1), "t", "an integer >= 0"),
        (lambda: error_gain(0.1, 0.5, 1.0, 1.5), "t", "an integer >= 0"),
        (
            lambda: error_gain(0.1, 0.5, 1.0, 2, start="cold"),
            "start",
            "one of zero_velocity, matched",
        ),
        (lambda: chebyshev_bound(-0.1, 2), "mu", "[0, 1)"),
        (lambda: chebyshev_bound(0.5, np.nan), "t", "an integer >= 0"),
        (lambda: peak_transient(0.1, 0.5, 2.0, 1.0), "h_min", "(0, h_max]"),
        (lambda: peak_transient(0.1, 0.5, 1.0, 2.0, n_h=1), "n_h", "an integer in [2, 65536]"),
        (
            lambda: peak_transient(0.1, 0.5, 1.0, 2.0, start="x"),
            "start",
            "one of zero_velocity, matched",
        ),
        (lambda: peak_transient(0.1, 0.5, 1.0, 2.0, t_max=-3), "t_max", "an integer in [0, "),
        (lambda: peak_transient(1.0, 0.0, 1.0, 5.0), "t_max", "an integer >= 0"),
    ],
)
def test_bad_input_names_the_parameter_and_its_range(call, name: str, valid: str) -> None:
    """The message starts with the parameter's name and states the valid range."""
    with pytest.raises(ValueError, match=rf"^{re.escape(name)}\b") as info:
        call()
    assert valid in str(info.value), str(info.value)
