"""SingleStep against a 150-digit root and brute-force minimisation of its objective."""

from __future__ import annotations

import re

import mpmath as mp
import numpy as np
import pytest
from hypothesis import example, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample
from scipy.optimize import minimize_scalar

from theory import (
    _singlestep_parts,
    min_robust_momentum,
    polyak_tuning,
    robust_interval,
    singlestep,
    singlestep_objective,
    singlestep_p,
    singlestep_root,
    spectral_radius,
)

EPS = np.finfo(np.float64).eps
P_GRID = np.concatenate([10.0 ** np.linspace(-8.0, 12.0, 41), [0.999, 1.0, 1.001]])


def reference_root(p: float) -> mp.mpf:
    """Root of (1 - x)^3 = p x by 600 bisections at 150 digits (bracket [1/(p+3), min(1, 1/p)])."""
    with mp.workdps(150):
        pp = mp.mpf(p)
        if pp == 0:
            return mp.mpf(1)
        lo, hi = 1 / (pp + 3), min(mp.mpf(1), 1 / pp)
        for _ in range(600):
            mid = (lo + hi) / 2
            if (1 - mid) ** 3 - pp * mid > 0:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2


@pytest.mark.parametrize("p", [*P_GRID.tolist(), 0.0, 1e-300, 1e-30, 1e20, 1e300])
def test_root_and_its_complement_to_a_few_ulps(p: float) -> None:
    x = float(singlestep_root(p))
    ref = reference_root(p)
    with mp.workdps(150):
        assert abs((mp.mpf(x) - ref) / ref) <= 4 * EPS
    # alpha = (1 - x)^2 / h_min must not come from 1 - x (x rounds to 1 as p -> 0); dist^2/2
    # rounds p by ~ 2 eps, which moves the root by about as much (relative condition ~ 1)
    _, alpha = singlestep(1.0, float(np.sqrt(2.0 * p)), 1.0, 1.0)
    with mp.workdps(150):
        u_ref = 1 - ref
        if u_ref > 0:
            assert abs((mp.mpf(float(alpha)) - u_ref**2) / u_ref**2) <= 16 * EPS


@settings(max_examples=300, deadline=None)
@given(st.floats(-10.0, 14.0))
def test_root_solves_the_cubic(log_p: float) -> None:
    p = 10.0**log_p
    x = float(singlestep_root(p))
    # residual of g(x) = (1 - x)^3 - p x: rounding x to float64 alone moves g by up to
    # eps x |g'(x)| = eps x (3 (1 - x)^2 + p); evaluating g adds a few eps of its terms
    assert 0.0 < x < 1.0
    u = 1 - x
    tol = 8 * EPS * (u**3 + p * x) + 2 * EPS * x * (3 * u * u + p)
    assert abs(u**3 - p * x) <= tol


def brute_force_argmin(p: float, lower: float = 0.0) -> float:
    """argmin over x in [lower, 1] of F(x) = 2 p x^2 + (1 - x)^4 (C = h_min = 1, D^2 = 2 p).

    Only objective values are used (bounded Brent, scipy), evaluated at 60 digits and returned
    as a float64 difference from a reference value, so that the values near the minimum are
    resolved although they differ from F(0) = 1 by only ~ 1/p:
    stage 1 searches s = log(x) with reference F(0); its argmin is good to ~ sqrt(eps) relative.
    Stage 2 (twice) searches z in [-1, 1], x = x1 (1 + 1e-4 z), with reference F(x1); there the
    differences are ~ F'' (x - x1)^2 and the argmin is resolved to ~ 1e-14 relative.
    """
    floor = max(lower, 1e-16)
    with mp.workdps(60):
        pm = mp.mpf(p)

        def big_f(x: mp.mpf) -> mp.mpf:
            return 2 * pm * x**2 + (1 - x) ** 4

        def f_log(s: float) -> float:
            return float(big_f(mp.exp(mp.mpf(s))) - 1)

        opts = {"xatol": 1e-12}
        res = minimize_scalar(f_log, bounds=(np.log(floor), 0.0), method="bounded", options=opts)
        x1 = mp.exp(mp.mpf(res.x))
        for _ in range(2):
            f1 = big_f(x1)

            def f_z(z: float, x1: mp.mpf = x1, f1: mp.mpf = f1) -> float:
                x = x1 * (1 + mp.mpf(z) * mp.mpf("1e-4"))
                if x < lower or x > 1:
                    return float("inf")
                return float((big_f(x) - f1) / f1)

            z = minimize_scalar(f_z, bounds=(-1.0, 1.0), method="bounded", options=opts).x
            x1 = x1 * (1 + mp.mpf(z) * mp.mpf("1e-4"))
        return float(x1)


@pytest.mark.parametrize("p", P_GRID[::2].tolist())
def test_singlestep_matches_brute_force_minimisation(p: float) -> None:
    mu, alpha = singlestep(1.0, float(np.sqrt(2.0 * p)), 1.0, 1.0)  # kappa = 1: no lower bound
    x_brute = brute_force_argmin(p)
    np.testing.assert_allclose(np.sqrt(mu), x_brute, rtol=1e-9)
    # the closed form is at least as good as the search (objective values in float64)
    f = singlestep_objective(mu, 1.0, np.sqrt(2.0 * p), 1.0)
    assert f <= singlestep_objective(x_brute**2, 1.0, np.sqrt(2.0 * p), 1.0) * (1 + 4 * EPS)
    np.testing.assert_allclose(alpha, (1 - np.sqrt(mu)) ** 2, rtol=1e-9)


@pytest.mark.parametrize(("p", "kappa"), [(1e-2, 1e4), (10.0, 100.0), (1e6, 10.0), (1e12, 1.5)])
def test_dynamic_range_bound_is_the_constrained_minimum(p: float, kappa: float) -> None:
    h_min = 2.0
    grad_var = 3.0
    dist = float(np.sqrt(2.0 * p * grad_var) / h_min)
    mu, alpha = singlestep(grad_var, dist, h_min, h_min * kappa)
    mu_lb = float(min_robust_momentum(kappa))
    x_brute = brute_force_argmin(p, lower=np.sqrt(mu_lb))
    np.testing.assert_allclose(np.sqrt(mu), x_brute, rtol=1e-9)
    if np.sqrt(mu_lb) > float(singlestep_root(p)):  # bound active: Polyak's learning rate
        np.testing.assert_allclose(mu, mu_lb, rtol=1e-15)
        np.testing.assert_allclose(alpha, polyak_tuning(h_min, h_min * kappa)[0], rtol=1e-14)
    # always: every curvature of the spectrum is robust, at rate sqrt(mu)
    lo, hi = robust_interval(mu, h_min, h_min * kappa)
    assert lo * (1 - 1e-12) <= alpha <= hi * (1 + 1e-12)
    rho = spectral_radius(alpha, mu, [h_min, h_min * kappa])
    np.testing.assert_allclose(rho, np.sqrt(mu), rtol=1e-6)


def test_objective_and_noise_free_case() -> None:
    # mu D^2 + ((1 - sqrt(mu))^2 / h)^2 C
    np.testing.assert_allclose(singlestep_objective(0.25, 4.0, 2.0, 1.0), 1.25, rtol=1e-15)
    # C = 0: x = 0, so mu is the dynamic-range bound and alpha Polyak's
    mu, alpha = singlestep(0.0, 1.0, 1.0, 100.0)
    a_p, mu_p = polyak_tuning(1.0, 100.0)
    np.testing.assert_allclose([mu, alpha], [mu_p, a_p], rtol=1e-14)
    mu, alpha = singlestep(0.0, 1.0, 1.0, 1.0)
    assert float(mu) == 0.0 and float(alpha) == 1.0
    # D = 0: x = 1, no step
    mu, alpha = singlestep(1.0, 0.0, 1.0, 10.0)
    assert float(mu) == 1.0 and float(alpha) == 0.0
    # overflow of p is the C -> 0 limit
    mu, _ = singlestep(1e-300, 1e200, 1.0, 1.0)
    assert float(mu) == 0.0


def test_broadcasting() -> None:
    mu, alpha = singlestep(np.array([1.0, 2.0, 3.0])[:, None], 1.0, 1.0, np.array([1.0, 10.0]))
    assert mu.shape == alpha.shape == (3, 2)
    assert singlestep_root(np.array([[0.5, 2.0]])).shape == (1, 2)


@pytest.mark.parametrize(
    ("call", "name", "valid"),
    [
        (lambda: singlestep(-1.0, 1.0, 1.0, 2.0), "grad_var", "[0, inf)"),
        (lambda: singlestep(1.0, -1.0, 1.0, 2.0), "dist_to_opt", "[0, inf)"),
        (lambda: singlestep(1.0, 1.0, 0.0, 2.0), "h_min", "(0, inf)"),
        (lambda: singlestep(1.0, 1.0, 3.0, 2.0), "h_min", "(0, h_max]"),
        (lambda: singlestep(1.0, 1.0, 1.0, np.nan), "h_max", "(0, inf)"),
        (lambda: singlestep(0.0, 0.0, 1.0, 2.0), "grad_var", "grad_var > 0 or dist_to_opt > 0"),
        (lambda: singlestep_root(-1.0), "p", "[0, inf)"),
        (lambda: singlestep_root(np.inf), "p", "[0, inf)"),
        (lambda: singlestep_objective(1.5, 1.0, 1.0, 1.0), "mu", "[0, 1]"),
        (lambda: singlestep_objective(0.5, 1.0, 1.0, -1.0), "h_min", "(0, inf)"),
    ],
)
def test_bad_input_names_the_parameter_and_its_range(call, name: str, valid: str) -> None:
    """The message starts with the parameter's name and states the valid range."""
    with pytest.raises(ValueError, match=rf"^{re.escape(name)}\b") as info:
        call()
    assert valid in str(info.value), str(info.value)


def reference_parts(
    grad_var: float, dist: float, h_min: float, h_max: float
) -> tuple[mp.mpf, mp.mpf, mp.mpf, mp.mpf]:
    """``(x, 1 - x, 1 - sqrt(mu_lb), sqrt(h_max) + sqrt(h_min))`` at 60 digits (mpmath's
    unbounded exponents: no under/overflow).

    p = D^2 h_min^2 / (2C) exactly; for p <= 1 Newton on u^3 + p u - p = 0 (u = 1 - x) from
    u = p^(1/3), for p > 1 on (1 - x)^3 - p x = 0 from x = 1/(p + 3); both converge
    monotonically (convex, monotone functions started on the far side).
    """
    with mp.workdps(60):
        c, d, lo, hi = (mp.mpf(v) for v in (grad_var, dist, h_min, h_max))
        if c == 0:
            x, u = mp.mpf(0), mp.mpf(1)
        elif d == 0:
            x, u = mp.mpf(1), mp.mpf(0)
        else:
            p = (d * lo) ** 2 / (2 * c)
            if p <= 1:
                u = mp.cbrt(p)
                for _ in range(200):
                    new = u - (u**3 + p * u - p) / (3 * u**2 + p)
                    if abs(new - u) <= mp.mpf(10) ** -58 * u:
                        break
                    u = new
                x = 1 - u
            else:
                x = 1 / (p + 3)
                for _ in range(200):
                    new = x + ((1 - x) ** 3 - p * x) / (3 * (1 - x) ** 2 + p)
                    if abs(new - x) <= mp.mpf(10) ** -58 * x:
                        break
                    x = new
                u = 1 - x
        root_sum = mp.sqrt(hi) + mp.sqrt(lo)
        return x, u, 2 * mp.sqrt(lo) / root_sum, root_sum


def reference_singlestep(
    grad_var: float, dist: float, h_min: float, h_max: float
) -> tuple[mp.mpf, mp.mpf]:
    """(mu, alpha) at 60 digits.

    The dynamic-range bound is compared on the complements u > 1 - sqrt(mu_lb), which stay
    accurate when x and sqrt(mu_lb) are both within 1e-300 of 1.
    """
    x, u, u_lb, root_sum = reference_parts(grad_var, dist, h_min, h_max)
    with mp.workdps(60):
        if u > u_lb:  # x < sqrt(mu_lb): the bound is active, Polyak's alpha
            return (1 - u_lb) ** 2, 4 / root_sum**2
        return x**2, u**2 / mp.mpf(h_min)


def _close(got: float, want: mp.mpf, ulps: float) -> bool:
    """Relative error within ``ulps`` eps where ``want`` is a normal float64; exact 0 below."""
    tiny = np.finfo(np.float64).tiny
    with mp.workdps(60):
        if abs(want) < tiny * mp.mpf(2) ** -53:  # rounds to 0
            return got == 0.0
        if abs(want) < tiny:  # subnormal: absolute error of a few subnormal ulps
            return abs(mp.mpf(got) - want) <= ulps * tiny * EPS
        return abs(mp.mpf(got) / want - 1) <= ulps * EPS


@pytest.mark.parametrize(
    ("grad_var", "dist", "h_min", "h_max"),
    [
        (1.0, 1.0, 1e-200, 1e-200),  # p = 5e-401 underflows: alpha = 1.36e-67, not 0
        (1.0, 1.0, 1e-320, 1e-320),  # subnormal h_min: alpha = 1.36e-107
        (5e-301, 1e-100, 1e-100, 1e-100),  # (D h_min)^2 = 1e-400 underflows, p = 1e-100 does not
        (1e300, 1e200, 1e10, 1e10),  # (D h_min)^2 = 1e420 overflows, p = 5e119: mu = 4e-240
        (1e-300, 1e200, 1e100, 1e100),  # p = 5e899: x = 2e-900, mu rounds to 0, alpha = 1/h_min
        (1.0, 1.0, 1e-320, 1e300),  # kappa = 1e620: bound active, Polyak's alpha = 4e-300
        (1.0, 1e150, 1e-150, 1e-150 * 4.0),  # p = 0.5 in range, extreme scales
        (2.0, 0.0, 1e-300, 1e300),  # D = 0: the limit mu = 1 unless the bound is active
        (0.0, 1.0, 1e-300, 1e-300),  # C = 0: x = 0, alpha = 1/h_min = 1e300
    ],
)
def test_extreme_scales_against_a_60_digit_reference(
    grad_var: float, dist: float, h_min: float, h_max: float
) -> None:
    mu, alpha = singlestep(grad_var, dist, h_min, h_max)
    mu_ref, alpha_ref = reference_singlestep(grad_var, dist, h_min, h_max)
    assert _close(float(mu), mu_ref, 16), (float(mu), mu_ref)
    assert _close(float(alpha), alpha_ref, 16), (float(alpha), alpha_ref)


def test_alpha_does_not_underflow() -> None:
    """singlestep(1, 1, 1e-200, 1e-200): alpha = 2^(-2/3) 1e-200^(1/3), computed, not 0."""
    _, alpha = singlestep(1.0, 1.0, 1e-200, 1e-200)
    with mp.workdps(50):
        want = mp.cbrt(mp.mpf(1e-200)) / mp.cbrt(4)
        assert abs(mp.mpf(float(alpha)) / want - 1) <= 4 * EPS
    assert 1.35e-67 < float(alpha) < 1.36e-67


@st.composite
def scales(draw: st.DrawFn) -> tuple[float, float, float, float]:
    """``(C, D, h_min, h_max)``: C, D, h_min anywhere in 1e-300..1e300, ``kappa`` in 2..1e10.

    ``h_max = h_min kappa`` must itself be a float64 (finite, below 1.8e308), so ``kappa`` is
    drawn below ``1e308 / h_min`` (``log10 kappa <= 308 - log10 h_min``, at least 8 because
    ``h_min <= 1e300``): every draw lies in the domain, and the largest curvatures come with the
    widest spectra they allow.
    """
    log_c, log_d, log_h = (draw(st.floats(-300.0, 300.0)) for _ in range(3))
    log_kappa = draw(st.floats(0.3, min(10.0, 308.0 - log_h)))
    h_min = 10.0**log_h
    return 10.0**log_c, 10.0**log_d, h_min, h_min * 10.0**log_kappa


EDGE = (1.0, 1.0, 1e299, 1e299 * 10.0**9.0)  # h_max = 1e308: the widest kappa at h_min = 1e299


@settings(max_examples=200, deadline=None)
@given(scales())
@example(EDGE)
def test_any_scale_matches_the_reference(args: tuple[float, float, float, float]) -> None:
    """mu and alpha to 16 ulps wherever C, D and h_min lie in 1e-300..1e300 and kappa >= 2.

    kappa >= 2 keeps h_max - h_min (in sqrt(mu_lb)) well conditioned; at the switch between the
    root and the bound, mu = max(x^2, mu_lb) and alpha are continuous, so a decision flipped by
    rounding changes neither beyond that tolerance.
    """
    c, d, h, h_max = args
    assert all(np.isfinite(args)) and 0.0 < h < h_max
    mu, alpha = singlestep(c, d, h, h_max)
    mu_ref, alpha_ref = reference_singlestep(c, d, h, h_max)
    assert _close(float(mu), mu_ref, 16), (float(mu), mu_ref)
    assert _close(float(alpha), alpha_ref, 16), (float(alpha), alpha_ref)


def test_scales_stay_in_the_domain() -> None:
    """No draw has h_max = inf (as log10 h_min = 299 with log10 kappa = 10 did): a search for
    one fails. The other three are finite by their bounds."""
    with pytest.raises(NoSuchExample):
        find(
            scales(),
            lambda a: not (np.isfinite(a[3]) and 0.0 < a[2] < a[3]),
            settings=settings(max_examples=500, database=None),
        )


@settings(max_examples=100, deadline=None)
@given(scales())
@example((1.0, 1e160, 1.0, 100.0))  # p = 5e319 beyond float64: x = 2e-320 (subnormal), not 0
@example((0.0, 1.0, 1.0, 100.0))  # C = 0: p = inf, x = 0, the bound decides
def test_parts_are_what_singlestep_is_decided_by(args: tuple[float, float, float, float]) -> None:
    """p, the cubic's root, mu_lb and the decision: bitwise those of the public functions and of
    the result, the root to 16 ulps and the decision as the 60-digit reference's."""
    c, d, h, h_max = args
    parts = _singlestep_parts(c, d, h, h_max)
    mu, alpha = singlestep(c, d, h, h_max)
    assert (parts.mu, parts.alpha) == (mu, alpha)
    assert parts.p == singlestep_p(c, d, h)
    assert parts.mu_lb == polyak_tuning(h, h_max)[1]
    assert parts.mu == (parts.mu_lb if parts.bound_active else parts.root**2)
    if parts.bound_active:  # one helper: Polyak's alpha exactly
        assert parts.alpha == polyak_tuning(h, h_max)[0]
    x, u, u_lb, _ = reference_parts(c, d, h, h_max)
    assert _close(float(parts.root), x, 16), (float(parts.root), x)
    with mp.workdps(60):
        # float64 decides on quantities good to a few ulps: a tie closer than that may flip
        s_lb = 1 - u_lb
        clear = abs(u / u_lb - 1) > 1e-13 and (x == 0 or abs(x / s_lb - 1) > 1e-13)
        if clear:
            assert bool(parts.bound_active) == bool(u > u_lb)


def test_p_is_formed_without_spurious_under_or_overflow() -> None:
    with mp.workdps(50):
        for c, d, h in [(5e-301, 1e-100, 1e-100), (1e300, 1e200, 1e10), (3.0, 2.0, 0.5)]:
            want = (mp.mpf(d) * mp.mpf(h)) ** 2 / (2 * mp.mpf(c))
            assert abs(mp.mpf(float(singlestep_p(c, d, h))) / want - 1) <= 4 * EPS
    assert float(singlestep_p(1e-300, 1e200, 1e100)) == np.inf  # p = 5e899 itself overflows
    assert float(singlestep_p(1.0, 1e-200, 1e-200)) == 0.0  # p = 5e-801 itself underflows
    assert float(singlestep_p(0.0, 1.0, 1.0)) == np.inf  # C = 0
    assert singlestep_p([1.0, 2.0], 1.0, [[1.0], [2.0]]).shape == (2, 2)
