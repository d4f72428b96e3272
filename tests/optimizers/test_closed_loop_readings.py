"""What the closed loop's sensor reads on each wrapped optimizer, against theory.momentum_readings.

Synchronous runs on a quadratic (the derived reading of each optimizer: heavy ball mu, the
averaging form b (c_k / c_{k-1}) (D_{k-1} / D_k), Adam at a noise floor), then M = 8 workers
with geometric staleness, where the total convention reads the first-order total momentum
1 - (1 - r)/M (theory.total_momentum). The controller is frozen (gain 1e-9) so that the
hyper-parameter stays at its value.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optimizers import closed_loop, heavy_ball, momo, momo_adam
from tests.optimizers._stale_loop import geometric_staleness, run_stale
from theory import total_momentum
from theory.momentum_readings import (
    adam_noise_reading,
    adam_reading,
    averaged_reading,
    derive_averaged_move,
)

CURV = np.geomspace(0.05, 1.0, 256)
FROZEN = 1e-9
inject = optax.inject_hyperparams


def sensor_median(per_coordinate: np.ndarray, moves: np.ndarray) -> np.ndarray:
    """Median over the coordinates the sensor keeps: |d_{k-1}| > 1e-6 max |d_{k-1}| (its default
    ``min_denominator``); rows of ``per_coordinate`` pair with ``moves[:-1]``."""
    prev = np.abs(moves[:-1])
    keep = prev > 1e-6 * prev.max(axis=1, keepdims=True)
    return np.nanmedian(np.where(keep, per_coordinate, np.nan), axis=1)


def sync(opt, steps: int, **kwargs):
    with jax.enable_x64(True):
        return run_stale(opt, np.zeros(steps, np.int64), CURV, dtype=jnp.float64, **kwargs)


@pytest.mark.parametrize(
    "opt",
    [inject(optax.sgd)(0.05, momentum=0.7), inject(heavy_ball)(0.05, 0.7)],
    ids=["optax_sgd", "heavy_ball"],
)
def test_heavy_ball_reads_mu(opt) -> None:
    r = sync(closed_loop(opt, gain=FROZEN), 300)
    # exact up to the cancellation in d_{k+1} + a g = mu d_k: float64 rounding of terms up to
    # |a g| / |d_k| ~ 1e4 times the result (coordinates excluded below 1e-6 of the largest move)
    np.testing.assert_allclose(r["mu_hat"][1:], 0.7, rtol=0, atol=1e-9)


def test_averaged_move_derivation() -> None:
    # u_k = momentum u_{k-1} - step g_k, evaluated at a point, against the numeric closed forms
    momentum, step, reading = derive_averaged_move()
    b, c, cp, d, dp = (0.9, 0.3, 0.2, 2.0, 1.5)
    values = dict(zip(("b", "c_k", "c_km1", "D_k", "D_km1"), (b, c, cp, d, dp), strict=True))

    def at(expr) -> float:
        return float(expr.subs({s: values[s.name] for s in expr.free_symbols}))

    assert at(reading) == pytest.approx(float(averaged_reading(b, c / cp, dp / d)), rel=1e-14)
    assert at(momentum) == pytest.approx(at(reading), rel=1e-14)
    assert at(step) == pytest.approx(c * (1 - b) / d, rel=1e-14)
    # one step of the recursion against the optimizer form u = -c m / D
    m_prev, g = 0.7, -0.4
    u_prev = -cp * m_prev / dp
    u = -c * (b * m_prev + (1 - b) * g) / d
    assert u == pytest.approx(at(momentum) * u_prev - at(step) * g, rel=1e-14)


def test_adam_reads_b1_times_the_scale_ratio() -> None:
    b1, b2, eps = 0.8, 0.999, 1e-8
    r = sync(
        closed_loop(inject(optax.adam)(1e-2, b1=b1), hyperparam="b1", gain=FROZEN),
        400,
        keep_states=True,
    )
    nu = np.asarray(r["state"].inner_state.inner_state[0].nu)
    k = np.arange(1, 401, dtype=np.float64)[:, None]
    den = np.sqrt(nu / (1 - b2**k)) + eps
    c = 1.0 / (1 - b1**k)
    want = sensor_median(averaged_reading(b1, c[1:] / c[:-1], den[:-1] / den[1:]), r["updates"])
    # exact identity; atol: the frozen controller still moves b1 by gain * error * steps < 1e-8,
    # and float64 rounding is amplified by the cancellation (as for heavy ball)
    np.testing.assert_allclose(r["mu_hat"][1:], want, rtol=0, atol=1e-8)
    # with eps negligible the closed form of the nu ratio: b1 / sqrt(b2) times bias factors late
    late = slice(300, 400)
    closed = sensor_median(adam_reading(b1, b2, k[1:], nu[1:] / nu[:-1]), r["updates"])
    assert np.max(np.abs(closed[late] - want[late])) < 1e-3
    assert np.all(r["mu_hat"][late] > b1)  # the fading gradients lift the reading above b1


def test_adam_noise_floor_reading() -> None:
    # stationary noise floor: median_i of b1 / sqrt(b2 + (1 - b2) chi2_1) = the first-order
    # prediction; tolerance: 4 standard errors of the time average (batch means of 30 blocks)
    # plus the neglected O((1 - b2)^2) = 1e-4 term.
    b1, b2 = 0.8, 0.99
    opt = closed_loop(inject(optax.adam)(1e-3, b1=b1, b2=b2), hyperparam="b1", gain=FROZEN)
    with jax.enable_x64(True):
        r = run_stale(opt, np.zeros(4000, np.int64), CURV, noise=1.0, dtype=jnp.float64)
    h = r["mu_hat"][1000:]
    blocks = h.reshape(30, -1).mean(axis=1)
    se = blocks.std(ddof=1) / np.sqrt(30)
    pred = float(adam_noise_reading(b1, b2))
    assert abs(h.mean() - pred) < 4 * se + (1 - b2) ** 2
    assert abs(pred - b1) > 4 * se + (1 - b2) ** 2  # resolved away from b1 itself


def test_momo_reads_beta_times_the_step_ratio() -> None:
    beta = 0.8
    r = sync(
        closed_loop(inject(momo)(1.0, beta=beta), hyperparam="beta", gain=FROZEN),
        300,
        keep_states=True,
    )
    tau = np.asarray(r["state"].inner_state.inner_state.step_size)
    assert np.ptp(tau[1:]) > 0.1  # the adaptive step moves
    # first step averages nothing (beta = 0 there), the reading starts at step 2
    np.testing.assert_allclose(
        r["mu_hat"][2:], averaged_reading(beta, tau[2:] / tau[1:-1]), rtol=1e-7
    )
    capped = sync(closed_loop(inject(momo)(1e-3, beta=beta), hyperparam="beta", gain=FROZEN), 50)
    np.testing.assert_allclose(capped["mu_hat"][2:], beta, rtol=1e-8)


def test_momo_adam_reads_like_adam() -> None:
    b1, b2, eps = 0.8, 0.999, 1e-8
    r = sync(
        closed_loop(inject(momo_adam)(1e-2, b1=b1), hyperparam="b1", gain=FROZEN),
        300,
        keep_states=True,
    )
    st = r["state"].inner_state.inner_state
    tau, v = np.asarray(st.step_size), np.asarray(st.v)
    k = np.arange(1, 301, dtype=np.float64)[:, None]
    den = np.sqrt(v / (1 - b2**k)) + eps
    ratio = averaged_reading(b1, (tau[1:] / tau[:-1])[:, None], den[:-1] / den[1:])
    want = sensor_median(ratio, r["updates"])
    np.testing.assert_allclose(r["mu_hat"][1:], want, rtol=0, atol=1e-8)


STALE = {
    "optax_sgd": (lambda: inject(optax.sgd)(0.005, momentum=0.6), "momentum"),
    "adam": (lambda: inject(optax.adam)(1e-3, b1=0.6), "b1"),
    "momo": (lambda: inject(momo)(0.005, beta=0.6), "beta"),
}


@pytest.mark.parametrize("name", sorted(STALE))
def test_staleness_adds_the_implicit_momentum(name: str) -> None:
    make, hp = STALE[name]
    m, mu = 8, 0.6
    taus = geometric_staleness(m, 5000, seed=1)
    read = {}
    for conv in ("total", "algorithmic"):
        opt = closed_loop(
            make(), hyperparam=hp, gain=FROZEN, sensor_convention=conv, effective_workers=m
        )
        read[conv] = run_stale(opt, taus, CURV)["mu_hat"][2000:].mean()
    pred = float(total_momentum(mu, m))
    # first-order total momentum; 0.02 covers the sensor's O(a h tau) bias and the first-order
    # approximation (as for heavy ball in tests/simulators/test_async_sensor.py); measured
    # deviations are below 0.008
    assert read["total"] == pytest.approx(pred, abs=0.02)
    # the algorithmic convention reads the algorithm's own averaging weight, up to the same bias
    assert read["algorithmic"] == pytest.approx(mu, abs=0.02)
