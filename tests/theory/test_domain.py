"""Domain handling shared by every theory function: huge counts, range messages, shape errors."""

from __future__ import annotations

import re

import mpmath as mp
import numpy as np
import pytest

from theory import (
    async_char_poly,
    chebyshev_bound,
    error_gain,
    fixed_delay_limit,
    momo_beta0_bound,
    momo_sqrt_k_bound,
    polyak_tuning,
    robust_interval,
    second_moment_transient,
    singlestep,
    spectral_radius,
    staleness_pmf,
    stationary_variance,
)

EPS = np.finfo(np.float64).eps
HUGE_COUNTS = [2.0**53 + 2.0, 1e19, 2.0**63, 2.0**64, 1e20, 1e300]  # >= 2^63 wrapped in int64


@pytest.mark.parametrize("t", HUGE_COUNTS)
def test_huge_counts_are_not_wrapped(t: float) -> None:
    # sqrt(mu)^t (1 + t (1-mu)/(1+mu)) underflows to 0 (it was -inf with t cast to int64)
    assert float(chebyshev_bound(0.5, t)) == 0.0
    # a stable heavy ball forgets its start: the gain underflows to 0 (it was inf)
    assert float(error_gain(0.1, 0.5, 1.0, t)) == 0.0
    assert float(error_gain(0.1, 0.5, 1.0, t, start="matched")) == 0.0
    # P(tau = t) = (1 - q) q^t -> 0 (it was inf); with one worker q = 0, so 0 for any t > 0
    assert float(staleness_pmf(t, 2)) == 0.0
    assert float(staleness_pmf(t, 1)) == 0.0
    with mp.workdps(50):
        # D^2 / (K min{alpha, 1/(2L)}) with alpha = 1, L = 1: 2 / K (it was negative)
        want = 2 / mp.mpf(t)
        assert abs(float(momo_beta0_bound(1.0, 1.0, 1.0, t)) / want - 1) <= 2 * EPS
        # 2 sin(pi / (2 (2 tau + 1))) (it was negative)
        ref = 2 * mp.sin(mp.pi / (2 * (2 * mp.mpf(t) + 1)))
        assert abs(float(fixed_delay_limit(t)) / ref - 1) <= 4 * EPS
        got = float(momo_sqrt_k_bound(1.0, 1.0, 1.0, 0.5, t))
        ref = 1 / mp.mpf(t) + 2 / mp.sqrt(mp.mpf(t))
        assert abs(got / ref - 1) <= 4 * EPS


def test_huge_counts_keep_their_order() -> None:
    """Counts that differ only beyond 2^53 stay distinct and monotone (no int64 wrap-around)."""
    t = np.array([2.0**62, 2.0**63, 2.0**64])
    limits = fixed_delay_limit(t)
    assert np.all(limits > 0.0) and np.all(np.diff(limits) < 0.0)
    np.testing.assert_allclose(limits * t, np.pi / 2, rtol=1e-15)
    bounds = momo_beta0_bound(1.0, 1.0, 1.0, t)
    np.testing.assert_allclose(bounds, 2.0 / t, rtol=2 * EPS)


def test_counts_are_still_integers() -> None:
    for call in (
        lambda: chebyshev_bound(0.5, 1.5),
        lambda: error_gain(0.1, 0.5, 1.0, np.inf),
        lambda: staleness_pmf(-1.0, 2),
        lambda: momo_beta0_bound(1.0, 1.0, 1.0, 0.5),
        lambda: second_moment_transient(0.1, 0.5, 1.0, 1.0, 2.5),
    ):
        with pytest.raises(ValueError, match=r"must be an integer (>= \d+|in \[\d+, \d+\]) \(got "):
            call()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: spectral_radius(-1.0, 0.5, 1.0), r"^alpha must lie in \(0, inf\) \(got -1\)$"),
        (
            lambda: spectral_radius(1.0, np.nan, 1.0),
            r"^mu must be a finite real number \(got nan\)$",
        ),
        (lambda: spectral_radius(1.0, 0.5, np.inf), r"^h must lie in \(0, inf\) \(got inf\)$"),
        (
            lambda: stationary_variance(0.1, 0.5, 1.0, -1.0),
            r"^c must lie in \[0, inf\) \(got -1\)$",
        ),
        (lambda: stationary_variance(0.1, 1.0, 1.0, 1.0), r"^mu must lie in \(-1, 1\) \(got 1\)$"),
        (lambda: robust_interval(np.nan, 1.0, 2.0), r"^mu must lie in \[0, 1\) \(got nan\)$"),
        (
            lambda: robust_interval(0.5, 3.0, 2.0),
            r"^h_min must lie in \(0, h_max\] \(got h_min=3 > h_max=2\)$",
        ),
        (
            lambda: polyak_tuning([1.0, 5.0], [2.0, 4.0]),
            r"^h_min must lie in \(0, h_max\] \(got h_min=5 > h_max=4\)$",
        ),
        (lambda: staleness_pmf(0.5, 2), r"^lag must be an integer >= 0 \(got 0.5\)$"),
        (lambda: staleness_pmf(0, 0.5), r"^n_workers must lie in \[1, inf\) \(got 0.5\)$"),
    ],
)
def test_messages_name_the_parameter_and_its_range(call, message: str) -> None:
    """Infinite ends print open ("[0, inf)"): inf itself is rejected everywhere."""
    with pytest.raises(ValueError, match=message):
        call()


def test_no_message_prints_a_closed_infinite_end() -> None:
    for call in (
        lambda: stationary_variance(0.1, 0.5, 1.0, -1.0),
        lambda: singlestep(-1.0, 1.0, 1.0, 2.0),
        lambda: momo_beta0_bound(-1.0, 1.0, 1.0, 5),
    ):
        with pytest.raises(ValueError) as info:
            call()
        assert "inf]" not in str(info.value) and "[0, inf)" in str(info.value)


def test_derived_ratios_are_never_blamed() -> None:
    """h_max / h_min beyond float64 is fine: no error about a kappa the caller never passed."""
    mu, alpha = singlestep(1.0, 1.0, 1e-320, 1e300)
    h_min, h_max = mp.mpf(1e-320), mp.mpf(1e300)
    with mp.workdps(50):  # bound active: Polyak's alpha, mu = 1 - O(1e-310) rounds to 1
        want = 4 / (mp.sqrt(h_max) + mp.sqrt(h_min)) ** 2
        assert abs(float(alpha) / want - 1) <= 8 * EPS
    assert float(mu) == 1.0
    lo, hi = robust_interval(0.5, 1e-10, 1e300)  # kappa = 1e310
    assert np.isfinite(lo) and np.isfinite(hi) and lo > hi


@pytest.mark.parametrize(
    ("call", "names"),
    [
        (lambda: spectral_radius([0.1, 0.2], [0.1, 0.2, 0.3], 1.0), "alpha, mu, h"),
        (lambda: error_gain(0.1, 0.5, [1.0, 2.0], [1, 2, 3]), "alpha, mu, h, t"),
        (lambda: polyak_tuning([1.0, 2.0], [3.0, 4.0, 5.0]), "h_min, h_max"),
        (lambda: singlestep([1.0, 2.0], [1.0, 2.0, 3.0], 1.0, 2.0), "grad_var, dist_to_opt"),
        (lambda: async_char_poly([0.1, 0.2], 0.5, 1.0, [1, 2, 3]), "alpha, mu_l, h, n_workers"),
        (lambda: stationary_variance([0.1, 0.2], 0.5, 1.0, [1.0, 2.0, 3.0]), "alpha, mu, h, c"),
    ],
)
def test_shape_mismatch_names_the_parameters(call, names: str) -> None:
    with pytest.raises(ValueError, match=rf"^{re.escape(names)}.* must have broadcastable shapes"):
        call()
