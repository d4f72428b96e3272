"""MoMo bounds against float64 simulations of MoMo on interpolating least squares."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest

from theory.momo_bounds import (
    momo_beta0_bound,
    momo_certificate_slack,
    momo_distance_certificate,
    momo_sqrt_k_bound,
    momo_step_lower_bound,
)


@dataclass
class Run:
    dist_sq: np.ndarray  # ||x_k - x*||^2, k = 1..K+1
    taus: np.ndarray
    models: np.ndarray  # h_k
    fbars: np.ndarray
    losses: np.ndarray  # f_k(x_k) (sampled)
    full_losses: np.ndarray  # f(x_k), k = 1..K
    grad_max: float
    x_mean: np.ndarray


def _problem(n: int, d: int, rng: np.random.Generator):
    A = rng.standard_normal((n, d))
    x_star = rng.standard_normal(d)
    return A, A @ x_star, x_star  # consistent: every f_i(x) = (a_i.x - b_i)^2 / 2 vanishes at x*


def _momo(A, b, x_star, x1, alpha, beta, K, rng, batch=1) -> Run:
    """MoMo (no bias correction, no weight decay, lower bound 0) in float64.

    The model value uses h_k = fbar_k + u_k with u_k = beta (u_{k-1} - tau_{k-1} ||d_{k-1}||^2),
    algebraically equal to fbar_k + <d_k, x_k> - gamma_k (checked at every step) but free of the
    cancellation that makes the direct form meaningless once h_k is tiny.
    """
    n = A.shape[0]
    x = x1.copy()
    runs = {k: [] for k in ("dist", "tau", "h", "fbar", "loss", "full")}
    grad_max, tau, dn = 0.0, 0.0, 0.0
    xs = []
    for k in range(K):
        idx = rng.choice(n, batch, replace=False)
        r = A[idx] @ x - b[idx]
        f = 0.5 * np.mean(r**2)
        g = A[idx].T @ r / batch
        if k == 0:
            fbar, dvec, gamma, u = f, g.copy(), g @ x, 0.0
        else:
            fbar = beta * fbar + (1 - beta) * f
            u = beta * (u - tau * dn)  # u_k = <d_k, x_k> - gamma_k without cancellation
            dvec = beta * dvec + (1 - beta) * g
            gamma = beta * gamma + (1 - beta) * (g @ x)
        h_direct = fbar + dvec @ x - gamma
        # The definition and the cancellation-free recursion agree up to rounding of |gamma|.
        assert abs(fbar + u - h_direct) <= 1e-12 * (abs(gamma) + abs(dvec @ x) + fbar)
        h = fbar + u
        dn = dvec @ dvec
        tau = 0.0 if dn == 0.0 else min(alpha, max(h, 0.0) / dn)
        runs["dist"].append(np.sum((x - x_star) ** 2))
        runs["tau"].append(tau)
        runs["h"].append(h)
        runs["fbar"].append(fbar)
        runs["loss"].append(f)
        runs["full"].append(0.5 * np.mean((A @ x - b) ** 2))
        grad_max = max(grad_max, float(np.linalg.norm(g)))
        xs.append(x.copy())
        x = x - tau * dvec
    runs["dist"].append(np.sum((x - x_star) ** 2))
    arr = {k: np.asarray(v) for k, v in runs.items()}
    return Run(
        arr["dist"],
        arr["tau"],
        arr["h"],
        arr["fbar"],
        arr["loss"],
        arr["full"],
        grad_max,
        np.mean(xs, axis=0),
    )


CASES = [
    (alpha, beta, seed)
    for alpha in (0.05, 1.0, 100.0)
    for beta in (0.0, 0.5, 0.9)
    for seed in (0, 1)
]


@pytest.mark.parametrize(("alpha", "beta", "seed"), CASES)
def test_distance_certificate_never_violated(alpha: float, beta: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    A, b, x_star = _problem(40, 8, rng)
    run = _momo(A, b, x_star, x_star + 3 * rng.standard_normal(8), alpha, beta, 300, rng, batch=2)
    per_step, total = momo_certificate_slack(run.dist_sq, run.taus, run.models, 0.0)
    # Rounding: each quantity is O(dist_sq[0]) and computed with a few dozen flops, so a violation
    # smaller than 1e-10 * D^2 would be float64 noise; anything bigger would be a real failure.
    tol = 1e-10 * run.dist_sq[0]
    assert per_step.min() >= -tol
    assert total >= -tol
    assert np.all(np.diff(run.dist_sq) <= tol)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha", [0.01, 1.0, 100.0])
def test_beta0_bound_holds_pathwise_and_taus_respect_the_lower_bound(
    seed: int, alpha: float
) -> None:
    rng = np.random.default_rng(seed)
    A, b, x_star = _problem(30, 6, rng)
    L = float(np.max(np.sum(A**2, axis=1)))  # f_i is ||a_i||^2-smooth
    K = 200
    run = _momo(A, b, x_star, x_star + rng.standard_normal(6), alpha, 0.0, K, rng)
    m = float(momo_step_lower_bound(alpha, L))
    moved = run.models > 1e-14 * run.models.max()
    assert np.all(run.taus[moved] >= m * (1 - 1e-12))
    bound = float(momo_beta0_bound(run.dist_sq[0], alpha, L, K))
    assert run.losses.mean() <= bound * (1 + 1e-12)


def test_beta0_bound_in_expectation_and_not_vacuous() -> None:
    # Easy case: orthonormal-ish well-conditioned rows, cap inactive (alpha large).
    rng = np.random.default_rng(7)
    n, d, K = 20, 4, 50
    A, b, x_star = _problem(n, d, rng)
    A /= np.linalg.norm(A, axis=1, keepdims=True)  # every ||a_i|| = 1, so L = 1
    b = A @ x_star
    x1 = x_star + np.ones(d)
    gaps, path = [], []
    for seed in range(40):
        run = _momo(A, b, x_star, x1, 10.0, 0.0, K, np.random.default_rng(seed))
        gaps.append(0.5 * np.mean((A @ run.x_mean - b) ** 2))
        path.append(run.full_losses.mean())
    bound = float(momo_beta0_bound(d, 10.0, 1.0, K))
    mean_path = float(np.mean(path))
    # E f(xbar_K) <= (1/K) sum E f(x_k) <= bound; with 40 seeds the sample means are within a few
    # percent of their expectations here, far below the slack, so no tolerance is needed.
    assert np.mean(gaps) <= mean_path <= bound
    # Not vacuous: the bound is within a factor 10 of the measured average suboptimality.
    assert bound / mean_path < 10.0


@pytest.mark.parametrize(("alpha", "beta", "seed"), CASES)
def test_sqrt_k_bound_never_violated(alpha: float, beta: float, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    A, b, x_star = _problem(40, 8, rng)
    K = 300
    run = _momo(A, b, x_star, x_star + 2 * rng.standard_normal(8), alpha, beta, K, rng, batch=2)
    avg_fbar = run.fbars.mean()
    bound = float(momo_sqrt_k_bound(run.dist_sq[0], alpha, run.grad_max, beta, K))
    assert avg_fbar <= bound * (1 + 1e-12)
    # The a-priori gradient bound from the certificate (distance never grows) also works.
    G = float(np.max(np.sum(A**2, axis=1))) * np.sqrt(run.dist_sq[0])
    assert run.grad_max <= G * (1 + 1e-12)
    assert avg_fbar <= float(momo_sqrt_k_bound(run.dist_sq[0], alpha, G, beta, K))


def test_sqrt_k_bound_for_the_iterate_average_in_expectation() -> None:
    rng = np.random.default_rng(3)
    A, b, x_star = _problem(30, 5, rng)
    x1 = x_star + np.ones(5)
    K = 100
    for beta in (0.0, 0.9):
        vals, bounds = [], []
        for seed in range(20):
            run = _momo(A, b, x_star, x1, 1.0, beta, K, np.random.default_rng(seed))
            vals.append(0.5 * np.mean((A @ run.x_mean - b) ** 2))
            bounds.append(
                float(momo_sqrt_k_bound(5.0, 1.0, run.grad_max, beta, K, iterate_average=True))
            )
        assert np.mean(vals) <= min(bounds)


def test_formulas() -> None:
    assert float(momo_distance_certificate(4.0, 0.5, 0.5, 1.0)) == 4.0  # model below f_*: no move
    assert float(momo_step_lower_bound(0.1, 1.0)) == 0.1
    assert float(momo_beta0_bound(2.0, 0.1, 1.0, 10)) == pytest.approx(2.0)
    got = momo_sqrt_k_bound(4.0, 2.0, 3.0, np.array([0.0, 0.5]), 16)
    np.testing.assert_allclose(got, [4 / 32 + 3 * 2 / 4, 4 / 32 + 3 * 2 / (0.5 * 4)])
    # O(1/sqrt K): quadrupling K halves the leading term.
    big = momo_sqrt_k_bound(1.0, 1e9, 1.0, 0.5, np.array([100, 400]))
    assert big[0] / big[1] == pytest.approx(2.0, rel=1e-6)


@pytest.mark.parametrize(
    ("call", "name", "valid"),
    [
        (lambda: momo_distance_certificate(-1.0, 0.1, 1.0), "dist_sq", "[0, inf)"),
        (lambda: momo_distance_certificate(1.0, -0.1, 1.0), "step", "[0, inf)"),
        (lambda: momo_distance_certificate(1.0, 0.1, np.inf), "model_value", "finite real number"),
        (
            lambda: momo_certificate_slack([1.0, 0.5], [0.1, 0.1], [1.0, 1.0]),
            "dist_sq",
            "shape (K+1,)",
        ),
        (lambda: momo_step_lower_bound(0.1, 0.0), "smoothness", "(0, inf)"),
        (lambda: momo_beta0_bound(1.0, 0.1, 1.0, 0), "iterations", "an integer >= 1"),
        (lambda: momo_beta0_bound(1.0, 0.0, 1.0, 5), "alpha", "(0, inf)"),
        (lambda: momo_sqrt_k_bound(1.0, 0.1, 1.0, 1.0, 5), "beta", "[0, 1)"),
        (lambda: momo_sqrt_k_bound(1.0, 0.1, -1.0, 0.5, 5), "grad_bound", "[0, inf)"),
    ],
)
def test_bad_input_names_the_parameter_and_its_range(call, name: str, valid: str) -> None:
    """The message starts with the parameter's name and states the valid range."""
    with pytest.raises(ValueError, match=rf"^{re.escape(name)}\b") as info:
        call()
    assert valid in str(info.value), str(info.value)
