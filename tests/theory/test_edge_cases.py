"""Extreme input: every result is finite, inf or a ValueError naming a parameter; never NaN,
never a floating-point warning. Counts beyond float64 give their limit; grid sizes are bounded."""

from __future__ import annotations

import inspect
import itertools
import re
import time
import warnings
from collections.abc import Callable
from typing import Any

import mpmath as mp
import numpy as np
import pytest

import theory

# extreme floats, huge Python integers (counts beyond float64) and ordinary values
EXTREMES: list[Any] = [
    0.0,
    5e-324,
    1e-308,
    1e-6,
    0.3,
    0.5,
    0.9,
    0.999,
    1.0,
    2.0,
    10.0,
    1e6,
    1e154,
    1e308,
    -0.5,
    -1e308,
    8,
    10**20,
    10**400,
    -(10**400),
]

ELEMENTWISE = [
    "async_char_poly",
    "async_spectral_radius",
    "chebyshev_bound",
    "effective_step",
    "eigenvalues",
    "error_gain",
    "fixed_delay_limit",
    "implicit_momentum",
    "is_stable",
    "mean_stability_limit",
    "min_robust_momentum",
    "momo_beta0_bound",
    "momo_distance_certificate",
    "momo_sqrt_k_bound",
    "momo_step_lower_bound",
    "nqm_floor",
    "polyak_tuning",
    "regime",
    "robust_interval",
    "second_moment_operator",
    "singlestep",
    "singlestep_objective",
    "singlestep_p",
    "singlestep_root",
    "spectral_radius",
    "staleness_mean",
    "staleness_pmf",
    "stationary_loss",
    "stationary_variance",
    "tolerated_dynamic_range",
    "total_momentum",
    "transition_matrix",
]


def _strict(call: Callable[[], Any], params: list[str]) -> str:
    """Run ``call`` with warnings as errors; return "ok" or "ValueError" after checking both.

    A result must hold no NaN; a ValueError must start with one of ``params`` (a message about a
    combination such as ``alpha*h`` starts with its first parameter's name too).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            out = call()
        except ValueError as err:
            msg = str(err)
            assert any(re.match(rf"{re.escape(p)}\b", msg) for p in params), msg
            return "ValueError"
    for arr in out if isinstance(out, tuple) else (out,):
        arr = np.asarray(arr)
        if arr.dtype.kind in "fc":
            assert not np.isnan(arr).any(), arr
    return "ok"


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_seeded_grid_of_extremes(name: str) -> None:
    """Every combination for one or two arguments, 250 seeded draws above (about 5000 calls)."""
    fn = getattr(theory, name)
    params = [p.name for p in inspect.signature(fn).parameters.values() if p.default is p.empty]
    if len(params) <= 2:
        cases = list(itertools.product(EXTREMES, repeat=len(params)))
    else:
        rng = np.random.default_rng(sum(map(ord, name)))
        cases = [
            tuple(EXTREMES[i] for i in rng.integers(len(EXTREMES), size=len(params)))
            for _ in range(250)
        ]
    outcomes = {_strict(lambda args=args: fn(*args), params) for args in cases}
    assert "ok" in outcomes  # the grid reaches accepted input, not only errors


def test_searches_and_transients_on_extremes() -> None:
    values: list[Any] = [5e-324, 1e-6, 0.5, 1.0, 10.0, 1e308, 10**400]
    rng = np.random.default_rng(7)
    for _ in range(40):
        a, mu, h, c = (values[i] for i in rng.integers(len(values), size=4))
        mu = [0.0, 0.5, -0.5, 1e308][int(rng.integers(4))]
        _strict(
            lambda a=a, mu=mu, h=h, c=c: theory.second_moment_transient(a, mu, h, c, 5),
            ["alpha", "mu", "h", "c"],
        )
        lo, hi = sorted(float(x) for x in rng.choice([1e-300, 1.0, 10.0, 1e300], size=2))
        _strict(
            lambda a=a, m=mu, lo=lo, hi=hi: theory.peak_transient(a, m, lo, hi, n_h=3, t_max=20),
            ["alpha", "mu", "h_min", "t_max"],
        )
        _strict(
            lambda a=a, lo=lo, hi=hi, m=c: theory.optimal_explicit_momentum(
                a, lo, hi, m, n_h=2, n_grid=3
            ),
            ["alpha", "h_min", "h_max", "n_workers"],
        )


def test_counts_beyond_float64_give_their_limit() -> None:
    big = 10**400
    assert float(theory.chebyshev_bound(0.5, big)) == 0.0
    assert float(theory.chebyshev_bound(0.0, big)) == 0.0
    assert theory.chebyshev_bound(0.5, [2, big]).tolist() == [
        float(theory.chebyshev_bound(0.5, 2)),
        0.0,
    ]
    assert float(theory.staleness_pmf(big, 8)) == 0.0
    assert float(theory.staleness_pmf(0, big)) == 0.0
    assert float(theory.implicit_momentum(big)) == 1.0
    assert float(theory.total_momentum(0.5, big)) == 1.0
    assert float(theory.effective_step(1e308, big)) == 0.0
    assert float(theory.staleness_mean(big)) == np.inf
    assert float(theory.mean_stability_limit(big)) == np.inf
    assert float(theory.fixed_delay_limit(big)) == 0.0
    assert float(theory.momo_beta0_bound(1.0, 1.0, 1.0, big)) == 0.0
    assert float(theory.momo_sqrt_k_bound(1e308, 1.0, 1e308, 0.5, big)) == 0.0
    # error gain as t -> inf: 0 when stable, inf beyond, |1 + mu c| / (1 - mu) on the edge
    assert float(theory.error_gain(0.1, 0.5, 1.0, big)) == 0.0
    assert float(theory.error_gain(5.0, 0.5, 1.0, big)) == np.inf
    edge = float(theory.error_gain(3.0, 0.5, 1.0, big))  # alpha h = 2 (1 + mu): roots -1, -0.5
    assert edge == pytest.approx(3.0, rel=1e-15)
    assert float(theory.error_gain(3.0, 0.5, 1.0, 2000)) == pytest.approx(edge, rel=1e-12)
    assert float(theory.error_gain(3.0, 0.5, 1.0, big, start="matched")) == pytest.approx(1.0)
    # a count below every bound is still an error; an explicit float inf too
    with pytest.raises(ValueError, match=r"^lag must be an integer >= 0"):
        theory.staleness_pmf(-(10**400), 8)
    with pytest.raises(ValueError, match=r"^n_workers must lie in \[1, inf\)"):
        theory.staleness_pmf(0, -(10**400))


def test_real_parameter_beyond_float64_names_itself() -> None:
    with pytest.raises(ValueError, match=r"^alpha must lie in the float64 range .*1\.798e\+308"):
        theory.spectral_radius(10**400, 0.5, 1.0)
    with pytest.raises(ValueError, match=r"^c must lie in the float64 range"):
        theory.stationary_loss(0.1, 0.5, 1.0, [1.0, 10**400])


def test_radius_beyond_d_range_is_finite_and_exact() -> None:
    """b = 1 + mu - alpha h near 1e308: D = b^2 - 4 mu overflows, the radius does not."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rho = float(theory.spectral_radius(0.5, 1e308, 1.0))
        z = theory.eigenvalues(0.5, 1e308, 1.0)
        neg = float(theory.spectral_radius(1e-300, -1e308, 1.0))
    with mp.workdps(60):
        for mu, a, got in ((1e308, 0.5, rho), (-1e308, 1e-300, neg)):
            b = 1 + mp.mpf(mu) - mp.mpf(a)
            ref = (abs(b) + mp.sqrt(b * b - 4 * mp.mpf(mu))) / 2
            assert abs(got / ref - 1) <= 4e-16
    assert abs(z[0]) == pytest.approx(rho, rel=1e-15)
    assert float(theory.async_spectral_radius(1e308, 0.5, 1e308, 1)) == np.inf


def test_unstable_transient_grows_to_inf_not_nan() -> None:
    """alpha h = 10 > 2 (1 + mu): the moments overflow; values in range are the plain ones."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = theory.second_moment_transient(1.0, 0.5, 10.0, 1.0, 400)
    assert not np.isnan(p).any()
    assert np.all(p[-1] == np.inf)  # E x v > 0 here: T's dominant eigenvector is positive
    t_op = theory.second_moment_operator(1.0, 0.5, 10.0)
    plain = [np.array([1.0, 0.0, 0.0])]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(400):
            plain.append(np.einsum("ij,j->i", t_op, plain[-1]) + 1.0)
    plain_arr = np.array(plain)
    finite = np.all(np.isfinite(plain_arr), axis=1)
    assert finite.sum() > 100
    np.testing.assert_array_equal(p[finite], plain_arr[finite])  # powers of two: exact
    # entries of T beyond float64 (alpha h = 1e616) and mu = 0: no 0 * inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = theory.second_moment_transient(1e308, 0.0, 1e308, 1e308, 3)
        op = theory.second_moment_operator(1e308, 0.0, 1e308)
    assert not np.isnan(big).any() and not np.isnan(op).any()
    assert op[0, 2] == 0.0 and op[0, 0] == np.inf


def test_stationary_loss_at_subnormal_curvature() -> None:
    """loss = (1+mu) alpha c / (2 (1-mu) (2 (1+mu) - alpha h)): h cancels (it was 0 * inf)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = float(theory.stationary_loss(0.1, 0.9, 5e-324, 1.0))
        var = float(theory.stationary_variance(0.1, 0.9, 5e-324, 1.0))
        # three finite losses of 7.5e307 each: their sum overflows
        floor = float(theory.nqm_floor(1.0, 0.5, [1e-308] * 3, [1.5e308] * 3))
    assert loss == pytest.approx(1.9 * 0.1 / (2 * 0.1 * 3.8), rel=1e-15)
    assert var == np.inf  # 0.19 / (0.1 * 5e-324 * 3.8) lies beyond float64
    assert floor == np.inf
    # values inside the range are unchanged by the scaled evaluation
    with mp.workdps(40):
        a, mu, h, c = mp.mpf(0.3), mp.mpf(0.7), mp.mpf(2.5), mp.mpf(1e-3)
        ref = (1 + mu) * a * c / ((1 - mu) * h * (2 * (1 + mu) - a * h))
    assert float(theory.stationary_variance(0.3, 0.7, 2.5, 1e-3)) == pytest.approx(
        float(ref), rel=4e-16
    )


def test_errors_name_the_right_parameter() -> None:
    # the search range [0.01 / h_max, 4 M / h_max] is formed in logs: M = 1e308 runs
    alpha, mu, rate = theory.optimal_async_tuning(1.0, 100.0, 1e308, n_alpha=3, n_h=2, n_grid=3)
    assert np.isfinite([alpha, mu, rate]).all()
    with pytest.raises(ValueError, match=r"^n_workers / h_max must be at most"):
        theory.optimal_async_tuning(1.0, 100.0, 10**400, n_alpha=3, n_h=2, n_grid=3)
    # alpha h beyond float64: every momentum diverges, the rate is inf (was LinAlgError)
    mu, rate = theory.optimal_explicit_momentum(1e308, 1.0, 100.0, 1, n_h=2, n_grid=3)
    assert rate == np.inf and -1.0 < mu < 1.0


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: theory.curvature_range(np.sin, 0.0, 0.0, 1.0, n=[3, 4]), "n"),
        (lambda: theory.robust_on_interval(0.1, 0.5, np.sin, 0.0, 0.0, 1.0, n=[3]), "n"),
        (lambda: theory.peak_transient(0.1, 0.5, 1.0, 2.0, n_h=[2, 3]), "n_h"),
        (lambda: theory.peak_transient(0.1, 0.5, 1.0, 2.0, t_max=[5]), "t_max"),
        (lambda: theory.second_moment_transient(0.1, 0.5, 1.0, 1.0, [1, 2]), "steps"),
        (lambda: theory.nqm_spectrum([3]), "dim"),
        (lambda: theory.nqm_spectrum(3, [1.0, 2.0]), "p"),
        (lambda: theory.nqm_spectrum(3, 1.0, [1, 2]), "batch_size"),
        (lambda: theory.optimal_explicit_momentum(0.1, 1.0, 2.0, 1, n_grid=[3]), "n_grid"),
        (lambda: theory.optimal_async_tuning(1.0, 2.0, 1, n_alpha=[3]), "n_alpha"),
    ],
)
def test_array_for_a_scalar_argument_names_it(call: Callable[[], Any], name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must be a single"):
        call()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: theory.curvature_range(np.sin, 0.0, 0.0, 1.0, n=10**9),
            r"^n must be an integer in \[2, 1000000\] \(got 1e\+09\)",
        ),
        (
            lambda: theory.curvature_range(np.sin, 0.0, 0.0, 1.0, n=10**400),
            r"^n must be an integer in \[2, 1000000\] \(got an integer beyond",
        ),
        (
            lambda: theory.second_moment_transient(0.1, 0.5, 1.0, 1.0, 10**7),
            r"^steps must be an integer in \[0, 1000000\]",
        ),
        (lambda: theory.nqm_spectrum(10**8), r"^dim must be an integer in \[1, 10000000\]"),
        (
            lambda: theory.peak_transient(0.1, 0.5, 1.0, 2.0, n_h=10**6),
            r"^n_h must be an integer in \[2, 65536\]",
        ),
        (
            lambda: theory.peak_transient(0.1, 0.5, 1.0, 2.0, t_max=10**6),
            r"^t_max must be below \d+ for 257 curvatures",
        ),
        (
            lambda: theory.optimal_explicit_momentum(0.1, 1.0, 2.0, 1, n_h=2000),
            r"^n_h must be an integer in \[2, 1024\]",
        ),
        (
            lambda: theory.optimal_async_tuning(1.0, 2.0, 1, n_alpha=1024, n_h=1024),
            r"^n_alpha \* n_h \* n_grid must be at most 4194304",
        ),
    ],
)
def test_grid_sizes_are_bounded(call: Callable[[], Any], message: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ValueError, match=message):
        call()
    assert time.perf_counter() - start < 1.0  # refused before any allocation or scan


def test_peak_search_too_long_is_refused_before_scanning() -> None:
    """alpha = 1e-6 on [1, 10]: 1 / -log(rho) ~ 5e5 steps exceed the cap; decided up front."""
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"^t_max is required: the radius 0\.99999"):
        theory.peak_transient(1e-6, 0.5, 1.0, 10.0)
    assert time.perf_counter() - start < 0.5
    # a finite horizon still answers
    peak, t_peak = theory.peak_transient(1e-6, 0.5, 1.0, 10.0, t_max=100)
    assert float(peak) == 1.0 and int(t_peak) == 0
