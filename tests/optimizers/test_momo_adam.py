"""MoMo-Adam against optax.contrib.momo_adam, a float64 NumPy transcription of the paper's
formulas, and Adam (cap active)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_momo import Problem, make_problem, run_jax

from optimizers import MomoAdamState, logged_stats, momo_adam


def momo_adam_reference(
    prob: Problem,
    steps: int,
    lr: float,
    lb: float,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    wd: float = 0.0,
    adapt: bool = False,
    post_scale: float = 1.0,
    guard: bool = True,
) -> dict[str, np.ndarray]:
    """MoMo-Adam of reference/momo.md in float64, h_k formed directly."""
    x = prob.x0.astype(np.float64)
    d = np.zeros_like(x)
    v = np.zeros_like(x)
    fbar = gamma = 0.0
    lb_k = lb
    xs, taus, hs, lbs = [x.copy()], [], [], []
    for k in range(1, steps + 1):
        f, g = prob.loss_grad(x, k - 1)
        rho = 1.0 - b1**k
        fbar = b1 * fbar + (1 - b1) * f
        d = b1 * d + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        gamma = b1 * gamma + (1 - b1) * (g @ x)
        D = np.sqrt(v / (1.0 - b2**k)) + eps
        c = 1.0 + lr * wd
        h = fbar + d @ x - gamma
        dd = d @ (d / D)
        if adapt:
            cap = c * fbar + d @ x - c * gamma
            if cap < c * rho * lb_k:
                lb_k = max(cap / (2 * c * rho), lb)
            if guard:  # the estimate never exceeds the observed loss
                lb_k = max(min(lb_k, f), lb)
        num = max(c * (fbar - rho * lb_k) + d @ x - c * gamma, 0.0)
        tau = min(lr / rho, num / dd)
        if adapt and not (guard and dd == 0):  # a zero gradient leaves it (guard)
            lb_k = max((h - tau * dd / 2) / rho, lb)
            if guard:
                lb_k = max(min(lb_k, f), lb)
        x_new = (x - tau * d / D) / c
        x = x + post_scale * (x_new - x)
        xs.append(x.copy())
        taus.append(tau)
        hs.append(h)
        lbs.append(lb_k)
    return {"x": np.stack(xs), "step_size": np.array(taus), "h": np.array(hs), "lb": np.array(lbs)}


@pytest.mark.parametrize("adapt", [False, True])
def test_matches_optax_contrib_momo_adam_float64(adapt: bool) -> None:
    prob = make_problem(10, noise=0.3)
    kw = {"learning_rate": 0.5, "lower_bound": 0.0, "adapt_lower_bound": adapt}
    with jax.enable_x64(True):
        # optax.contrib implements the published MoMo* rule: compare without the safeguards.
        ours = run_jax(momo_adam(**kw, guard_estimate=False), prob, 40, jnp.float64)
        theirs = run_jax(optax.contrib.momo_adam(**kw), prob, 40, jnp.float64)
    # float64; only the evaluation order of h_k differs (~1e-16 relative per step).
    np.testing.assert_allclose(ours["x"], theirs["x"], rtol=1e-10, atol=1e-10)


def test_matches_optax_contrib_momo_adam_float32() -> None:
    prob = make_problem(11, noise=0.3)
    ours = run_jax(momo_adam(0.5), prob, 30)
    theirs = run_jax(optax.contrib.momo_adam(0.5), prob, 30)
    # float32 on both sides, optax with its direct (cancelling) h_k: ~1e-6 relative per step.
    np.testing.assert_allclose(ours["x"], theirs["x"], rtol=1e-4, atol=1e-4)


CASES = [
    {"lr": 0.5, "lb": 0.0},
    {"lr": 0.5, "lb": 0.0, "wd": 0.1},
    {"lr": 0.5, "lb": -1.0, "adapt": True},
    {"lr": 0.2, "lb": -0.5, "wd": 0.05, "adapt": True, "b1": 0.8, "b2": 0.99},
]


def _make(case: dict, **extra) -> optax.GradientTransformationExtraArgs:
    return momo_adam(
        case["lr"],
        case.get("b1", 0.9),
        case.get("b2", 0.999),
        1e-8,
        case["lb"],
        weight_decay=case.get("wd", 0.0),
        adapt_lower_bound=case.get("adapt", False),
        **extra,
    )


@pytest.mark.parametrize("guard", [True, False], ids=["guarded", "published"])
@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_matches_numpy_transcription_float64(case: dict, guard: bool) -> None:
    prob = make_problem(12, noise=0.5)
    ref = momo_adam_reference(prob, 40, **case, guard=guard)
    with jax.enable_x64(True):
        ours = run_jax(_make(case, guard_estimate=guard), prob, 40, jnp.float64)
    # float64 on both sides; only the evaluation order of h_k differs.
    np.testing.assert_allclose(ours["x"], ref["x"], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(ours["step_size"], ref["step_size"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours["h"], ref["h"], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(ours["lower_bound"], ref["lb"], rtol=1e-9, atol=1e-10)


def test_matches_numpy_transcription_float32() -> None:
    prob = make_problem(13, noise=0.5)
    ref = momo_adam_reference(prob, 30, **CASES[3])
    ours = run_jax(_make(CASES[3]), prob, 30)
    # float32 inputs and statistics: ~1e-7 relative per step, amplified along 30 steps.
    np.testing.assert_allclose(ours["x"], ref["x"], rtol=2e-4, atol=2e-4)


def test_track_params_in_a_chain() -> None:
    prob = make_problem(14, noise=0.5)
    ref = momo_adam_reference(prob, 30, **CASES[1], post_scale=0.5)
    with jax.enable_x64(True):
        chained = run_jax(
            optax.chain(_make(CASES[1], track_params=True), optax.scale(0.5)),
            prob,
            30,
            jnp.float64,
        )
    np.testing.assert_allclose(chained["x"], ref["x"], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(chained["h"], ref["h"], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("lr", [1e-3, 3e-2])
def test_cap_active_is_adam(lr: float) -> None:
    prob = make_problem(15, noise=0.2)
    ours = run_jax(momo_adam(lr, lower_bound=-1e8), prob, 30)
    adam = run_jax(optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8), prob, 30)
    # Same float32 operations up to ordering: agreement to a few float32 ulps of x (~1).
    np.testing.assert_allclose(ours["x"], adam["x"], rtol=1e-5, atol=1e-6)
    rho = 1.0 - 0.9 ** np.arange(1, 31)
    np.testing.assert_allclose(ours["step_size"], lr / rho, rtol=1e-6)


def test_state_and_logged_fields() -> None:
    opt = momo_adam(adapt_lower_bound=True)
    state = opt.init({"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)})
    assert isinstance(state, MomoAdamState)
    assert set(logged_stats(state)) == {"learning_rate", "step_size", "lower_bound", "h", "skipped"}


def test_zero_gradient_takes_no_step() -> None:
    opt = momo_adam()
    x = jnp.ones(3)
    state = opt.init(x)
    upd, state = opt.update(jnp.zeros(3), state, x, value=jnp.asarray(1.0))
    np.testing.assert_array_equal(np.asarray(upd), 0.0)
    assert int(state.skipped) == 0
