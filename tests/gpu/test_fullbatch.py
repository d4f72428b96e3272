"""Full-batch float64 protocol: heavy-ball trajectories, the L-BFGS + Newton polish, late rates."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import theory
from gpu.data import load_digits
from gpu.fullbatch import (
    FlatProblem,
    digits_mlp_problem,
    heavy_ball_trajectory,
    late_rates,
    polish,
)

H = np.array([0.004, 0.05, 0.3, 1.0, 2.0])
Q = np.linalg.qr(np.random.default_rng(0).standard_normal((5, 5)))[0]
A = Q @ np.diag(H) @ Q.T  # rotated quadratic: every coordinate mixes every mode
W_STAR = np.array([1.0, -2.0, 0.5, 0.0, 3.0])


def _quadratic() -> FlatProblem:
    def loss(w):  # the constants are made while tracing, in float64 like w
        d = w - jnp.asarray(W_STAR)
        return 0.5 * d @ (jnp.asarray(A) @ d)

    return FlatProblem("quadratic", loss, np.zeros(5), ((5,),), 0.0)


def test_trajectory_is_heavy_ball_in_float64() -> None:
    alpha, mu = 0.5, 0.9
    traj = heavy_ball_trajectory(_quadratic(), alpha, mu, 50)
    assert traj.dtype == np.float64 and traj.shape == (51, 5)
    w_prev = w = np.zeros(5)
    for t in range(1, 51):  # w_{t+1} = w_t - alpha grad f(w_t) + mu (w_t - w_{t-1})
        w, w_prev = w - alpha * A @ (w - W_STAR) + mu * (w - w_prev), w
        np.testing.assert_allclose(traj[t], w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.5, 0.05])
def test_late_rates_are_the_slowest_mode_on_a_quadratic(alpha: float) -> None:
    """alpha = 0.5: every mode but h = 0.004 is robust, so the late rate is rho(0.004) > sqrt(mu);
    alpha = 0.05: h = 0.004 and 0.05 are lazy, the slowest is again h = 0.004."""
    mu = 0.81
    rho = float(np.max(theory.spectral_radius(alpha, mu, H)))
    steps = int(np.log(1e15) / -np.log(rho))
    traj = heavy_ball_trajectory(_quadratic(), alpha, mu, steps)
    fit = late_rates(traj, W_STAR, upper=1e-3, lower=1e-10)
    np.testing.assert_allclose(fit.rates, rho, rtol=1e-4)
    assert fit.log_spread() < 1e-4 * -np.log(rho)
    assert fit.window[1] - fit.window[0] > 100


def test_late_rates_window_and_validation() -> None:
    t = np.arange(2001)[:, None]
    traj = np.array([1.0, 2.0]) * 0.99**t
    fit = late_rates(traj, np.zeros(2), upper=1e-2, lower=1e-6)
    # the window runs from d_t <= 1e-2 d_0 (t = 459) to the last d_t >= 1e-6 d_0 (t = 1374)
    assert fit.window == (459, 1375)
    short = late_rates(traj[:400], np.zeros(2))
    assert np.all(np.isnan(short.rates)) and np.isnan(short.log_spread())
    with pytest.raises(ValueError, match="lower"):
        late_rates(traj, np.zeros(2), upper=1e-6, lower=1e-3)
    with pytest.raises(ValueError, match="reference"):
        late_rates(traj, np.zeros(3))
    with pytest.raises(ValueError, match="momentum"):
        heavy_ball_trajectory(_quadratic(), 0.1, 1.0, 5)


def test_polish_reaches_the_float64_floor_with_the_exact_spectrum() -> None:
    q = polish(_quadratic(), np.zeros(5))
    np.testing.assert_allclose(q.point, W_STAR, atol=1e-12)
    np.testing.assert_allclose(q.eigenvalues, H, rtol=1e-10)
    p = digits_mlp_problem(load_digits(), hidden=3, weight_decay=0.05, n_train=300)
    out = polish(p, p.init)
    assert out.grad_norm < 1e-12 and out.eigenvalues[0] > 0
    # the eigenvectors diagonalise the Hessian the eigenvalues come from
    v = out.eigenvectors
    np.testing.assert_allclose(v.T @ v, np.eye(p.size), atol=1e-10)


def test_problem_validation() -> None:
    ds = load_digits()
    with pytest.raises(ValueError, match="weight_decay"):
        digits_mlp_problem(ds, weight_decay=0.0)
    with pytest.raises(ValueError, match="n_train"):
        digits_mlp_problem(ds, n_train=10**6)
    assert digits_mlp_problem(ds, hidden=4, n_train=100).size == 64 * 4 + 4 + 4 * 10 + 10
