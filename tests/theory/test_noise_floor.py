"""Noise floor: closed form vs the recursion's fixed point, Lyapunov equation and Monte Carlo."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from theory.noise_floor import (
    nqm_floor,
    nqm_spectrum,
    second_moment_operator,
    second_moment_transient,
    stationary_loss,
    stationary_variance,
)


@st.composite
def stable_points(draw: st.DrawFn) -> tuple[float, float, float, float]:
    mu = draw(st.floats(-0.95, 0.98))
    h = draw(st.floats(1e-2, 1e2))
    frac = draw(st.floats(0.01, 0.95))  # alpha*h as a fraction of the stability limit 2(1+mu)
    c = draw(st.floats(1e-3, 10.0))
    return frac * 2 * (1 + mu) / h, mu, h, c


@settings(max_examples=80, deadline=None)
@given(stable_points())
def test_fixed_point_of_the_recursion_is_the_closed_form(point) -> None:
    alpha, mu, h, c = point
    T = second_moment_operator(alpha, mu, h)
    p = np.linalg.solve(np.eye(3) - T, alpha**2 * c * np.ones(3))
    # I - T has condition number ~ 1/(1 - rho^2) <= ~1e3 on this domain: 1e-12 relative would be
    # optimistic near the edges, so compare at 1e-10 (closed form has no cancellation).
    assert p[0] == pytest.approx(float(stationary_variance(alpha, mu, h, c)), rel=1e-10)
    assert float(stationary_loss(alpha, mu, h, c)) == pytest.approx(0.5 * h * p[0], rel=1e-10)


def test_fixed_point_to_1e12_on_well_conditioned_points() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        mu = rng.uniform(-0.5, 0.8)
        h = rng.uniform(0.5, 2.0)
        alpha = rng.uniform(0.2, 0.8) * 2 * (1 + mu) / h
        T = second_moment_operator(alpha, mu, h)
        p = np.linalg.solve(np.eye(3) - T, alpha**2 * np.ones(3))
        assert p[0] == pytest.approx(float(stationary_variance(alpha, mu, h, 1.0)), rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(alpha=st.floats(1e-3, 3.0), mu=st.floats(-0.99, 0.99), h=st.floats(1e-2, 5.0))
def test_operator_is_the_lyapunov_map_and_its_eigenvalues_are_root_products(
    alpha: float, mu: float, h: float
) -> None:
    # Independent construction: s = (x, v), s' = A s + b xi, covariance P' = A P A^T + c b b^T.
    a = alpha * h
    A = np.array([[1 - a, mu], [-a, mu]])
    T = second_moment_operator(alpha, mu, h)
    rng = np.random.default_rng(0)
    G = rng.standard_normal((2, 2))
    P = G @ G.T
    Pn = A @ P @ A.T
    want = np.array([Pn[0, 0], Pn[1, 1], Pn[0, 1]])
    np.testing.assert_allclose(T @ np.array([P[0, 0], P[1, 1], P[0, 1]]), want, atol=1e-12)
    # Heavy-ball roots from the 2x2 transition matrix [[1 - a + mu, -mu], [1, 0]].
    z = np.linalg.eigvals(np.array([[1 - a + mu, -mu], [1.0, 0.0]]))
    prods = np.array([z[0] ** 2, z[1] ** 2, z[0] * z[1]])
    got = np.linalg.eigvals(T)
    # Match each product to its nearest eigenvalue; near a double root the eigenvalues of the
    # (non-normal) T are only ~sqrt(eps)-accurate, hence the 1e-6 scale.
    scale = max(1.0, float(np.abs(prods).max()))
    for pr in prods:
        assert np.min(np.abs(got - pr)) < 1e-6 * scale


def test_stationary_variance_solves_the_discrete_lyapunov_equation() -> None:
    for alpha, mu, h, c in [(0.1, 0.9, 1.0, 1.0), (1.5, 0.0, 1.0, 0.3), (0.05, -0.5, 10.0, 2.0)]:
        a = alpha * h
        A = np.array([[1 - a, mu], [-a, mu]])
        b = -alpha * np.ones((2, 1))
        P = scipy.linalg.solve_discrete_lyapunov(A, c * b @ b.T)
        assert P[0, 0] == pytest.approx(float(stationary_variance(alpha, mu, h, c)), rel=1e-10)


def test_monte_carlo_stationary_variance() -> None:
    rng = np.random.default_rng(2024)
    n_chains, burn = 100_000, 400
    for alpha, mu, h, c in [(0.05, 0.9, 1.0, 1.0), (0.8, 0.0, 1.0, 0.5), (0.3, 0.5, 4.0, 2.0)]:
        x = np.zeros(n_chains)
        v = np.zeros(n_chains)
        for _ in range(burn):  # all three are contracting with rate <= 0.95: 0.95^400 ~ 1e-9
            xi = rng.normal(0.0, np.sqrt(c), n_chains)
            x_new = x - alpha * (h * x + xi) + mu * v
            v, x = x_new - x, x_new
        var = float(stationary_variance(alpha, mu, h, c))
        # x is Gaussian at stationarity, so Var(x^2) = 2 Var^2 and the standard error of the mean
        # of n_chains independent squares is sqrt(2/n) Var; allow 5 standard errors.
        se = np.sqrt(2.0 / n_chains) * var
        assert abs(np.mean(x**2) - var) < 5 * se


def test_transient_converges_to_the_floor_at_rate_mu_in_the_robust_region() -> None:
    alpha, mu, h, c = 0.1, 0.81, 1.0, 1.0  # alpha*h = 0.1 inside ((1-0.9)^2, (1+0.9)^2)
    p = second_moment_transient(alpha, mu, h, c, 300)
    var = float(stationary_variance(alpha, mu, h, c))
    assert p[-1, 0] == pytest.approx(var, rel=1e-10)
    # Robust region: all three eigenvalues of T have modulus mu, so the gap decays like mu^t.
    gap = np.abs(p[:, 0] - var)
    for t in (100, 200):
        assert gap[t] <= 50 * t * mu**t
    # The recursion is the exact second moment of the linear system: compare with a direct
    # propagation of the 2x2 covariance from rest at x_0 = 1.
    a = alpha * h
    A = np.array([[1 - a, mu], [-a, mu]])
    P = np.array([[1.0, 0.0], [0.0, 0.0]])
    for t in range(20):
        P = A @ P @ A.T + alpha**2 * c * np.ones((2, 2))
        np.testing.assert_allclose(p[t + 1], [P[0, 0], P[1, 1], P[0, 1]], atol=1e-13)


def test_transient_broadcasts_and_validates() -> None:
    out = second_moment_transient(np.array([0.1, 0.2]), 0.5, 1.0, 1.0, 5)
    assert out.shape == (2, 6, 3)
    out = second_moment_transient(0.1, np.array([[0.0], [0.5]]), np.array([1.0, 2.0, 3.0]), 1.0, 4)
    assert out.shape == (2, 3, 5, 3)
    with pytest.raises(ValueError, match="p0"):
        second_moment_transient(0.1, 0.5, 1.0, 1.0, 3, p0=(1.0, 0.0))
    with pytest.raises(ValueError, match="steps"):
        second_moment_transient(0.1, 0.5, 1.0, 1.0, -1)


def test_nqm_spectrum_and_total_floor() -> None:
    h, c = nqm_spectrum(100, p=1.5, batch_size=8)
    np.testing.assert_allclose(h, np.arange(1, 101) ** -1.5)
    np.testing.assert_allclose(c, h / 8)
    alpha, mu = np.array([0.1, 0.5]), np.array([[0.0], [0.9]])
    floor = nqm_floor(alpha, mu, h, c)
    assert floor.shape == (2, 2)
    for i in range(2):
        for j in range(2):
            want = sum(
                0.5
                * hk
                * np.linalg.solve(
                    np.eye(3) - second_moment_operator(alpha[j], mu[i, 0], hk),
                    alpha[j] ** 2 * ck * np.ones(3),
                )[0]
                for hk, ck in zip(h, c, strict=True)
            )
            assert floor[i, j] == pytest.approx(want, rel=1e-10)
    # Doubling the batch halves every c_i and hence the floor (it is linear in c).
    assert float(nqm_floor(0.1, 0.5, *nqm_spectrum(50, batch_size=2))) == pytest.approx(
        0.5 * float(nqm_floor(0.1, 0.5, *nqm_spectrum(50)))
    )


@pytest.mark.parametrize(
    ("call", "name", "valid"),
    [
        (lambda: stationary_variance(0.0, 0.5, 1.0, 1.0), "alpha", "(0, inf)"),
        (lambda: stationary_variance(0.1, 1.0, 1.0, 1.0), "mu", "(-1, 1)"),
        (lambda: stationary_variance(0.1, 0.5, -1.0, 1.0), "h", "(0, inf)"),
        (lambda: stationary_variance(0.1, 0.5, 1.0, -1.0), "c", "[0, inf)"),
        (
            lambda: stationary_variance(3.1, 0.5, 1.0, 1.0),
            "alpha*h",
            "(0, 2(1+mu)) for a stationary distribution",
        ),
        (lambda: stationary_loss(0.1, np.nan, 1.0, 1.0), "mu", "(-1, 1)"),
        (lambda: second_moment_operator(0.1, 0.5, 0.0), "h", "(0, inf)"),
        (lambda: nqm_spectrum(0), "dim", "an integer in [1, 10000000]"),
        (lambda: nqm_spectrum(5, p=0.0), "p", "(0, inf)"),
        (lambda: nqm_spectrum(5, batch_size=0), "batch_size", "(0, inf)"),
        (
            lambda: nqm_floor(0.1, 0.5, [1.0, 2.0], [1.0]),
            "h and c",
            "1-D arrays of the same length",
        ),
    ],
)
def test_bad_input_names_the_parameter_and_its_range(call, name: str, valid: str) -> None:
    """The message starts with the parameter's name and states the valid range."""
    with pytest.raises(ValueError, match=rf"^{re.escape(name)}\b") as info:
        call()
    assert valid in str(info.value), str(info.value)
