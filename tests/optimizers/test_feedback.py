"""Total-momentum sensor and closed loop, with stale gradients produced by a loop written here."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optimizers import (
    MOMENTUM_FEEDBACK_STATIC_ARGS,
    closed_loop_yellowfin,
    logged_stats,
    momentum_feedback,
    momentum_sensor,
    yellowfin,
)
from optimizers.feedback_law import DEFAULT_GAIN, feedback_update
from optimizers.momentum_sensor import _median_of_finite, sensor_init
from tests.optimizers._injection import assert_injection_transparent

D = 256
CURV = np.geomspace(0.05, 1.0, D)
HISTORY = 65  # iterates kept by the test's stale-gradient loop (staleness capped at 64)


def run_stale_quadratic(opt, taus: np.ndarray, alpha_h: np.ndarray = CURV, seed: int = 0):
    """Deterministic quadratic f = sum h_i x_i^2 / 2; step k gets the gradient at x_{k - tau_k}.

    Before step 0 the iterate is x_0 (the start-up of the asynchrony model). Returns the logged
    statistics of every step.
    """
    rng = np.random.default_rng(seed)
    h = jnp.asarray(alpha_h, jnp.float32)
    x0 = jnp.asarray(rng.standard_normal(h.shape[0]), jnp.float32)

    def step(carry, tau):
        x, hist, state, k = carry
        hist = hist.at[k % HISTORY].set(x)
        tau = jnp.minimum(tau, k)
        g = h * hist[(k - tau) % HISTORY]
        u, state = opt.update(g, state, x, staleness=tau)
        return (x + u, hist, state, k + 1), logged_stats(state)

    carry = (x0, jnp.zeros((HISTORY, h.shape[0])), opt.init(x0), 0)
    _, stats = jax.jit(lambda c, t: jax.lax.scan(step, c, t))(carry, jnp.asarray(taus, jnp.int32))
    return {k: np.asarray(v) for k, v in stats.items()}


def geometric_staleness(workers: int, steps: int, seed: int = 1) -> np.ndarray:
    """P(tau = l) = (1 - q) q^l, q = 1 - 1/M (asynchrony reference, queueing model)."""
    rng = np.random.default_rng(seed)
    return np.minimum(rng.geometric(1.0 / workers, steps) - 1, HISTORY - 1)


# ---------------------------------------------------------------------------------------------
# The sensor function
# ---------------------------------------------------------------------------------------------


def test_sensor_exact_on_heavy_ball_moves() -> None:
    rng = np.random.default_rng(0)
    d_prev = rng.standard_normal(1000)
    g = rng.standard_normal(1000)
    d_next = 0.83 * d_prev - 0.05 * g
    assert float(momentum_sensor(d_next, d_prev, g, 0.05)) == pytest.approx(0.83, abs=1e-5)


def test_sensor_median_ignores_tiny_denominators_and_outliers() -> None:
    rng = np.random.default_rng(1)
    d_prev = rng.standard_normal(101)
    g = rng.standard_normal(101)
    d_next = 0.5 * d_prev - 0.1 * g
    d_prev[:10] = 1e-12  # excluded: below 1e-6 of the largest denominator
    d_next[10:40] = 1e6  # 30 of 91 outliers: the median is still an exact ratio
    out = float(momentum_sensor(d_next, d_prev, g, 0.1))
    assert out == pytest.approx(0.5, abs=1e-5)


def test_sensor_nan_when_no_denominator_left() -> None:
    z = jnp.zeros(5)
    assert np.isnan(float(momentum_sensor(z, z, jnp.ones(5), 0.1)))


@pytest.mark.parametrize("seed", range(3))
def test_selection_median_equals_nanmedian(seed: int) -> None:
    # The sensor's sort-free median must give exactly jnp.nanmedian's value (order statistics
    # are exact; the even-count midpoint uses the same weights): duplicates, signed zeros,
    # magnitudes over 60 decades, empty and odd/even masks.
    rng = np.random.default_rng(seed)
    med = jax.jit(_median_of_finite)
    for n in (1, 2, 3, 8, 33, 64):
        for scale in (1.0, 1e-30, 1e30):
            x = (scale * rng.standard_normal(n)).astype(np.float32)
            x[: n // 3] = np.round(x[: n // 3])  # ties and +-0
            for mask in (rng.random(n) < 0.6, np.ones(n, bool), np.zeros(n, bool)):
                ref = jnp.nanmedian(jnp.where(mask, x, np.nan))
                got = med(jnp.asarray(x), jnp.asarray(mask))
                np.testing.assert_array_equal(np.asarray(got), np.asarray(ref))


def test_sensor_sample_is_fixed_size_and_in_range() -> None:
    params = {"a": jnp.zeros((100, 50)), "b": jnp.zeros(30)}
    st = sensor_init(params, 64, 3, 0)
    counts = [int(ix.shape[0]) for ix in st.indices]
    assert sum(counts) == 64 and st.ring.shape == (5, 64)
    leaves = jax.tree_util.tree_leaves(params)
    for ix, leaf in zip(st.indices, leaves, strict=True):
        if ix.shape[0]:  # a small leaf may get no sample (proportional allocation)
            assert int(jnp.max(ix)) < leaf.size and int(jnp.min(ix)) >= 0
    small = sensor_init(jnp.zeros(10), 64, 3, 0)
    np.testing.assert_array_equal(np.asarray(small.indices[0]), np.arange(10))


# ---------------------------------------------------------------------------------------------
# Readings with a frozen controller (gain ~ 0): synchronous and geometric staleness
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("convention", ["algorithmic", "total"])
@pytest.mark.parametrize("mu", [0.0, 0.6])
def test_synchronous_sensor_reads_algorithmic_momentum(convention: str, mu: float) -> None:
    opt = momentum_feedback(0.02, mu, gain=1e-9, sensor_convention=convention)
    stats = run_stale_quadratic(opt, np.zeros(400, int))
    # Heavy ball makes (d_next + alpha g) / d_prev = mu exactly; float32 rounding only.
    np.testing.assert_allclose(stats["mu_hat"][5:], mu, atol=0.02)


@pytest.mark.parametrize("workers", [4, 8])
def test_stale_sensor_conventions(workers: int) -> None:
    taus = geometric_staleness(workers, 1500)
    # The algorithmic convention reads mu_algo = 0 up to a bias of order alpha*h*tau
    # (alpha*h <= 0.02 here, mean tau = M - 1).
    alg = momentum_feedback(0.02, 0.0, gain=1e-9, sensor_convention="algorithmic")
    mh = run_stale_quadratic(alg, taus)["mu_hat"][200:]
    assert abs(np.mean(mh)) < 0.02 * (workers - 1) * 0.5
    # The total convention (step / M) recovers the implicit momentum 1 - 1/M.
    tot = momentum_feedback(
        0.02, 0.0, gain=1e-9, sensor_convention="total", effective_workers=workers
    )
    mh = run_stale_quadratic(tot, taus)["mu_hat"][200:]
    assert np.mean(mh) == pytest.approx(1 - 1 / workers, abs=0.02)


def test_staleness_beyond_ring_gives_no_reading() -> None:
    opt = momentum_feedback(0.02, 0.5, gain=0.5, max_staleness=2, initial_momentum=0.2)
    taus = np.full(50, 3)
    stats = run_stale_quadratic(opt, taus)
    # No valid reading ever: the controller holds mu_algo and mu_hat stays at its initial value.
    np.testing.assert_allclose(stats["mu_algo"], 0.2, atol=1e-7)
    np.testing.assert_allclose(stats["mu_hat"], 0.5, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# Closed loop
# ---------------------------------------------------------------------------------------------


def test_closed_loop_converges_under_staleness() -> None:
    workers, target = 4, 0.9
    opt = momentum_feedback(
        0.02,
        target,
        initial_momentum=0.0,
        sensor_convention="total",
        effective_workers=workers,
    )
    stats = run_stale_quadratic(opt, geometric_staleness(workers, 4000))
    assert np.mean(stats["mu_hat"][-1000:]) == pytest.approx(target, abs=0.01)
    # First-order model: total = 1 - (1 - mu_algo)/M, so mu_algo -> 1 - M (1 - target) = 0.6.
    assert np.mean(stats["mu_algo"][-1000:]) == pytest.approx(1 - workers * (1 - target), abs=0.05)
    # Stability: no oscillation growing into the clip bounds.
    assert np.all(stats["mu_algo"] > -0.9) and np.all(stats["mu_algo"] < 0.999)


def test_default_convention_is_algorithmic() -> None:
    taus = geometric_staleness(4, 600)
    base = dict(gain=0.05, initial_momentum=0.2, effective_workers=4)
    default = run_stale_quadratic(momentum_feedback(0.02, 0.6, **base), taus)
    algo = run_stale_quadratic(
        momentum_feedback(0.02, 0.6, sensor_convention="algorithmic", **base), taus
    )
    total = run_stale_quadratic(
        momentum_feedback(0.02, 0.6, sensor_convention="total", **base), taus
    )
    np.testing.assert_array_equal(default["mu_algo"], algo["mu_algo"])
    assert not np.array_equal(default["mu_algo"], total["mu_algo"])
    yf_default = run_stale_quadratic(closed_loop_yellowfin(effective_workers=4), taus[:300])
    yf_algo = run_stale_quadratic(
        closed_loop_yellowfin(effective_workers=4, sensor_convention="algorithmic"),
        taus[:300],
    )
    np.testing.assert_array_equal(yf_default["mu_hat"], yf_algo["mu_hat"])


def test_algorithmic_loop_settles_near_the_target_as_the_step_shrinks() -> None:
    # Under staleness the algorithmic convention reads mu_algo + O(alpha h tau): the settled
    # mu_algo sits below the target by a bias that shrinks with the step.
    workers, target = 4, 0.6
    taus = geometric_staleness(workers, 4000)
    gaps = []
    for alpha in (0.04, 0.01):
        opt = momentum_feedback(alpha, target, initial_momentum=0.0, effective_workers=workers)
        gaps.append(target - float(np.mean(run_stale_quadratic(opt, taus)["mu_algo"][-1000:])))
    assert 0.0 < gaps[1] < 0.5 * gaps[0]
    assert gaps[1] < 0.05


def test_total_convention_cannot_reach_a_target_below_its_floor() -> None:
    # First order, the total momentum 1 - (1 - mu_algo)/M is at least 1 - 1.9/M = 0.7625 for
    # M = 8 (mu_algo >= -0.9): a target of 0.5 leaves the controller on its floor.
    workers = 8
    taus = geometric_staleness(workers, 3000)
    opt = momentum_feedback(
        0.02, 0.5, initial_momentum=0.0, sensor_convention="total", effective_workers=workers
    )
    stats = run_stale_quadratic(opt, taus)
    np.testing.assert_allclose(stats["mu_algo"][-500:], -0.9, atol=1e-6)
    assert np.mean(stats["mu_hat"][-500:]) > 0.7


def test_synchronous_closed_loop_settles_on_target() -> None:
    opt = momentum_feedback(0.02, 0.7, initial_momentum=0.1)
    stats = run_stale_quadratic(opt, np.zeros(1500, int))
    # e_{k+1} = (1 - gain) e_k: after 1500 steps at gain 0.02 the error is 0.6 * 0.98^1500 ~ 0.
    assert stats["mu_algo"][-1] == pytest.approx(0.7, abs=1e-3)
    assert stats["mu_hat"][-1] == pytest.approx(0.7, abs=1e-3)


def _plant(gain: float, delay: int, steps: int = 3000) -> np.ndarray:
    """Controller around the sensor model mu_hat_k = mu_algo_{k - delay} + b (b: implicit)."""
    b, target = 0.3, 0.8
    hist = [0.0] * (delay + 1)
    errs = []
    mu = jnp.float32(0.0)
    for _ in range(steps):
        mu_hat = hist[-(delay + 1)] + b
        mu = feedback_update(mu, jnp.float32(target), jnp.float32(mu_hat), jnp.bool_(True), gain)
        hist.append(float(mu))
        errs.append(target - mu_hat)
    return np.array(errs)


@pytest.mark.parametrize("delay", [0, 15, 63])
def test_default_gain_is_stable_for_delays(delay: int) -> None:
    # e_{k+1} = e_k - gain e_{k-d} is stable iff gain < 2 sin(pi / (2 (2d + 1))).
    assert 2 * math.sin(math.pi / (2 * (2 * delay + 1))) > DEFAULT_GAIN
    errs = _plant(DEFAULT_GAIN, delay)
    assert abs(errs[-1]) < 1e-3 and np.max(np.abs(errs[-200:])) < 1e-3


def test_gain_beyond_the_delay_bound_oscillates() -> None:
    # The argument of the docstring predicts instability at delay 15 for gain 0.15 > 0.101.
    errs = _plant(0.15, 15, steps=600)
    assert np.max(np.abs(errs[-100:])) > 0.1


def test_yellowfin_closed_loop_tracks_singlestep_target() -> None:
    # Two workers: while SingleStep's target is still tiny the total momentum 1 - (1 - mu)/2 cannot
    # reach it even at mu_algo = -0.9 (clipped); once the target grows the loop catches up.
    curv = np.geomspace(0.1, 10.0, D)
    taus = geometric_staleness(2, 3000, seed=2)
    opt = closed_loop_yellowfin(learning_rate=0.01, sensor_convention="total", effective_workers=2)
    stats = run_stale_quadratic(opt, taus, alpha_h=curv)
    err = stats["mu_target"] - stats["mu_hat"]
    # Measured: mean |error| ~0.024 over the last 500 steps while the target moves 0.44 -> 0.70.
    assert np.mean(np.abs(err[-500:])) < 0.05
    # Asynchrony supplies momentum, so the algorithmic momentum sits well below the target.
    assert np.mean(stats["mu_algo"][-500:]) < np.mean(stats["mu_target"][-500:]) - 0.2
    assert np.all(stats["skipped"] == 0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"gain": 0.0}, "gain"),
        ({"gain": 1.5}, "gain"),
        ({"sensor_convention": "x"}, "sensor_convention"),
        ({"effective_workers": 0.0}, "effective_workers"),
        ({"sensor_size": 0}, "sensor_size"),
        ({"sensor_size": True}, "sensor_size"),  # a bool is an int, but never a meant size
        ({"sensor_size": 64.0}, "sensor_size"),
        ({"max_staleness": -1}, "max_staleness"),
        ({"max_staleness": False}, "max_staleness"),
        ({"gain": True}, "gain"),
        ({"key": True}, "key"),
        ({"key": -1}, "key"),
        ({"min_denominator": 1.0}, "min_denominator"),
        ({"initial_momentum": 1.0}, "initial_momentum"),
    ],
)
def test_invalid_hyperparameters(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        momentum_feedback(0.1, 0.5, **kwargs)
    with pytest.raises(ValueError, match="target_momentum"):
        momentum_feedback(0.1, 1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        momentum_feedback(-0.1, 0.5)


@pytest.mark.parametrize("closed", [False, True])
def test_yellowfin_state_is_donatable(closed: bool) -> None:
    # No two state fields may share a buffer, or a step with the state donated cannot run.
    opt = closed_loop_yellowfin() if closed else yellowfin()
    x = jnp.linspace(-1.0, 1.0, 7)
    state = opt.init(x)
    ptrs = [leaf.unsafe_buffer_pointer() for leaf in jax.tree_util.tree_leaves(state)]
    assert len(set(ptrs)) == len(ptrs)
    step = jax.jit(lambda x, s: opt.update(2 * x, s, x, value=jnp.sum(x * x)), donate_argnums=(1,))
    for _ in range(3):
        _, state = step(x, state)
    yf_state = state.inner_state.inner_state if closed else state
    assert int(yf_state.count) == 3 and int(yf_state.skipped) == 0


# ---------------------------------------------------------------------------------------------
# float16 parameters and optax.inject_hyperparams
# ---------------------------------------------------------------------------------------------


def test_float16_move_that_overflows_is_skipped_not_written() -> None:
    # alpha g = 6e5 is finite in the float32 statistics but beyond float16's 65504: written in
    # the parameter dtype it is -inf. The step is skipped and counted, the state rolled back.
    x = jnp.ones(3, jnp.float16)
    opt = momentum_feedback(10.0, 0.9)
    step = jax.jit(lambda g, s: opt.update(g, s, x))
    _, before = step(jnp.full(3, 1e-3, jnp.float16), opt.init(x))  # a non-zero move and ring
    upd, after = step(jnp.full(3, 60000.0, jnp.float16), before)
    assert np.all(np.asarray(upd, np.float32) == 0.0)
    assert np.all(np.isfinite(np.asarray(optax.apply_updates(x, upd), np.float32)))
    assert int(after.skipped) == 1
    for field in before._fields:
        if field != "skipped":
            for a, b in zip(
                jax.tree_util.tree_leaves(getattr(after, field)),
                jax.tree_util.tree_leaves(getattr(before, field)),
                strict=True,
            ):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=field)
    # A move that fits is applied as usual: 0.9 * (-0.01) - 10 * 1.
    upd, after = step(jnp.full(3, 1.0, jnp.float16), after)
    assert int(after.skipped) == 1 and int(after.count) == 2
    assert float(upd[0]) == pytest.approx(-10.009, abs=0.01)


def test_inject_hyperparams_needs_the_static_args() -> None:
    assert set(MOMENTUM_FEEDBACK_STATIC_ARGS) == {"sensor_size", "max_staleness", "key"}
    with pytest.raises(ValueError, match="sensor_size"):
        optax.inject_hyperparams(momentum_feedback)(0.1, 0.5).init(jnp.ones(3))


@pytest.mark.parametrize("convention", ["algorithmic", "total"])
def test_injected_equals_plain_step_by_step(convention: str) -> None:
    # Every numeric hyper-parameter that may be injected is given a non-default value; the
    # synchronous quadratic gives a valid reading each step, so the controller moves mu_algo.
    kwargs = dict(
        gain=0.05,
        initial_momentum=0.3,
        sensor_convention=convention,
        effective_workers=3.0,
        min_denominator=1e-5,
        sensor_size=16,
        max_staleness=4,
        key=3,
    )
    plain = momentum_feedback(0.1, 0.7, **kwargs)
    injected = optax.inject_hyperparams(
        momentum_feedback, static_args=MOMENTUM_FEEDBACK_STATIC_ARGS
    )(0.1, 0.7, **kwargs)
    h = jnp.asarray(np.geomspace(0.05, 1.0, 64), jnp.float32)
    x0 = jnp.asarray(np.random.default_rng(0).standard_normal(64), jnp.float32)
    last = assert_injection_transparent(plain, injected, x0, lambda x: h * x, 30, staleness=0)
    assert abs(float(last.inner_state.mu_algo) - 0.3) > 0.02  # the loop did act
    assert float(last.hyperparams["gain"]) == pytest.approx(0.05)


def test_injected_target_is_applied() -> None:
    # The set point is read at every step: changing the injected target moves the loop there.
    opt = optax.inject_hyperparams(momentum_feedback, static_args=MOMENTUM_FEEDBACK_STATIC_ARGS)(
        0.02, 0.7, gain=0.05
    )
    h = jnp.asarray(CURV, jnp.float32)
    x = jnp.asarray(np.random.default_rng(0).standard_normal(D), jnp.float32)
    state = opt.init(x)
    state = state._replace(hyperparams={**state.hyperparams, "target_momentum": jnp.float32(0.2)})
    step = jax.jit(lambda x, s: opt.update(h * x, s, x))
    for _ in range(200):
        upd, state = step(x, state)
        x = x + upd
    # Synchronous algorithmic sensor: e_{k+1} = 0.95 e_k, 0.5 * 0.95^200 ~ 2e-5.
    assert float(state.inner_state.mu_target) == pytest.approx(0.2)
    assert float(state.inner_state.mu_algo) == pytest.approx(0.2, abs=1e-3)
