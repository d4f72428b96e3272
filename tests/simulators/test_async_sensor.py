"""Total-momentum sensor on recorded trajectories (synchronous, asynchronous) and the closed loop.

YellowFin (arXiv 1706.03471, Sec. 4): synchronously the sensor reads the algorithmic momentum; under
M-worker geometric staleness, with the step alpha/M in the numerator and the gradient at the current
point, it reads the total momentum of the mean dynamics, about 1 - (1 - mu_L)/M
(Mitliagkas et al., arXiv 1605.09774).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optimizers import closed_loop_yellowfin, heavy_ball, momentum_feedback
from simulators.asynchrony import (
    fixed,
    simulate_async_exact,
    simulate_async_fast,
    total_momentum_from_trajectory,
)
from theory.asynchrony import total_momentum


class Quad:
    """Diagonal quadratic with minimiser 0 and optional Gaussian gradient noise (test-local)."""

    def __init__(self, h: np.ndarray, noise_std: float = 0.0) -> None:
        self.h = jnp.asarray(h, jnp.float32)
        self.x_star = jnp.zeros_like(self.h)
        self.x0 = jnp.ones_like(self.h)
        self.noise_std = noise_std

    def loss(self, x, key=None):
        return 0.5 * jnp.sum(self.h * x * x)

    def value_and_grad(self, x, key=None):
        g = self.h * x
        if key is not None and self.noise_std > 0:
            g = g + self.noise_std * jax.random.normal(key, g.shape, g.dtype)
        return self.loss(x), g


def numpy_sensor(x: np.ndarray, g: np.ndarray, a: float, s: int, rel: float = 1e-6) -> float:
    """Brute-force reading paired with x_s: median_i (d_{s+1} + a g) / d_s over usable i."""
    d_next, d_prev = x[s + 1] - x[s], x[s] - x[s - 1]
    ok = (np.abs(d_prev) > rel * np.abs(d_prev).max()) & (d_prev != 0)
    return float(np.median((d_next[ok] + a * g[ok]) / d_prev[ok]))


def test_per_step_readings_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.standard_normal((30, 7)), axis=0)
    g = rng.standard_normal((29, 7))
    r = total_momentum_from_trajectory(x, g, 0.3)
    assert np.isnan(r.per_step[0])
    want = [numpy_sensor(x, g[s], 0.3, s) for s in range(1, 29)]
    np.testing.assert_allclose(r.per_step[1:], want, rtol=2e-5, atol=2e-5)  # float32 readings
    assert r.median == pytest.approx(np.median(want), rel=1e-4, abs=1e-5)
    # stale form: gradient applied at step t was evaluated at x_{t - tau_t}
    tau = rng.integers(0, 4, 29)
    rs = total_momentum_from_trajectory(x, g, 0.3, staleness=tau)
    # every evaluation point s >= 1 carries the reading of the latest step t with t - tau_t = s
    latest = {int(t - tau[t]): t for t in range(29) if t - tau[t] >= 1}
    # a point s is hit with probability 1 - (3/4)^4 = 0.68 (tau uniform on 0..3): 15 of 28 here
    assert len(latest) >= 10
    for s_point, t in latest.items():
        assert rs.per_step[s_point] == pytest.approx(
            numpy_sensor(x, g[t], 0.3, s_point), rel=1e-4, abs=1e-5
        ), (s_point, t)
    unpaired = sorted(set(range(29)) - set(latest))
    assert unpaired and np.all(np.isnan(rs.per_step[unpaired]))
    zero = total_momentum_from_trajectory(x, g, 0.3, staleness=np.zeros(29, int))
    np.testing.assert_allclose(zero.per_step, r.per_step, equal_nan=True)


@pytest.mark.parametrize(("mu", "noise_std"), [(0.0, 0.05), (0.5, 0.0), (0.9, 0.05)])
def test_synchronous_run_reads_the_algorithmic_momentum(mu: float, noise_std: float) -> None:
    obj = Quad(np.linspace(0.1, 1.0, 40), noise_std)
    alpha = 0.3
    tr = simulate_async_fast(
        obj, heavy_ball(alpha, mu), 600, jax.random.key(1), fixed(0), record_grads=True
    )
    r = total_momentum_from_trajectory(tr.iterates, tr.grads, alpha, burn_in=2)
    # the identity d_{s+1} = mu d_s - alpha g_s holds per coordinate up to float32 rounding
    assert abs(r.median - mu) < 0.02
    assert abs(r.mean - mu) < 0.02


@pytest.mark.parametrize("m", [4, 8])
@pytest.mark.parametrize("mu_l", [0.0, 0.5])
def test_geometric_staleness_reads_the_total_momentum(m: int, mu_l: float) -> None:
    obj = Quad(np.linspace(0.5, 1.0, 50))
    alpha = 0.01  # small step: the sensor's bias of order alpha * h * E[tau] stays below 0.01
    opt = optax.sgd(alpha, momentum=mu_l if mu_l else None)
    tr = simulate_async_exact(obj, opt, 4000, m, seed=0, record_grads=True)
    total = total_momentum_from_trajectory(tr.iterates, tr.fresh_grads, alpha / m, burn_in=200)
    # first-order total momentum 1 - (1 - mu_L)/M; tolerance 0.02 covers the sensor's bias and
    # the first-order approximation (the measured deviation is <= 0.008 for these settings)
    assert total.mean == pytest.approx(float(total_momentum(mu_l, m)), abs=0.02)
    assert total.mean > mu_l + 0.5 * (1.0 - mu_l) * (1.0 - 1.0 / m)  # far above the algorithmic
    # the algorithmic convention (applied stale gradient, the algorithm's step) reads mu_L exactly
    algo = total_momentum_from_trajectory(tr.iterates, tr.grads, alpha, burn_in=200)
    assert algo.median == pytest.approx(mu_l, abs=1e-3)


def test_closed_loop_compensates_the_implicit_momentum() -> None:
    # momentum_feedback with the total convention steers mu_algo so that the measured total
    # momentum reaches the target: first order, 1 - (1 - mu_algo)/M = target, mu_algo = 0.2.
    m, target = 8, 0.9
    obj = Quad(np.linspace(0.5, 1.0, 40))
    opt = momentum_feedback(
        0.01, target, effective_workers=m, max_staleness=200, sensor_convention="total"
    )
    tr = simulate_async_exact(obj, opt, 6000, m, seed=0, pass_staleness=True, record_every=10)
    mu_algo = np.asarray(tr.stats["mu_algo"])[-200:]
    mu_hat = np.asarray(tr.stats["mu_hat"])[-200:]
    assert not bool(tr.diverged)
    assert mu_hat.mean() == pytest.approx(target, abs=0.02)
    assert mu_algo.mean() == pytest.approx(1.0 - m * (1.0 - target), abs=0.1)


def test_yellowfin_closed_loop_runs_in_the_exact_simulator() -> None:
    m = 8
    obj = Quad(np.linspace(0.5, 1.0, 40), noise_std=0.01)
    yf = closed_loop_yellowfin(effective_workers=m, max_staleness=200)
    tr = simulate_async_exact(obj, yf, 4000, m, seed=0, pass_staleness=True, record_every=10)
    stats = {k: np.asarray(v) for k, v in tr.stats.items()}
    assert not bool(tr.diverged)
    # YellowFin's tuned step keeps the noisy run well inside its start distance (not monotone)
    assert np.median(np.asarray(tr.distances)[200:]) < 0.3 * float(tr.distances[0])
    # the loop lowers the algorithmic momentum below SingleStep's target to offset asynchrony
    assert stats["mu_algo"][-100:].mean() < stats["mu_target"][-100:].mean() - 0.05


def test_bad_input_raises_with_parameter_name() -> None:
    x = np.zeros((5, 2))
    g = np.zeros((4, 2))
    with pytest.raises(ValueError, match="iterates"):
        total_momentum_from_trajectory(np.zeros((2, 2)), np.zeros((1, 2)), 0.1)
    with pytest.raises(ValueError, match="grads"):
        total_momentum_from_trajectory(x, np.zeros((5, 2)), 0.1)
    with pytest.raises(ValueError, match="step_size"):
        total_momentum_from_trajectory(x, g, -0.1)
    with pytest.raises(ValueError, match="step_size"):
        total_momentum_from_trajectory(x, g, np.ones(3))
    with pytest.raises(ValueError, match="burn_in"):
        total_momentum_from_trajectory(x, g, 0.1, burn_in=4)
    with pytest.raises(ValueError, match="staleness"):
        total_momentum_from_trajectory(x, g, 0.1, staleness=np.array([0, 1, -1, 0]))
