"""Staleness laws and the exact event schedule against the queueing theory of asynchrony.

Mitliagkas et al. (arXiv 1605.09774), Section 3: with M exponential workers the staleness is
Geom(1/M), P(tau = l) = (1/M)(1 - 1/M)^l. Note: this file is not named test_asynchrony.py because
tests/theory/test_asynchrony.py exists and the test directories are not packages (pytest would see
two modules with one name).
"""

from __future__ import annotations

import heapq

import jax
import numpy as np
import pytest
import scipy.stats as st

from simulators.asynchrony import (
    empirical,
    fixed,
    geometric,
    staleness_from_writers,
    staleness_histogram,
    uniform,
    worker_schedule,
)
from theory.asynchrony import staleness_mean, staleness_pmf

# Chi-square acceptance level: a correct implementation fails with probability 1e-3 per test; the
# seeds are fixed, so a pass is reproducible.
P_MIN = 1e-3


def _chisquare_vs(counts: np.ndarray, probs: np.ndarray, min_expected: float = 5.0) -> float:
    """Chi-square p-value of counts against probs, pooling the tail so every bin expects >= 5."""
    counts, probs = np.asarray(counts), np.asarray(probs, dtype=np.float64)
    assert not np.any(counts[probs == 0]), "draws where the law has no mass"
    counts, probs = counts[probs > 0], probs[probs > 0]
    expected = counts.sum() * probs / probs.sum()
    # pool trailing bins whose expectation is below min_expected into one tail bin
    keep = int(np.flatnonzero(expected >= min_expected)[-1])
    obs = np.append(counts[:keep], counts[keep:].sum())
    exp = np.append(expected[:keep], expected[keep:].sum())
    return float(st.chisquare(obs, exp).pvalue)


def _geom_probs(m: int, max_lag: int) -> np.ndarray:
    """Geom(1/M) on 0..max_lag with the tail mass on max_lag, from the theory package."""
    lags = np.arange(max_lag + 1)
    p = staleness_pmf(lags, m)
    p[-1] = 1.0 - p[:-1].sum()
    return p


# ---------------------------------------------------------------- staleness laws (fast mode)


@pytest.mark.parametrize("m", [1, 2, 8, 16])
def test_geometric_law_pmf_matches_theory(m: int) -> None:
    law = geometric(m)
    lags = np.arange(law.max_lag)
    np.testing.assert_allclose(law.pmf(lags), staleness_pmf(lags, m), rtol=1e-12)
    assert abs(sum(law.probs) - 1.0) < 1e-12
    # default truncation: the clipped tail q^(max_lag) is below 1e-6 but no lag is wasted
    q = 1.0 - 1.0 / m
    assert q ** (law.max_lag + 1) <= 1e-6 or m == 1
    assert law.mean == pytest.approx(float(staleness_mean(m)), abs=1e-4 * m)


@pytest.mark.parametrize("m", [2, 8, 16])
def test_geometric_sampling_chisquare(m: int) -> None:
    law = geometric(m)
    draws = np.asarray(law.sample(jax.random.key(m), (200_000,)))
    assert draws.min() >= 0 and draws.max() <= law.max_lag
    counts = staleness_histogram(draws, max_lag=law.max_lag)
    assert _chisquare_vs(counts, np.asarray(law.probs)) > P_MIN


def test_other_laws_sampling() -> None:
    key = jax.random.key(1)
    assert np.all(np.asarray(fixed(5).sample(key, (100,))) == 5)
    u = np.asarray(uniform(2, 6).sample(key, (100_000,)))
    assert u.min() == 2 and u.max() == 6
    assert _chisquare_vs(staleness_histogram(u, max_lag=6), np.asarray(uniform(2, 6).probs)) > P_MIN
    hist = np.array([5, 0, 3, 2, 0, 0])
    law = empirical(hist)
    assert law.max_lag == 3  # trailing empty bins dropped
    e = np.asarray(law.sample(key, (100_000,)))
    assert not np.any(e == 1)
    assert _chisquare_vs(staleness_histogram(e, max_lag=3), hist[:4] / 10.0) > P_MIN


def test_law_sampling_is_jittable_and_vmappable() -> None:
    law = geometric(4)
    keys = jax.random.split(jax.random.key(0), 3)
    out = jax.jit(jax.vmap(lambda k: law.sample(k, (7,))))(keys)
    assert out.shape == (3, 7) and out.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(out[1]), np.asarray(law.sample(keys[1], (7,))))


def test_staleness_histogram_burn_in_and_tail_bin() -> None:
    s = np.array([[9, 9, 0, 1, 1, 7], [9, 9, 2, 2, 2, 0]])
    h = staleness_histogram(s, burn_in=2, max_lag=3)
    assert h.tolist() == [2, 2, 3, 1]  # 7 goes to the tail bin 3
    assert staleness_histogram(np.array([0, 4]), max_lag=None).tolist() == [1, 0, 0, 0, 1]


# ---------------------------------------------------------------- exact schedule


def _event_loop(rates: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Straightforward heapq parameter server with deterministic times 1/r_j: writers, staleness."""
    heap = [(1.0 / r, j) for j, r in enumerate(rates)]
    heapq.heapify(heap)
    read = np.zeros(len(rates), dtype=np.int64)  # version each worker read
    writers, stale = [], []
    for version in range(n):
        t, j = heapq.heappop(heap)
        writers.append(j)
        stale.append(version - read[j])
        read[j] = version + 1
        heapq.heappush(heap, (t + 1.0 / rates[j], j))
    return np.array(writers), np.array(stale)


def test_schedule_matches_event_loop_with_incommensurate_rates() -> None:
    # irrational speed ratios: no ties, so the order is unambiguous for both implementations
    rates = np.array([1.0, np.sqrt(2.0), np.pi / 3.0, np.e / 2.0, 0.3])
    s = worker_schedule(5, 3000, np.random.default_rng(0), compute="deterministic", rates=rates)
    writers, stale = _event_loop(rates, 3000)
    np.testing.assert_array_equal(s.worker, writers)
    np.testing.assert_array_equal(s.staleness, stale)
    assert np.all(np.diff(s.times) >= 0)
    # each worker writes in proportion to its speed (up to one update per worker)
    counts = np.bincount(s.worker, minlength=5)
    assert np.all(np.abs(counts - 3000 * rates / rates.sum()) <= 1.0 + 1e-9)


def test_staleness_from_writers_brute_force() -> None:
    rng = np.random.default_rng(3)
    w = rng.integers(0, 6, 500)
    expect = []
    for n in range(w.size):
        prev = [p for p in range(n) if w[p] == w[n]]
        expect.append(n - (prev[-1] + 1) if prev else n)
    np.testing.assert_array_equal(staleness_from_writers(w), expect)


@pytest.mark.parametrize("m", [1, 4, 16])
def test_deterministic_equal_workers_have_fixed_staleness(m: int) -> None:
    s = worker_schedule(m, 40 * m, np.random.default_rng(0), compute="deterministic")
    np.testing.assert_array_equal(s.staleness[:m], np.arange(m))  # first round reads w_0
    assert np.all(s.staleness[m:] == m - 1)
    np.testing.assert_array_equal(s.worker, np.tile(np.arange(m), 40))  # round-robin


def test_deterministic_heterogeneous_mean_staleness_is_m_minus_1() -> None:
    # Any periodic schedule: worker j writes a fraction p_j of the updates with gaps 1/p_j, so its
    # staleness averages 1/p_j - 1 and the overall mean is sum_j p_j (1/p_j - 1) = M - 1.
    rates = np.array([1.0, 2.0, 4.0])
    s = worker_schedule(3, 7007, np.random.default_rng(0), compute="deterministic", rates=rates)
    assert s.staleness[7:].mean() == pytest.approx(2.0, abs=2e-3)
    # period of 7 updates: the fast worker (rate 4) writes 4 of them
    assert np.bincount(s.worker[7:7007], minlength=3).tolist() == [1000, 2000, 4000]


@pytest.mark.parametrize("m", [1, 2, 8, 16])
def test_exponential_equal_workers_geometric_chisquare(m: int) -> None:
    s = worker_schedule(m, 150_000, np.random.default_rng(10 + m))
    burn = 50 * m  # start-up: every worker first reads w_0
    max_lag = max(1, int(np.ceil(np.log(1e-6) / np.log(1.0 - 1.0 / m)))) if m > 1 else 0
    counts = staleness_histogram(s.staleness, burn_in=burn, max_lag=max_lag)
    if m == 1:
        assert counts.tolist() == [150_000 - burn]
        return
    assert _chisquare_vs(counts, _geom_probs(m, max_lag)) > P_MIN
    # the writer of each update is uniform over workers
    w_counts = np.bincount(s.worker, minlength=m)
    assert st.chisquare(w_counts).pvalue > P_MIN
    # mean: the standard error uses the geometric variance q/(1-q)^2 and an autocorrelation
    # allowance of 3x (the staleness sequence is dependent); 5 such errors is a generous band
    tau = s.staleness[burn:]
    se = np.sqrt(m * (m - 1) / tau.size) * 3.0
    assert abs(tau.mean() - staleness_mean(m)) < 5 * se


def test_exponential_heterogeneous_workers_mixture_chisquare() -> None:
    # Worker j (rate r_j) writes a fraction p_j = r_j / R of the updates and the other workers'
    # updates between two of its writes are Geom(p_j): the staleness law is the mixture
    # sum_j p_j * Geom(p_j) (mean still M - 1).
    rates = np.array([0.5, 1.0, 1.0, 3.0])
    s = worker_schedule(4, 150_000, np.random.default_rng(2), rates=rates)
    p = rates / rates.sum()
    max_lag = 80
    lags = np.arange(max_lag + 1)
    mix = (p[:, None] ** 2 * (1 - p[:, None]) ** lags).sum(axis=0)
    mix[-1] = 1.0 - mix[:-1].sum()
    counts = staleness_histogram(s.staleness, burn_in=400, max_lag=max_lag)
    assert _chisquare_vs(counts, mix) > P_MIN
    assert st.chisquare(np.bincount(s.worker, minlength=4), 150_000 * p).pvalue > P_MIN


# ---------------------------------------------------------------- bad input


def test_bad_input_raises_with_parameter_name() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n_workers"):
        worker_schedule(0, 10, rng)
    with pytest.raises(ValueError, match="n_updates"):
        worker_schedule(2, 0, rng)
    with pytest.raises(ValueError, match="compute"):
        worker_schedule(2, 10, rng, compute="poisson")
    with pytest.raises(ValueError, match="rates"):
        worker_schedule(2, 10, rng, rates=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="rates"):
        worker_schedule(2, 10, rng, rates=np.ones(3))
    with pytest.raises(ValueError, match="rng"):
        worker_schedule(2, 10, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_workers"):
        geometric(0)
    with pytest.raises(ValueError, match="tau"):
        fixed(-1)
    with pytest.raises(ValueError, match="high"):
        uniform(3, 2)
    with pytest.raises(ValueError, match="histogram"):
        empirical(np.array([0.0, 0.0]))
    with pytest.raises(ValueError, match="histogram"):
        empirical(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="burn_in"):
        staleness_histogram(np.array([1, 2]), burn_in=2)
    with pytest.raises(ValueError, match="staleness"):
        staleness_histogram(np.array([0.5, 1.0]))


@pytest.mark.slow
@pytest.mark.parametrize("m", [32, 64])
def test_many_workers_long_run_geometric_chisquare(m: int) -> None:
    s = worker_schedule(m, 2_000_000, np.random.default_rng(m))
    max_lag = int(np.ceil(np.log(1e-6) / np.log(1.0 - 1.0 / m)))
    counts = staleness_histogram(s.staleness, burn_in=100 * m, max_lag=max_lag)
    assert _chisquare_vs(counts, _geom_probs(m, max_lag)) > P_MIN
