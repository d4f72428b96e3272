"""Asynchrony closed forms against event simulation, state-space matrices and polynomial roots."""

from __future__ import annotations

import heapq
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory.asynchrony import (
    async_char_poly,
    async_spectral_radius,
    effective_step,
    fixed_delay_limit,
    implicit_momentum,
    mean_stability_limit,
    optimal_async_tuning,
    optimal_explicit_momentum,
    staleness_mean,
    staleness_pmf,
    total_momentum,
)


def _event_staleness(n_workers: int, n_updates: int, rng: np.random.Generator) -> np.ndarray:
    """Event-driven M-worker simulation: staleness = writes by others between read and write."""
    heap = [(rng.exponential(), w, 0) for w in range(n_workers)]  # (finish time, worker, read at)
    heapq.heapify(heap)
    out = np.empty(n_updates, dtype=np.int64)
    for k in range(n_updates):
        t, w, read = heapq.heappop(heap)
        out[k] = k - read  # k writes so far; this worker read after `read` of them
        heapq.heappush(heap, (t + rng.exponential(), w, k + 1))
    return out


@pytest.mark.parametrize("m", [1, 3, 8])
def test_staleness_law_matches_event_simulation(m: int) -> None:
    rng = np.random.default_rng(m)
    n = 40_000
    lags = _event_staleness(m, n, rng)[200:]  # drop start-up, where every worker read w_0
    n = lags.size
    for l in range(min(4 * m, 30)):
        p = float(staleness_pmf(l, m))
        se = np.sqrt(p * (1 - p) / n)
        # Successive lags are weakly dependent; 6 standard errors leaves room for that.
        assert abs(np.mean(lags == l) - p) <= 6 * se + 1e-12, l
    mean_se = np.sqrt(m * (m - 1) / n) + 1e-12  # sd of Geom(1/M) on {0,1,..} is sqrt(M(M-1))
    assert abs(lags.mean() - staleness_mean(m)) <= 6 * mean_se


def test_staleness_pmf_is_a_distribution_with_mean_m_minus_one() -> None:
    lags = np.arange(0, 4000)
    for m in [1.0, 2.0, 7.0, 25.0]:
        p = staleness_pmf(lags, m)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        assert (lags * p).sum() == pytest.approx(float(staleness_mean(m)), rel=1e-10)


def test_implicit_momentum_step_and_total_momentum() -> None:
    assert implicit_momentum(4) == pytest.approx(0.75)
    assert effective_step(0.8, 4) == pytest.approx(0.2)
    ms = np.array([1.0, 2.0, 5.0, 32.0])
    np.testing.assert_allclose(total_momentum(0.0, ms), implicit_momentum(ms), rtol=0, atol=1e-15)
    np.testing.assert_allclose(total_momentum(0.3, 1.0), 0.3, atol=1e-15)
    # First-order total momentum = coefficient mu_l + q - mu_l q, read off the polynomial's z^1 term
    # minus 2 mu_l q (the part that the first-order model drops).
    mu, m = 0.4, 3.0
    q = 1 - 1 / m
    coeffs = async_char_poly(0.1, mu, 1.0, m)
    assert coeffs[2] - 2 * mu * q == pytest.approx(float(total_momentum(mu, m)), abs=1e-15)


def _state_matrix(alpha: float, mu: float, h: float, m: float) -> np.ndarray:
    """Mean dynamics in the state (x_t, Delta_t, G_{t-1}) with G the expected stale gradient."""
    q = 1 - 1 / m
    # G_t = (1-q) h x_t + q G_{t-1};  Delta_{t+1} = mu Delta_t - alpha G_t;
    # x_{t+1} = x_t + Delta_{t+1}
    g_row = np.array([(1 - q) * h, 0.0, q])
    d_row = np.array([0.0, mu, 0.0]) - alpha * g_row
    x_row = np.array([1.0, 0.0, 0.0]) + d_row
    return np.stack([x_row, d_row, g_row])


@settings(max_examples=60, deadline=None)
@given(
    alpha=st.floats(1e-3, 5.0),
    mu=st.floats(-0.99, 0.99),
    h=st.floats(1e-2, 10.0),
    m=st.integers(1, 64),
)
def test_char_poly_is_that_of_the_stale_gradient_state_space(
    alpha: float, mu: float, h: float, m: int
) -> None:
    # np.poly computes the characteristic polynomial from eigenvalues; coefficients are O(1) sums
    # of products of O(1) entries, so agreement to ~1e-12 absolute is what float64 gives.
    want = np.poly(_state_matrix(alpha, mu, h, m)).real
    np.testing.assert_allclose(async_char_poly(alpha, mu, h, m), want, rtol=0, atol=1e-10)


def test_mean_recursion_simulation_decays_at_the_spectral_radius() -> None:
    # Expected iterates with the geometric kernel applied to the full history (no recursion trick).
    alpha, mu, h, m = 0.02, 0.3, 1.0, 4  # roots 0.968, 0.779, 0.299: real, well separated
    q = 1 - 1 / m
    n = 400
    x = np.zeros(n + 1)
    x[0], x[1] = 1.0, 1.0 - alpha * h  # first step: full alpha on w_0 (all workers read w_0)
    for t in range(1, n):
        past = x[t::-1]
        weights = (1 - q) * q ** np.arange(t + 1)
        weights[-1] = q**t  # lags beyond t read w_0
        g = h * (weights @ past)
        x[t + 1] = x[t] + mu * (x[t] - x[t - 1]) - alpha * g
    rate = np.exp(np.polyfit(np.arange(250, n + 1), np.log(np.abs(x[250:])), 1)[0])
    # Dominant root is real and simple here, so the log-slope converges geometrically fast.
    assert rate == pytest.approx(float(async_spectral_radius(alpha, mu, h, m)), rel=1e-6)


def test_spectral_radius_matches_numpy_roots_and_heavy_ball_for_one_worker() -> None:
    rng = np.random.default_rng(0)
    alpha = rng.uniform(1e-3, 3.0, 200)
    mu = rng.uniform(-0.95, 0.95, 200)
    h = rng.uniform(0.01, 5.0, 200)
    m = rng.integers(1, 40, 200)
    got = async_spectral_radius(alpha, mu, h, m)
    coeffs = async_char_poly(alpha, mu, h, m)
    want = np.array([np.abs(np.roots(c)).max() for c in coeffs])
    np.testing.assert_allclose(got, want, rtol=1e-9)
    # M = 1: heavy ball, whose transition matrix [[1 - a + mu, -mu], [1, 0]] we build here.
    hb = [
        np.abs(np.linalg.eigvals(np.array([[1 - a * c + u, -u], [1.0, 0.0]]))).max()
        for a, u, c in zip(alpha, mu, h, strict=True)
    ]
    np.testing.assert_allclose(async_spectral_radius(alpha, mu, h, 1), hb, rtol=1e-9)
    assert got.shape == (200,)
    assert async_spectral_radius(0.1, np.zeros((3, 1)), np.ones(4), 2).shape == (3, 4)


def _bisect_limit(radius, lo: float, hi: float, tol: float = 1e-13) -> float:
    """Largest a with radius(a) < 1, given radius(lo) < 1 <= radius(hi) and a single crossing."""
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if radius(mid) < 1.0 else (lo, mid)
    return 0.5 * (lo + hi)


def test_mean_stability_limit_matches_roots() -> None:
    for m in [1, 2, 3, 5, 10, 20]:
        lim = _bisect_limit(
            lambda a, m=m: float(async_spectral_radius(a, 0.0, 1.0, m)), 1e-6, 4.0 * m
        )
        # The crossing root is simple (z = -1), so eigenvalue error ~1e-15 moves the bisection
        # point by ~1e-14; 1e-9 relative is a loose, safe margin.
        assert lim == pytest.approx(float(mean_stability_limit(m)), rel=1e-9)


def test_fixed_delay_limit_matches_polynomial_roots() -> None:
    for tau in range(51):

        def radius(a: float, tau: int = tau) -> float:
            coeffs = np.zeros(tau + 2)
            coeffs[0], coeffs[1], coeffs[-1] = 1.0, -1.0, a
            if tau == 0:
                coeffs = np.array([1.0, -1.0 + a])
            return float(np.abs(np.roots(coeffs)).max())

        closed = float(fixed_delay_limit(tau))
        lim = _bisect_limit(radius, 0.5 * closed, min(1.5 * closed, 3.0))
        # The crossing roots are simple; companion eigenvalues of degree <= 51 are accurate to
        # ~1e-13 and d|z|/da is O(1), so the bisected limit agrees to ~1e-12: 1e-10 asked.
        assert abs(lim - closed) < 1e-10, tau


def test_optimal_explicit_momentum_matches_fine_grid_and_polyak() -> None:
    alpha = 4 / 121  # Polyak's step for h in [1, 100]
    hs = np.geomspace(1.0, 100.0, 65)
    fine = np.linspace(-0.999, 0.999, 4001)
    for m in [1, 2, 4, 8]:  # optimum: 0.669, 0.267, 0.164, 0.008
        mu, rate = optimal_explicit_momentum(alpha, 1.0, 100.0, m)
        vals = async_spectral_radius(alpha, fine[:, None], hs, m).max(axis=-1)
        # The refined minimum must be at least as good as every point of an independent fine grid
        # (spacing 5e-4) on the same curvature sample, and sit within a few cells of the grid's
        # best.
        assert rate <= vals.min() + 1e-12
        assert rate == pytest.approx(float(async_spectral_radius(alpha, mu, hs, m).max()))
        assert abs(mu - fine[np.argmin(vals)]) < 1e-2
    mu, rate = optimal_explicit_momentum(alpha, 1.0, 100.0, 1)
    assert mu == pytest.approx((9 / 11) ** 2, abs=1e-6)  # Polyak's momentum
    assert rate == pytest.approx(9 / 11, abs=1e-6)


def test_jointly_optimal_momentum_falls_with_workers_and_turns_negative() -> None:
    mus = [
        optimal_async_tuning(1.0, 100.0, m, n_alpha=25, n_h=17, n_grid=61)[1] for m in (1, 4, 16)
    ]
    assert mus[0] == pytest.approx((9 / 11) ** 2, abs=1e-3)
    assert mus[0] > mus[1] > mus[2]
    assert mus[1] < 0 and mus[2] < 0


@pytest.mark.parametrize(
    ("call", "name", "valid"),
    [
        (lambda: staleness_pmf(-1, 2), "lag", "an integer >= 0"),
        (lambda: staleness_pmf(0.5, 2), "lag", "an integer >= 0"),
        (lambda: staleness_pmf(0, 0.5), "n_workers", "[1, inf)"),
        (lambda: implicit_momentum(np.nan), "n_workers", "[1, inf)"),
        (lambda: effective_step(-0.1, 2), "alpha", "(0, inf)"),
        (lambda: total_momentum(1.0, 2), "mu_l", "(-1, 1)"),
        (lambda: async_char_poly(0.1, 0.5, 0.0, 2), "h", "(0, inf)"),
        (lambda: async_spectral_radius(0.1, -1.0, 1.0, 2), "mu_l", "(-1, 1)"),
        (lambda: mean_stability_limit(0), "n_workers", "[1, inf)"),
        (lambda: fixed_delay_limit(-1), "tau", "an integer >= 0"),
        (lambda: optimal_explicit_momentum(0.1, 2.0, 1.0, 2), "h_min", "(0, h_max]"),
        (lambda: optimal_async_tuning(1.0, 10.0, 0.0), "n_workers", "[1, inf)"),
    ],
)
def test_bad_input_names_the_parameter_and_its_range(call, name: str, valid: str) -> None:
    """The message starts with the parameter's name and states the valid range."""
    with pytest.raises(ValueError, match=rf"^{re.escape(name)}\b") as info:
        call()
    assert valid in str(info.value), str(info.value)


def test_optimal_tunings_broadcast_like_their_scalar_calls() -> None:
    """alpha, h_min, h_max, n_workers broadcast: one search per element, same as the scalar call."""
    kw = {"n_h": 9, "n_grid": 21}
    workers = np.array([1.0, 4.0])
    h_max = np.array([[10.0], [100.0]])
    mu, rate = optimal_explicit_momentum(0.05, 1.0, h_max, workers, **kw)
    assert mu.shape == rate.shape == (2, 2)
    for i, j in np.ndindex(2, 2):
        want = optimal_explicit_momentum(0.05, 1.0, float(h_max[i, 0]), float(workers[j]), **kw)
        assert (mu[i, j], rate[i, j]) == want
        assert all(isinstance(x, float) for x in want)
    kw3 = {"n_alpha": 5, "n_h": 5, "n_grid": 11}
    alpha, mu_l, rate = optimal_async_tuning(1.0, [10.0, 100.0], 2, **kw3)
    assert alpha.shape == mu_l.shape == rate.shape == (2,)
    for j, hi in enumerate((10.0, 100.0)):
        assert (alpha[j], mu_l[j], rate[j]) == optimal_async_tuning(1.0, hi, 2, **kw3)


def test_optimal_tunings_name_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"^alpha, h_min, h_max, n_workers must have broadcast"):
        optimal_explicit_momentum([0.1, 0.2], 1.0, [2.0, 3.0, 4.0], 1)
    with pytest.raises(ValueError, match=r"^h_min, h_max, n_workers must have broadcastable"):
        optimal_async_tuning([1.0, 2.0], [3.0, 4.0, 5.0], 1)
    with pytest.raises(
        ValueError, match=r"^h_min must lie in \(0, h_max\] \(got h_min=5 > h_max=4"
    ):
        optimal_async_tuning([1.0, 5.0], [3.0, 4.0], 1)
