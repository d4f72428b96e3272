"""Heavy-ball spectral theory against eigenvalues, a 40-digit reference and brute-force search."""

from __future__ import annotations

import re

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq, minimize

from theory import (
    Regime,
    eigenvalues,
    is_stable,
    min_robust_momentum,
    polyak_tuning,
    regime,
    robust_interval,
    spectral_radius,
    tolerated_dynamic_range,
    transition_matrix,
)

EPS = np.finfo(np.float64).eps


@st.composite
def points(draw: st.DrawFn) -> tuple[float, float, float]:
    """(alpha, mu, h) over the whole domain, with many points right next to region boundaries."""
    kind = draw(st.sampled_from(["any", "edge", "tiny_mu", "wide_mu", "divergence_edge"]))
    h = 10.0 ** draw(st.floats(-3.0, 3.0))
    if kind == "any":
        mu = draw(st.floats(-0.999, 0.999))
        a = draw(st.floats(1e-4, 2.5 * (1.0 + mu)))
    elif kind == "edge":  # alpha*h = (1 -+ sqrt(mu))^2 (1 +- delta), delta down to 1e-16
        mu = draw(st.floats(1e-12, 0.999))
        s = np.sqrt(mu)
        edge = draw(st.sampled_from([(1 - s) ** 2, (1 + s) ** 2]))
        delta = draw(st.sampled_from([-1.0, 1.0])) * 10.0 ** draw(st.floats(-16.0, -1.0))
        a = edge * (1.0 + delta)
    elif kind == "tiny_mu":  # mu -> 0 from both sides
        mu = draw(st.sampled_from([-1.0, 1.0])) * 10.0 ** draw(st.floats(-16.0, -3.0))
        a = draw(st.floats(1e-3, 1.9))
    elif kind == "wide_mu":  # |mu| >= 1 is allowed for the radius (always divergent)
        mu = draw(st.floats(-3.0, 3.0))
        a = draw(st.floats(1e-3, 8.0))
    else:  # alpha*h close to 2 (1 + mu), the edge of stability
        mu = draw(st.floats(-0.99, 0.99))
        a = 2.0 * (1.0 + mu) * (1.0 + draw(st.floats(-1e-6, 1e-6)))
    return a / h, mu, h


def exact(alpha: float, mu: float, h: float) -> tuple[mp.mpf, mp.mpf, mp.mpf]:
    """40-digit (radius, discriminant, b) of the operator built from the float inputs."""
    with mp.workdps(40):
        a = mp.mpf(alpha) * mp.mpf(h)
        b = 1 + mp.mpf(mu) - a
        d = b * b - 4 * mp.mpf(mu)
        rho = mp.sqrt(mp.mpf(mu)) if d < 0 else (abs(b) + mp.sqrt(d)) / 2
        return rho, d, b


def tolerance(ref: float, d: mp.mpf, b: mp.mpf, mu: float) -> float:
    """1e-12 relative, plus the eigenvalue perturbation bound near a double root.

    A rounding perturbation of size eps*||A|| (||A|| <= N = 1 + |b| + |mu|) moves eigenvalues
    separated by gap = sqrt|D| by about eps N^2 / gap, and by at most about sqrt(eps) N when they
    coincide (the Jordan boundary, where the radius is not Lipschitz in the inputs). Any float64
    method, numpy's included, has this error; the factor 4 is margin over the observed maximum.
    """
    n = 1.0 + abs(float(b)) + abs(mu)
    gap = float(mp.sqrt(abs(d)))
    return 1e-12 * ref + 4.0 * EPS * n * n / max(gap, np.sqrt(EPS) * n)


@settings(max_examples=400, deadline=None)
@given(points())
def test_radius_matches_eigvals_and_exact_reference(p: tuple[float, float, float]) -> None:
    alpha, mu, h = p
    rho = float(spectral_radius(alpha, mu, h))
    numeric = float(np.max(np.abs(np.linalg.eigvals(transition_matrix(alpha, mu, h)))))
    ref, d, b = exact(alpha, mu, h)
    tol = tolerance(float(ref), d, b, mu)
    assert abs(rho - float(ref)) <= tol
    assert abs(numeric - rho) <= 2.0 * tol


@settings(max_examples=300, deadline=None)
@given(points())
def test_eigenvalues_match_numpy(p: tuple[float, float, float]) -> None:
    alpha, mu, h = p
    z = eigenvalues(alpha, mu, h)
    numeric = np.linalg.eigvals(transition_matrix(alpha, mu, h))
    ref, d, b = exact(alpha, mu, h)
    tol = tolerance(float(ref), d, b, mu)
    # pair each closed-form root with its nearest numeric one
    for zi in z:
        assert np.min(np.abs(numeric - zi)) <= 2.0 * tol
    assert abs(z[0] * z[1] - mu) <= 4.0 * tol * (1.0 + abs(z[0]))  # Vieta: product = mu
    assert abs(z[0]) >= abs(z[1]) - 1e-15


def test_radius_is_sqrt_mu_in_robust_region_and_formula_outside() -> None:
    mu, h = 0.81, 1.0
    alphas = np.linspace(0.011, 3.6, 50)  # edges 0.01 and 3.61
    np.testing.assert_allclose(spectral_radius(alphas, mu, h), 0.9, rtol=1e-15)
    # gradient descent: |1 - alpha h|
    a = np.array([0.1, 0.5, 1.0, 1.5, 1.99, 2.5])
    np.testing.assert_allclose(
        spectral_radius(a, 0.0, 1.0), np.abs(1.0 - a), rtol=1e-15, atol=1e-16
    )


def test_broadcasting_and_shapes() -> None:
    alpha = np.linspace(0.1, 1.0, 3)[:, None]
    mu = np.array([-0.5, 0.0, 0.5, 0.9])
    assert spectral_radius(alpha, mu, 2.0).shape == (3, 4)
    assert transition_matrix(alpha, mu, 2.0).shape == (3, 4, 2, 2)
    assert eigenvalues(alpha, mu, 2.0).shape == (3, 4, 2)
    assert regime(alpha, mu, 2.0).shape == (3, 4)
    assert is_stable(alpha, mu, 2.0).dtype == np.bool_


@settings(max_examples=300, deadline=None)
@given(points())
def test_regime_agrees_with_the_roots(p: tuple[float, float, float]) -> None:
    alpha, mu, h = p
    r = str(regime(alpha, mu, h))
    ref, d, b = exact(alpha, mu, h)
    if r == Regime.DIVERGENT:
        assert ref >= 1 - 1e-12
    else:
        assert ref < 1 + 1e-12
    if r == Regime.ROBUST:
        assert mu > 0 and d < 0
    elif r in (Regime.LAZY, Regime.OVERSTEP):
        assert mu >= 0 and d >= 0
        assert (b > 0) if r == Regime.LAZY else (b < 0)  # roots both positive / both negative
    elif r == Regime.NEGATIVE_MOMENTUM:
        assert mu < 0 and d > 0
    elif r == Regime.BOUNDARY:
        assert abs(d) <= 64 * EPS * (1 + float(b) ** 2)


def test_regime_examples_cover_every_value() -> None:
    got = regime(
        [0.001, 0.25, 1.0, 2.2, 2.4, 3.0, 0.5], [0.25, 0.25, 0.25, 0.25, 0.25, 0.25, -0.3], 1.0
    )
    # mu = 1/4: edges alpha h = 1/4 and 9/4 exactly, divergence at 5/2
    assert got.tolist() == [
        "lazy",
        "boundary",
        "robust",
        "robust",
        "overstep",
        "divergent",
        "negative_momentum",
    ]
    assert str(regime(1.0, 0.0, 1.0)) == "boundary"  # gradient descent's one edge
    assert {r.value for r in Regime} == set(got.tolist())


def test_jordan_boundary_grows_like_t_sqrt_mu_power() -> None:
    # mu = 1/4, alpha h = 1/4: double root 1/2, A^t = s^t (t A / s - (t - 1) I)
    a = transition_matrix(0.25, 0.25, 1.0)
    s = 0.5
    for t in (1, 5, 20, 60):
        exact_power = s**t * (t * a / s - (t - 1) * np.eye(2))
        np.testing.assert_allclose(
            np.linalg.matrix_power(a, t), exact_power, rtol=1e-12, atol=1e-300
        )
        assert np.linalg.norm(exact_power, 2) >= t * s ** (t - 1) * 0.5


@settings(max_examples=300, deadline=None)
@given(points())
def test_is_stable_iff_radius_below_one(p: tuple[float, float, float]) -> None:
    alpha, mu, h = p
    ref = float(exact(alpha, mu, h)[0])
    if abs(ref - 1.0) > 1e-9:  # at the edge the radius is 1 up to rounding
        assert bool(is_stable(alpha, mu, h)) == (ref < 1.0)


@settings(max_examples=150, deadline=None)
@given(st.floats(0.0, 0.999), st.floats(-2.0, 2.0), st.floats(0.0, 3.0), st.floats(0.0, 1.0))
def test_robust_interval_puts_every_curvature_at_rate_sqrt_mu(
    mu: float, log_h_min: float, log_kappa: float, frac: float
) -> None:
    h_min = 10.0**log_h_min
    h_max = h_min * 10.0**log_kappa
    lo, hi = robust_interval(mu, h_min, h_max)
    nonempty = lo <= hi
    kappa = h_max / h_min
    # non-empty iff mu reaches the minimal robust momentum (compare away from equality)
    mu_min = float(min_robust_momentum(kappa))
    if abs(mu - mu_min) > 1e-9:
        assert nonempty == (mu > mu_min)
    if not nonempty:
        return
    alpha = lo + frac * (hi - lo)
    hs = np.geomspace(h_min, h_max, 101)
    np.testing.assert_allclose(spectral_radius(alpha, mu, hs), np.sqrt(mu), rtol=1e-7, atol=1e-7)
    # the radius is sqrt(mu) + O(sqrt(rounding)) on the closed edges; just outside it is larger
    if mu > 1e-3 and hi > lo * (1 + 1e-3):
        worst_out = spectral_radius(lo * (1 - 1e-3), mu, h_min)
        assert worst_out > np.sqrt(mu) + 1e-6
        assert spectral_radius(hi * (1 + 1e-3), mu, h_max) > np.sqrt(mu) + 1e-6


@settings(max_examples=200, deadline=None)
@given(st.floats(0.0, 8.0))
def test_min_robust_momentum_is_where_the_interval_closes(log_kappa: float) -> None:
    kappa = 10.0**log_kappa
    mu = float(min_robust_momentum(kappa))
    np.testing.assert_allclose(tolerated_dynamic_range(mu), kappa, rtol=1e-9)
    if kappa > 1.0 + 1e-6:
        # independent: the root in mu of (1 - sqrt(mu))^2 / 1 = (1 + sqrt(mu))^2 / kappa
        ref = brentq(
            lambda m: (1 - np.sqrt(m)) ** 2 - (1 + np.sqrt(m)) ** 2 / kappa,
            0.0,
            1.0,
            xtol=1e-15,
            rtol=4 * EPS,
        )
        # brentq's bracket ends at 1 - mu ~ 4/sqrt(kappa): absolute accuracy ~ 1e-15
        np.testing.assert_allclose(mu, ref, rtol=1e-12, atol=4e-15)


def test_min_robust_momentum_small_kappa_no_cancellation() -> None:
    # kappa = 1 + e: mu = (e/4)^2 (1 + O(e)); the naive form loses all digits for e ~ 1e-12
    e = 1e-12
    np.testing.assert_allclose(min_robust_momentum(1.0 + e), (e / 4.0) ** 2, rtol=1e-3)
    assert float(min_robust_momentum(1.0)) == 0.0
    np.testing.assert_allclose(tolerated_dynamic_range(0.0), 1.0, rtol=0)


@settings(max_examples=200, deadline=None)
@given(st.floats(-300.0, 300.0), st.floats(np.log10(2.0), 300.0))
def test_polyak_momentum_is_the_minimal_robust_momentum(log_h_min: float, log_kappa: float) -> None:
    """polyak_tuning(h_min, h_max)[1] == min_robust_momentum(h_max / h_min) at any scale.

    Both are a few roundings of the same value for kappa >= 2 (no cancellation in h_max - h_min
    nor in kappa - 1 beyond a factor kappa / (kappa - 1) <= 2): about 5 eps for Polyak's form
    (difference, two square roots, two divisions, squared) and 7 eps for the kappa form (kappa
    rounded, then the same steps); measured at most ~4 eps each against 40 digits, so they agree
    to 16 eps.
    """
    h_min = 10.0**log_h_min
    h_max = h_min * 10.0**log_kappa
    if not np.isfinite(h_max):  # 1e300 * 1e300: outside the domain of both
        return
    mu_polyak = float(polyak_tuning(h_min, h_max)[1])
    mu_kappa = float(min_robust_momentum(h_max / h_min))
    assert abs(mu_polyak - mu_kappa) <= 16 * EPS * mu_kappa


def test_polyak_momentum_needs_no_kappa() -> None:
    """h_max / h_min = 1e600 is not a float64: min_robust_momentum cannot take it, polyak can."""
    with np.errstate(over="ignore"):
        kappa = np.float64(1e300) / np.float64(1e-300)
    with pytest.raises(ValueError, match=r"^kappa must lie in \[1, inf\)"):
        min_robust_momentum(kappa)
    # mu = 1 - 8e-300 (1 - sqrt(mu) = 2 sqrt(h_min) / (sqrt(h_max) + sqrt(h_min)) = 2e-300),
    # to the ~5 eps of its roundings
    assert abs(float(polyak_tuning(1e-300, 1e300)[1]) - 1.0) <= 8 * EPS


@pytest.mark.parametrize("kappa", [1.0, 4.0, 100.0, 1e4])
def test_polyak_tuning_is_the_minimax_optimum(kappa: float) -> None:
    h_min, h_max = 0.5, 0.5 * kappa
    alpha, mu = polyak_tuning(h_min, h_max)
    sk = np.sqrt(kappa)
    np.testing.assert_allclose(mu, ((sk - 1) / (sk + 1)) ** 2, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(spectral_radius(alpha, mu, [h_min, h_max]), np.sqrt(mu), atol=1e-7)

    def worst(z: np.ndarray) -> float:  # worst-case radius over the spectrum
        al, m = np.exp(z[0]), z[1]
        return float(np.max(spectral_radius(al, m, [h_min, h_max])))

    # brute force: best of many Nelder-Mead starts (the minimax is non-smooth)
    rng = np.random.default_rng(0)
    best = min(
        minimize(
            worst,
            [np.log(alpha) + rng.normal(0, 0.3), rng.uniform(0.0, 0.95)],
            method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000},
        ).fun
        for _ in range(6)
    )
    rate = float(np.sqrt(mu))
    assert rate <= best + 1e-9  # nothing beats Polyak
    assert best <= rate + 1e-4  # and the search reaches it


def test_gradient_descent_rate_at_its_optimum() -> None:
    kappa = 50.0
    rho = spectral_radius(2.0 / (1.0 + kappa), 0.0, [1.0, kappa])
    np.testing.assert_allclose(rho, (kappa - 1) / (kappa + 1), rtol=1e-14)


@pytest.mark.parametrize(
    ("call", "name", "valid"),
    [
        (lambda: spectral_radius(0.0, 0.5, 1.0), "alpha", "(0, inf)"),
        (lambda: spectral_radius(-1.0, 0.5, 1.0), "alpha", "(0, inf)"),
        (lambda: spectral_radius(1.0, 0.5, 0.0), "h", "(0, inf)"),
        (lambda: spectral_radius(1.0, np.nan, 1.0), "mu", "finite real number"),
        (lambda: eigenvalues(1.0, 0.5, np.inf), "h", "(0, inf)"),
        (lambda: transition_matrix([1.0, np.nan], 0.5, 1.0), "alpha", "(0, inf)"),
        (lambda: regime(1.0, 0.5, -2.0), "h", "(0, inf)"),
        (lambda: is_stable(1.0, 0.5, -2.0), "h", "(0, inf)"),
        (lambda: robust_interval(1.0, 1.0, 2.0), "mu", "[0, 1)"),
        (lambda: robust_interval(-0.1, 1.0, 2.0), "mu", "[0, 1)"),
        (lambda: robust_interval(0.5, 0.0, 2.0), "h_min", "(0, inf)"),
        (lambda: robust_interval(0.5, 3.0, 2.0), "h_min", "(0, h_max]"),
        (lambda: min_robust_momentum(0.5), "kappa", "[1, inf)"),
        (lambda: tolerated_dynamic_range(1.0), "mu", "[0, 1)"),
        (lambda: polyak_tuning(2.0, 1.0), "h_min", "(0, h_max]"),
        (lambda: polyak_tuning(-1.0, 1.0), "h_min", "(0, inf)"),
    ],
)
def test_bad_input_names_the_parameter_and_its_range(call, name: str, valid: str) -> None:
    """The message starts with the parameter's name and states the valid range."""
    with pytest.raises(ValueError, match=rf"^{re.escape(name)}\b") as info:
        call()
    assert valid in str(info.value), str(info.value)


NEAR_LOWER_EDGE = [
    (mu, side * delta, h)
    for mu in (0.99, 0.999, 0.9999, 0.99999)
    for delta in (1e-9, 3e-10, 1e-10)
    for side in (-1.0, 1.0)
    for h in (1.0, 3.7)
]


def _edge_point(mu: float, delta: float, h: float) -> float:
    """alpha with alpha h = (1 - sqrt(mu))^2 (1 + delta), the lower edge moved by delta relative."""
    with mp.workdps(50):
        edge = (1 - mp.sqrt(mp.mpf(mu))) ** 2
        return float(edge * (1 + mp.mpf(delta)) / mp.mpf(h))


def _reference_50(alpha: float, mu: float, h: float) -> tuple[mp.mpf, mp.mpf]:
    """(radius, D) at 50 digits from the float inputs."""
    with mp.workdps(50):
        a = mp.mpf(alpha) * mp.mpf(h)
        m = mp.mpf(mu)
        b = 1 + m - a
        d = b * b - 4 * m
        return (mp.sqrt(m) if d < 0 else (abs(b) + mp.sqrt(d)) / 2), d


def _edge_tolerance(alpha: float, mu: float, h: float, d: mp.mpf) -> float:
    """Error bound of the factored formula from float64 eps.

    Each computed ingredient carries a relative error of at most k eps (k = 8 covers the rounded
    operations: a = alpha h, sqrt(mu), (1 - mu)/(1 + s), the squares). Then
    ``|dD| <= k eps ((lo + a) |hi - a| + (hi + a) |lo - a|)`` and, for real roots,
    ``|d rho| <= |db| / 2 + |dD| / (4 sqrt(D)) + eps rho`` with ``|db| <= k eps (1 + mu + a)``.
    Complex roots give ``rho = sqrt(mu)`` to an ulp once the sign of ``D`` is right, which the
    bound on ``|dD|`` guarantees at these points (asserted). The naive ``b^2 - 4 mu`` instead
    has ``|dD| ~ eps b^2 ~ 4 eps``: about ``1/lo`` times more, and ``1/lo ~ 1e4 .. 1e11`` here.
    """
    k = 8.0
    a = alpha * h
    s = np.sqrt(mu)
    lo, hi = (1.0 - s) ** 2, (1.0 + s) ** 2
    d_err = k * EPS * ((lo + a) * abs(hi - a) + (hi + a) * abs(lo - a))
    if d < 0:
        assert float(-d) > d_err  # the sign of D is certain for the factored formula
        return 2.0 * EPS * s
    b_err = k * EPS * (1.0 + mu + a)
    rho = 0.5 * (abs(1.0 + mu - a) + float(mp.sqrt(d)))
    return 0.5 * b_err + d_err / (4.0 * float(mp.sqrt(d))) + EPS * rho


def _naive_radius(alpha: float, mu: float, h: float) -> float:
    b = 1.0 + mu - alpha * h
    d = b * b - 4.0 * mu
    return float(np.sqrt(mu)) if d < 0.0 else 0.5 * (abs(b) + float(np.sqrt(d)))


@pytest.mark.parametrize(("mu", "delta", "h"), NEAR_LOWER_EDGE)
def test_radius_within_1e9_of_the_lazy_edge_against_50_digits(
    mu: float, delta: float, h: float
) -> None:
    """Near alpha h = (1 - sqrt(mu))^2, mu -> 1, the factored discriminant keeps full accuracy."""
    alpha = _edge_point(mu, delta, h)
    ref, d = _reference_50(alpha, mu, h)
    tol = _edge_tolerance(alpha, mu, h, d)
    got = float(spectral_radius(alpha, mu, h))
    with mp.workdps(50):
        assert abs(mp.mpf(got) - ref) <= tol, (got, ref, tol)
    assert (regime(alpha, mu, h) == Regime.ROBUST.value) == (d < 0)


def test_the_edge_tolerance_rejects_the_naive_discriminant() -> None:
    """The same points and tolerances catch b^2 - 4 mu: the test tells the two formulas apart."""
    misses = []
    for mu, delta, h in NEAR_LOWER_EDGE:
        alpha = _edge_point(mu, delta, h)
        ref, d = _reference_50(alpha, mu, h)
        with mp.workdps(50):
            err = float(abs(mp.mpf(_naive_radius(alpha, mu, h)) - ref))
        misses.append(err / _edge_tolerance(alpha, mu, h, d))
    assert sum(m > 1.0 for m in misses) >= len(misses) // 2, misses
    assert max(misses) > 1e3
