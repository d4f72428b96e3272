"""Each symbolic derivation, lambdified, equals its numeric counterpart at random points."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy.optimize import brentq, minimize_scalar

from theory.asynchrony import async_char_poly
from theory.heavy_ball import eigenvalues, robust_interval, transition_matrix
from theory.noise_floor import second_moment_operator, stationary_variance
from theory.singlestep import singlestep_root
from theory.symbolic import Derivation, derivations

N = 200


@pytest.fixture(scope="module")
def derived() -> dict[str, Derivation]:
    return derivations()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def test_every_entry_is_complete(derived: dict[str, Derivation]) -> None:
    assert set(derived) == {
        "heavy_ball_char_poly",
        "heavy_ball_discriminant",
        "robust_boundaries",
        "complex_root_modulus",
        "singlestep_cubic",
        "singlestep_root",
        "noise_floor_recursion",
        "noise_floor_fixed_point",
        "async_char_poly",
    }
    for name, d in derived.items():
        assert d.name == name
        assert " = " in d.latex
        assert sp.latex(d.expression) in d.latex
        assert d.assumptions
        assert set(d.expression.free_symbols) <= set(d.args)


def test_heavy_ball_char_poly_and_discriminant(derived, rng) -> None:
    alpha, mu, h = rng.uniform(0.01, 3, N), rng.uniform(-0.99, 0.99, N), rng.uniform(0.1, 5, N)
    z = rng.normal(size=N) + 1j * rng.normal(size=N)
    A = transition_matrix(alpha, mu, h)
    det = np.linalg.det(z[:, None, None] * np.eye(2) - A)
    got = derived["heavy_ball_char_poly"].lambdify()(z, alpha, mu, h)
    # det of a 2x2 with O(1-10) entries: rounding ~1e-15 relative to the largest product.
    np.testing.assert_allclose(got, det, rtol=1e-12, atol=1e-12)
    lam = np.linalg.eigvals(A)
    disc = (lam[:, 0] - lam[:, 1]) ** 2  # (z1 - z2)^2 is the discriminant of a monic quadratic
    got = derived["heavy_ball_discriminant"].lambdify()(alpha, mu, h)
    # Near a double root numpy's eigenvalues lose half the digits; compare with an absolute scale.
    np.testing.assert_allclose(got, disc.real, atol=1e-8)
    np.testing.assert_allclose(disc.imag, 0.0, atol=1e-8)


def test_robust_boundaries(derived, rng) -> None:
    mu = rng.uniform(0.0, 0.99, N)
    lo, hi = derived["robust_boundaries"].lambdify()(mu)
    want_lo, want_hi = robust_interval(mu, 1.0, 1.0)
    np.testing.assert_allclose(lo, want_lo, rtol=1e-12)
    np.testing.assert_allclose(hi, want_hi, rtol=1e-12)
    disc = derived["heavy_ball_discriminant"].lambdify()
    np.testing.assert_allclose(disc(lo, mu, 1.0), 0.0, atol=1e-13)
    np.testing.assert_allclose(disc(hi, mu, 1.0), 0.0, atol=1e-13)


def test_complex_root_modulus(derived, rng) -> None:
    mu = rng.uniform(0.01, 0.99, N)
    s = np.sqrt(mu)
    ah = (1 - s) ** 2 + rng.uniform(0.01, 0.99, N) * ((1 + s) ** 2 - (1 - s) ** 2)
    h = rng.uniform(0.1, 10, N)
    alpha = ah / h
    got = np.broadcast_to(derived["complex_root_modulus"].lambdify()(alpha, mu, h), (N,))
    lam = np.linalg.eigvals(transition_matrix(alpha, mu, h))
    np.testing.assert_allclose(np.abs(lam) ** 2, got[:, None] * np.ones(2), rtol=1e-10)
    np.testing.assert_allclose(
        np.abs(eigenvalues(alpha, mu, h)) ** 2, got[:, None] * np.ones(2), rtol=1e-12
    )


def test_singlestep_cubic_is_the_stationarity_condition(derived, rng) -> None:
    cubic = derived["singlestep_cubic"].lambdify()
    for _ in range(40):
        D, C, hmin = np.exp(rng.uniform(-3, 3, 3))
        p = D**2 * hmin**2 / (2 * C)
        F = lambda x, D=D, C=C, hmin=hmin: x**2 * D**2 + (1 - x) ** 4 * C / hmin**2  # noqa: E731
        res = minimize_scalar(F, bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-13})
        root = brentq(lambda x, p=p: cubic(x, p), 0.0, 1.0, xtol=1e-15)
        # Bounded Brent on a smooth convex F locates its minimiser to ~sqrt(eps) relative.
        assert res.x == pytest.approx(root, rel=1e-6, abs=1e-9)


def test_singlestep_root_matches_numeric_solvers(derived) -> None:
    f = derived["singlestep_root"].lambdify()
    ps = np.geomspace(1e-6, 1e4, 60)
    got = f(ps)
    want = [
        np.real(r[np.argmin(np.abs(r.imag))]) for r in (np.roots([-1, 3, -3 - p, 1]) for p in ps)
    ]
    # The Vieta form loses digits as p grows (x = 1 + y cancels); up to p = 1e4 this costs < 1e-9.
    np.testing.assert_allclose(got, want, rtol=1e-9)
    np.testing.assert_allclose(got, singlestep_root(ps), rtol=1e-9)
    np.testing.assert_allclose((1 - got) ** 3, ps * got, rtol=1e-8)


def test_noise_floor_recursion_and_fixed_point(derived, rng) -> None:
    mu = rng.uniform(-0.9, 0.95, N)
    h = rng.uniform(0.1, 10, N)
    alpha = rng.uniform(0.05, 0.95, N) * 2 * (1 + mu) / h
    c = rng.uniform(0.1, 3.0, N)
    T_sym = derived["noise_floor_recursion"].lambdify()
    fixed = derived["noise_floor_fixed_point"].lambdify()
    T_num = second_moment_operator(alpha, mu, h)
    for i in range(N):
        np.testing.assert_allclose(T_sym(alpha[i], mu[i], h[i]), T_num[i], atol=1e-13)
        p = np.asarray(fixed(alpha[i], mu[i], h[i], c[i]), dtype=float).ravel()
        want = np.linalg.solve(np.eye(3) - T_num[i], alpha[i] ** 2 * c[i] * np.ones(3))
        # I - T has condition <= ~1e3 here; 1e-10 relative is what the solve delivers.
        np.testing.assert_allclose(p, want, rtol=1e-10)
        assert p[0] == pytest.approx(float(stationary_variance(alpha[i], mu[i], h[i], c[i])))


def test_async_char_poly(derived, rng) -> None:
    alpha, mu, h = rng.uniform(0.01, 3, N), rng.uniform(-0.99, 0.99, N), rng.uniform(0.1, 5, N)
    m = rng.integers(1, 50, N).astype(float)
    z = rng.normal(size=N) + 1j * rng.normal(size=N)
    got = derived["async_char_poly"].lambdify()(z, alpha, mu, h, m)
    coeffs = async_char_poly(alpha, mu, h, m)
    want = np.array([np.polyval(cf, zz) for cf, zz in zip(coeffs, z, strict=True)])
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


def test_derivations_are_cached() -> None:
    assert derivations() is derivations()
