"""MoMo against optax.contrib.momo, a float64 NumPy transcription of the paper's formulas, the
Polyak step (beta = 0), SGD-M (cap active) and the convex-interpolation descent inequality."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizers import MomoState, logged_stats, momo


@dataclass(frozen=True)
class Problem:
    """Mini-batch least squares f(x, S) = mean_{i in S} (a_i . x - b_i)^2 / 2."""

    A: np.ndarray
    b: np.ndarray
    x_star: np.ndarray
    x0: np.ndarray
    batches: np.ndarray

    def loss_grad(self, x: np.ndarray, k: int) -> tuple[float, np.ndarray]:
        idx = self.batches[k]
        r = self.A[idx] @ x - self.b[idx]
        return 0.5 * float(np.mean(r**2)), self.A[idx].T @ r / len(idx)


def make_problem(
    seed: int, steps: int = 40, n: int = 64, dim: int = 8, noise: float = 0.0, offset: float = 0.0
) -> Problem:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, dim))
    x_star = rng.standard_normal(dim) + offset
    b = A @ x_star + noise * rng.standard_normal(n)
    x0 = x_star + 2.0 * rng.standard_normal(dim)
    batches = np.stack([rng.choice(n, size=8, replace=False) for _ in range(steps)])
    return Problem(A, b, x_star, x0, batches)


def run_jax(
    opt: optax.GradientTransformationExtraArgs,
    prob: Problem,
    steps: int,
    dtype: jnp.dtype = jnp.float32,
    post: Callable | None = None,
) -> dict[str, np.ndarray]:
    """Run ``opt`` on ``prob``; ``post`` optionally transforms the update before it is applied."""
    A = jnp.asarray(prob.A, dtype)
    b = jnp.asarray(prob.b, dtype)

    def loss(x: jax.Array, idx: jax.Array) -> jax.Array:
        r = A[idx] @ x - b[idx]
        return 0.5 * jnp.mean(r**2)

    @jax.jit
    def step(x, state, idx):
        f, g = jax.value_and_grad(loss)(x, idx)
        upd, state = opt.update(g, state, x, value=f)
        if post is not None:
            upd = post(upd)
        return optax.apply_updates(x, upd), state

    x = jnp.asarray(prob.x0, dtype)
    state = opt.init(x)
    xs, stats = [np.asarray(x, np.float64)], []
    for k in range(steps):
        x, state = step(x, state, jnp.asarray(prob.batches[k]))
        xs.append(np.asarray(x, np.float64))
        stats.append({k_: float(v) for k_, v in logged_stats(state).items()})
    out = {"x": np.stack(xs)}
    for key in stats[0]:
        out[key] = np.array([s[key] for s in stats])
    return out


def momo_reference(
    prob: Problem,
    steps: int,
    lr: float,
    beta: float,
    lb: float,
    wd: float = 0.0,
    bias_correction: bool = False,
    adapt: bool = False,
    post_scale: float = 1.0,
    guard: bool = True,
) -> dict[str, np.ndarray]:
    """The paper's formulas in float64, h_k formed directly (reference/momo.md)."""
    x = prob.x0.astype(np.float64)
    d = np.zeros_like(x)
    fbar = gamma = 0.0
    lb_k = lb
    xs, taus, hs, lbs = [x.copy()], [], [], []
    for k in range(1, steps + 1):
        f, g = prob.loss_grad(x, k - 1)
        if bias_correction:
            b, rho = beta, 1.0 - beta**k
        else:
            b, rho = (0.0 if k == 1 else beta), 1.0
        fbar = b * fbar + (1 - b) * f
        d = b * d + (1 - b) * g
        gamma = b * gamma + (1 - b) * (g @ x)
        c = 1.0 + lr * wd
        h = fbar + d @ x - gamma
        if adapt:
            cap = c * fbar + d @ x - c * gamma
            if cap < c * rho * lb_k:
                lb_k = max(cap / (2 * c * rho), lb)
            if guard:  # the estimate never exceeds the observed loss
                lb_k = max(min(lb_k, f), lb)
        num = max(c * (fbar - rho * lb_k) + d @ x - c * gamma, 0.0)
        tau = min(lr / rho, num / (d @ d))
        if adapt and not (guard and (d @ d) == 0):  # a zero gradient leaves it (guard)
            lb_k = max((h - tau * (d @ d) / 2) / rho, lb)
            if guard:
                lb_k = max(min(lb_k, f), lb)
        x_new = (x - tau * d) / c
        x = x + post_scale * (x_new - x)
        xs.append(x.copy())
        taus.append(tau)
        hs.append(h)
        lbs.append(lb_k)
    return {"x": np.stack(xs), "step_size": np.array(taus), "h": np.array(hs), "lb": np.array(lbs)}


# --- against optax.contrib.momo (no weight decay, no bias correction: same definition) ---------


@pytest.mark.parametrize("adapt", [False, True])
def test_matches_optax_contrib_momo_float64(adapt: bool) -> None:
    prob = make_problem(0, noise=0.3)
    kw = {"learning_rate": 0.5, "beta": 0.9, "lower_bound": 0.0, "adapt_lower_bound": adapt}
    with jax.enable_x64(True):
        # optax.contrib implements the published MoMo* rule: compare without the safeguards.
        ours = run_jax(momo(**kw, guard_estimate=False), prob, 40, jnp.float64)
        theirs = run_jax(optax.contrib.momo(**kw), prob, 40, jnp.float64)
    # float64, 40 steps of a well-conditioned 8-d problem: the two orders of evaluation (recursion
    # vs direct h_k) agree to ~1e-15 relative per step; 1e-10 leaves room for amplification.
    np.testing.assert_allclose(ours["x"], theirs["x"], rtol=1e-10, atol=1e-10)


def test_matches_optax_contrib_momo_float32() -> None:
    prob = make_problem(1, noise=0.3)
    ours = run_jax(momo(0.5, 0.9), prob, 30)
    theirs = run_jax(optax.contrib.momo(0.5, 0.9), prob, 30)
    # float32: optax forms h_k as a difference of O(||d|| ||x||) terms, ~1e-6 relative error each
    # step; the trajectories stay within a few 1e-5 of each other over 30 steps.
    np.testing.assert_allclose(ours["x"], theirs["x"], rtol=1e-4, atol=1e-4)


# --- against the float64 NumPy transcription ----------------------------------------------------


CASES = [
    {"lr": 0.5, "beta": 0.9, "lb": 0.0},
    {"lr": 0.5, "beta": 0.9, "lb": 0.0, "wd": 0.1},
    {"lr": 2.0, "beta": 0.8, "lb": 0.0, "bias_correction": True},
    {"lr": 0.5, "beta": 0.9, "lb": -1.0, "adapt": True},
    {"lr": 0.3, "beta": 0.9, "lb": -0.5, "wd": 0.05, "bias_correction": True, "adapt": True},
]


def _make(case: dict, **extra) -> optax.GradientTransformationExtraArgs:
    return momo(
        case["lr"],
        case["beta"],
        case["lb"],
        weight_decay=case.get("wd", 0.0),
        bias_correction=case.get("bias_correction", False),
        adapt_lower_bound=case.get("adapt", False),
        **extra,
    )


@pytest.mark.parametrize("guard", [True, False], ids=["guarded", "published"])
@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_matches_numpy_transcription_float64(case: dict, guard: bool) -> None:
    prob = make_problem(2, noise=0.5)
    ref = momo_reference(prob, 40, **case, guard=guard)
    with jax.enable_x64(True):
        ours = run_jax(_make(case, guard_estimate=guard), prob, 40, jnp.float64)
    # float64 on both sides; only the evaluation order of h_k differs (1e-16 relative per step).
    np.testing.assert_allclose(ours["x"], ref["x"], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(ours["step_size"], ref["step_size"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours["h"], ref["h"], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(ours["lower_bound"], ref["lb"], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("case", [CASES[1], CASES[4]], ids=["wd", "all"])
def test_matches_numpy_transcription_float32(case: dict) -> None:
    prob = make_problem(3, noise=0.5)
    ref = momo_reference(prob, 30, **case)
    ours = run_jax(_make(case), prob, 30, jnp.float32)
    # float32 inputs and statistics: ~1e-7 relative error per step, amplified along 30 steps.
    np.testing.assert_allclose(ours["x"], ref["x"], rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(ours["step_size"], ref["step_size"], rtol=2e-3, atol=1e-5)


def test_track_params_is_exact_when_params_move_otherwise() -> None:
    """A transformation after MoMo (here: halve the step) breaks the default increment, which
    assumes the returned update is applied as is; track_params measures the actual move."""
    prob = make_problem(4, noise=0.5)
    case = {"lr": 0.5, "beta": 0.9, "lb": 0.0, "wd": 0.1}
    ref = momo_reference(prob, 30, **case, post_scale=0.5)

    def half(u):
        return jax.tree_util.tree_map(lambda v: 0.5 * v, u)

    with jax.enable_x64(True):
        tracked = run_jax(_make(case, track_params=True), prob, 30, jnp.float64, post=half)
        assumed = run_jax(_make(case), prob, 30, jnp.float64, post=half)
        chained = run_jax(
            optax.chain(_make(case, track_params=True), optax.scale(0.5)), prob, 30, jnp.float64
        )
    np.testing.assert_allclose(tracked["h"], ref["h"], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(tracked["x"], ref["x"], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(chained["x"], ref["x"], rtol=1e-9, atol=1e-10)
    # The documented limitation is real: the assumed increment gives a different model value.
    assert np.max(np.abs(assumed["h"] - ref["h"])) > 1e-3


def test_track_params_equals_default_when_applied_as_is() -> None:
    prob = make_problem(5, noise=0.5)
    with jax.enable_x64(True):
        a = run_jax(_make(CASES[4], track_params=True), prob, 30, jnp.float64)
        b = run_jax(_make(CASES[4]), prob, 30, jnp.float64)
    np.testing.assert_allclose(a["x"], b["x"], rtol=1e-10, atol=1e-12)


def test_recursion_avoids_float32_cancellation() -> None:
    """Far from the origin (||x|| ~ 300) the direct h_k = fbar + <d, x> - gamma loses its digits
    in float32; the recursion keeps h_k close to the float64 value."""
    prob = make_problem(6, noise=0.5, offset=100.0)
    ref = momo_reference(prob, 25, lr=0.5, beta=0.9, lb=0.0)
    ours = run_jax(momo(0.5, 0.9), prob, 25)
    x32 = ours["x"].astype(np.float32)
    # float32 replay of the direct formula along our own iterates.
    d = np.zeros(8, np.float32)
    fbar = gamma = np.float32(0)
    direct = []
    for k in range(25):
        f, g = prob.loss_grad(x32[k].astype(np.float64), k)
        g = g.astype(np.float32)
        b = np.float32(0.0 if k == 0 else 0.9)
        fbar = b * fbar + (1 - b) * np.float32(f)
        d = b * d + (1 - b) * g
        gamma = b * gamma + (1 - b) * np.dot(g, x32[k])
        direct.append(fbar + np.dot(d, x32[k]) - gamma)
    err_ours = np.max(np.abs(ours["h"] - ref["h"]) / np.abs(ref["h"]))
    err_direct = np.max(np.abs(np.array(direct, np.float64) - ref["h"]) / np.abs(ref["h"]))
    assert err_ours < 1e-3
    assert err_direct > 10 * err_ours


# --- special cases with independent formulas ------------------------------------------------------


def test_beta_zero_is_polyak_sps_max() -> None:
    prob = make_problem(7, noise=0.2)
    lr, lb = 0.4, 0.0
    with jax.enable_x64(True):
        ours = run_jax(momo(lr, 0.0, lb), prob, 30, jnp.float64)
    x = prob.x0.copy()
    for k in range(30):
        f, g = prob.loss_grad(x, k)
        x = x - min(lr, (f - lb) / (g @ g)) * g  # SPS_max, c = 1
        np.testing.assert_allclose(ours["x"][k + 1], x, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bias_correction", [False, True])
def test_cap_active_is_sgd_momentum(bias_correction: bool) -> None:
    """With a very low lower bound tau = alpha (/ rho): SGD-M in EMA form."""
    prob = make_problem(8, noise=0.2)
    lr, beta = 0.05, 0.9
    ours = run_jax(momo(lr, beta, -1e8, bias_correction=bias_correction), prob, 30)
    if bias_correction:
        sgdm = optax.chain(optax.ema(beta, debias=True), optax.scale(-lr))
        theirs = run_jax(sgdm, prob, 30)["x"]
    else:
        x, d = prob.x0.copy(), None
        theirs = [x.copy()]
        for k in range(30):
            _, g = prob.loss_grad(x, k)
            d = g if d is None else beta * d + (1 - beta) * g
            x = x - lr * d
            theirs.append(x.copy())
    # float32 against float64 (or optax float32): ~1e-7 relative per step over 30 steps.
    np.testing.assert_allclose(ours["x"], np.stack(theirs), rtol=1e-5, atol=1e-5)
    assert np.all(ours["step_size"] > 0)


def test_zero_direction_takes_no_step() -> None:
    opt = momo(1.0, 0.9)
    x = jnp.ones(3)
    state = opt.init(x)
    upd, state = opt.update(jnp.zeros(3), state, x, value=jnp.asarray(1.0))
    np.testing.assert_array_equal(np.asarray(upd), 0.0)
    assert float(state.step_size) == 0.0
    assert int(state.skipped) == 0


@settings(max_examples=6, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    beta=st.floats(0.0, 0.95),
    lr=st.floats(0.05, 10.0),
)
def test_distance_to_solution_never_increases_under_interpolation(
    seed: int, beta: float, lr: float
) -> None:
    """Convex losses with f(x*, s) = f_* = 0 for every batch: the model's value at x* is at most
    f_*, so ||x_{k+1} - x*||^2 <= ||x_k - x*||^2 - tau_k (h_k - f_*)_+ (reference/momo.md)."""
    prob = make_problem(seed, steps=25)
    with jax.enable_x64(True):
        out = run_jax(momo(lr, beta, 0.0), prob, 25, jnp.float64)
    dist = np.sum((out["x"] - prob.x_star) ** 2, axis=1)
    decrease = out["step_size"] * np.maximum(out["h"], 0.0)
    # float64 rounding of ||x - x*||^2 ~ 1e-15 * ||x0 - x*||^2; 1e-10 is a generous margin.
    slack = 1e-10 * dist[0]
    assert np.all(dist[1:] <= dist[:-1] - decrease + slack)


def test_state_and_logged_fields() -> None:
    opt = momo(0.5, adapt_lower_bound=True)
    state = opt.init({"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)})
    assert isinstance(state, MomoState)
    stats = logged_stats(state)
    assert set(stats) == {"learning_rate", "step_size", "lower_bound", "h", "skipped"}
    assert stats["skipped"].dtype == jnp.int32
