"""The empirical staleness law and the geometric truncation, against the simulators' laws."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest
from scipy import stats

import simulators.asynchrony as sim_async
from gpu import stale
from gpu.train import train
from simulators import quadratic
from tests.gpu._helpers import digits_task, mlp


def test_empirical_law_samples_its_histogram() -> None:
    hist = np.array([5.0, 0.0, 3.0, 2.0, 0.0, 0.0])
    law = stale.empirical(hist)
    assert law.max_tau == 3 and law.buffer_size == 4  # trailing empty bins dropped
    np.testing.assert_allclose(law.pmf(), [0.5, 0.0, 0.3, 0.2])
    n = 20_000
    taus = np.asarray(jax.vmap(law.sample)(jax.random.split(jax.random.key(3), n)))
    counts = np.bincount(taus, minlength=4)
    assert counts[1] == 0 and taus.max() <= 3  # an empty inner bin is never drawn
    keep = law.pmf() > 0
    expected = law.pmf()[keep] * n
    chi2 = (((counts[keep] - expected) ** 2) / expected).sum()
    assert chi2 < stats.chi2.ppf(0.999, df=keep.sum() - 1)


def test_empirical_law_replays_an_exact_mode_histogram_like_the_simulators() -> None:
    tr = sim_async.simulate_async_exact(quadratic([1.0]), optax.sgd(0.01), 3000, 4, seed=0)
    hist = sim_async.staleness_histogram(tr.staleness, burn_in=100)
    ours, theirs = stale.empirical(hist), sim_async.empirical(hist)
    assert ours.max_tau == theirs.max_lag
    np.testing.assert_allclose(ours.pmf(), theirs.pmf(np.arange(theirs.max_lag + 1)), rtol=1e-15)
    # a short stale run with it: every delay lies in the support, clipped to t at start-up
    r = train(mlp(), optax.sgd(0.1), digits_task(), steps=40, chunk=40, staleness=ours)
    tau = r.metrics["tau"]
    assert np.all(tau <= np.minimum(np.arange(40), ours.max_tau))
    assert np.all(ours.pmf()[tau[ours.max_tau :]] > 0)


@pytest.mark.parametrize("m", [4, 16])
def test_geometric_truncation_documented_against_the_simulators(m: int) -> None:
    gpu_default, sim_default = stale.geometric(m), sim_async.geometric(m)
    q = 1 - 1 / m
    # gpu: tail mass <= 1e-4 (each lag costs a parameter snapshot); simulators: <= 1e-6
    assert q ** (gpu_default.max_tau + 1) <= 1e-4 < q**gpu_default.max_tau
    assert q ** (sim_default.max_lag + 1) <= 1e-6 < q**sim_default.max_lag
    assert gpu_default.max_tau < sim_default.max_lag
    same = stale.geometric(m, tail=1e-6)
    assert same.max_tau == sim_default.max_lag
    lags = np.arange(same.max_tau + 1)
    np.testing.assert_allclose(same.pmf(), sim_default.pmf(lags), rtol=1e-12)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: stale.empirical([]), "histogram"),
        (lambda: stale.empirical([[1, 2]]), "histogram"),
        (lambda: stale.empirical([0, 0]), "histogram"),
        (lambda: stale.empirical([1, -1]), "histogram"),
        (lambda: stale.empirical([1, np.nan]), "histogram"),
        (lambda: stale.geometric(4, tail=0.0), "tail"),
        (lambda: stale.geometric(4, tail=1.0), "tail"),
    ],
)
def test_staleness_law_validation(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
