"""optimizers.closed_loop: validation, optax compatibility, skips and the loop's action."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optimizers import (
    CLOSED_LOOP_STATIC_ARGS,
    closed_loop,
    closed_loop_yellowfin,
    logged_stats,
    momo,
)
from tests.optimizers._injection import assert_injection_transparent
from tests.optimizers._stale_loop import geometric_staleness, run_stale

CURV = np.geomspace(0.05, 1.0, 256)
inject = optax.inject_hyperparams


def sgd(lr: float = 0.05, mu: float = 0.7):
    return inject(optax.sgd)(lr, momentum=mu)


@pytest.mark.parametrize(
    ("make", "kwargs", "name"),
    [
        (lambda: optax.sgd(0.1, momentum=0.9), {}, "inject_hyperparams"),
        (lambda: inject(optax.adam)(1e-3), {}, "hyperparam='momentum'"),
        (lambda: inject(optax.adam)(1e-3), {"hyperparam": "beta"}, "hyperparam='beta'"),
        (
            lambda: inject(optax.sgd)(0.1, momentum=optax.linear_schedule(0.5, 0.9, 10)),
            {},
            "schedule",
        ),
        (sgd, {"gain": 0.0}, "gain"),
        (sgd, {"gain": -0.1}, "gain"),
        (sgd, {"gain": 1.5}, "gain"),
        (sgd, {"bounds": (0.5, 0.2)}, "bounds"),
        (sgd, {"bounds": (-1.0, 0.9)}, "bounds"),
        (sgd, {"bounds": (0.0, 1.0)}, "bounds"),
        (sgd, {"bounds": "wide"}, "bounds"),
        (sgd, {"target_momentum": 1.0}, "target_momentum"),
        (sgd, {"target_momentum": -0.1}, "target_momentum"),
        (sgd, {"target_momentum": "tuned_momentum"}, "target_momentum"),
        (sgd, {"sensor_convention": "mean"}, "sensor_convention"),
        (sgd, {"effective_workers": 0.5}, "effective_workers"),
        (sgd, {"sensor_size": 0}, "sensor_size"),
        (sgd, {"max_staleness": -1}, "max_staleness"),
        (sgd, {"key": -1}, "key"),
        (sgd, {"step_size": 0.1}, "step_size"),
        (lambda: inject(optax.lion)(1e-3), {"hyperparam": "b1"}, "step_size"),
    ],
)
def test_bad_settings_name_the_parameter(make, kwargs, name) -> None:
    with pytest.raises(ValueError, match=name.replace("(", r"\(").replace("[", r"\[")):
        closed_loop(make(), **kwargs)


def test_synchronous_heavy_ball_at_its_own_target_is_plain_optax_sgd() -> None:
    # synchronously the sensor reads mu exactly, so the error is rounding and the momentum stays
    x0 = jnp.asarray(np.random.default_rng(0).standard_normal(64), jnp.float32)
    h = jnp.asarray(np.geomspace(0.05, 1.0, 64), jnp.float32)
    wrapped, plain = closed_loop(sgd()), optax.sgd(0.05, momentum=0.7)
    xs = []
    for opt in (wrapped, plain):
        x, state = x0, opt.init(x0)
        step = jax.jit(opt.update)
        for _ in range(100):
            u, state = step(h * x, state, x)
            x = x + u
        xs.append(x)
    # float32: the applied momentum drifts by gain * rounding of the reading per step
    np.testing.assert_allclose(xs[0], xs[1], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("x64", [False, True])
def test_jit_chain_and_dtypes(x64: bool) -> None:
    with jax.enable_x64(x64):
        dt = jnp.float64 if x64 else jnp.float32
        params = {"w": jnp.ones((3, 4), dt), "b": jnp.zeros((4,), dt)}
        opt = optax.chain(
            optax.clip_by_global_norm(10.0),
            closed_loop(inject(optax.adam)(1e-2, b1=0.9), hyperparam="b1", max_staleness=4),
        )
        state = opt.init(params)
        step = jax.jit(lambda g, s, p, t: opt.update(g, s, p, staleness=t))
        for k in range(6):
            grads = jax.tree_util.tree_map(lambda p, k=k: p + 0.1 * (k + 1), params)
            u, state = step(grads, state, params, min(k, 2))
            params = optax.apply_updates(params, u)
        loop = state[1].loop
        assert loop.mu_algo.dtype == dt and loop.sensor.ring.dtype == dt
        assert all(leaf.dtype == dt for leaf in jax.tree_util.tree_leaves(params))
        stats = logged_stats(state)
        assert {"mu_hat", "mu_algo", "mu_target", "loop_skipped", "hp_b1"} <= set(stats)
        assert float(stats["hp_b1"]) != pytest.approx(0.9, abs=1e-7)  # the loop moved it
        assert float(stats["mu_target"]) == pytest.approx(0.9)  # the initial value stays the target


@pytest.mark.parametrize("kind", ["adam", "yellowfin", "momo"])
def test_non_finite_gradient_or_loss_skips_and_counts(kind: str) -> None:
    opt = {
        "adam": lambda: closed_loop(inject(optax.adam)(1e-2, b1=0.9), hyperparam="b1"),
        "yellowfin": lambda: closed_loop_yellowfin(learning_rate=0.01),
        "momo": lambda: closed_loop(inject(momo)(0.1, beta=0.9), hyperparam="beta"),
    }[kind]()
    x = jnp.linspace(-1.0, 1.0, 8)
    state = opt.init(x)
    step = jax.jit(lambda g, s, p, v: opt.update(g, s, p, value=v))
    for _ in range(3):
        u, state = step(0.5 * x, state, x, jnp.sum(x * x))
        x = x + u
    before = state
    bad_grad = (0.5 * x).at[3].set(jnp.nan)
    for g, v in ((bad_grad, jnp.sum(x * x)), (0.5 * x, jnp.asarray(jnp.inf))):
        u, state = step(g, state, x, v)
        np.testing.assert_array_equal(np.asarray(u), 0.0)
    assert int(state.loop.skipped) == 2
    for name in ("mu_algo", "mu_hat", "mu_target"):
        assert float(getattr(state.loop, name)) == float(getattr(before.loop, name))
    np.testing.assert_array_equal(state.loop.sensor.ring, before.loop.sensor.ring)
    for leaf in jax.tree_util.tree_leaves(state):
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            assert bool(jnp.all(jnp.isfinite(leaf)))
    u, state = step(0.5 * x, state, x, jnp.sum(x * x))  # and it goes on
    assert bool(jnp.any(u != 0)) and int(state.loop.skipped) == 2


def test_injecting_the_wrapper_leaves_its_steps_unchanged() -> None:
    kwargs = {"hyperparam": "b1", "gain": 0.05, "sensor_convention": "total"}
    plain = closed_loop(inject(optax.adam)(1e-2, b1=0.9), effective_workers=2.0, **kwargs)
    injected = inject(closed_loop, static_args=CLOSED_LOOP_STATIC_ARGS)(
        inject(optax.adam)(1e-2, b1=0.9), effective_workers=2.0, **kwargs
    )
    h = jnp.linspace(0.1, 1.0, 16)
    last = assert_injection_transparent(
        plain, injected, jnp.ones(16), lambda x: h * x, steps=20, staleness=1
    )
    assert float(last.hyperparams["effective_workers"]) == 2.0


def test_loop_steers_adam_b1_under_staleness() -> None:
    # M = 8 stale workers, total convention, target 0.9: first order, the loop settles where
    # 1 - (1 - b1)/M = 0.9, b1 = 0.2; the sensor's bias moves it by O(a h tau).
    m, target = 8, 0.9
    taus = geometric_staleness(m, 6000, seed=0)
    opt = closed_loop(
        inject(optax.adam)(1e-3, b1=target),
        hyperparam="b1",
        target_momentum=target,
        sensor_convention="total",
        effective_workers=m,
    )
    r = run_stale(opt, taus, CURV)
    late = slice(4000, None)
    assert r["mu_hat"][late].mean() == pytest.approx(target, abs=0.01)
    # first order b1 = 1 - M (1 - target) = 0.2; 0.1 covers the sensor's bias (measured 0.25)
    assert r["mu_algo"][late].mean() == pytest.approx(1 - m * (1 - target), abs=0.1)
    np.testing.assert_array_equal(r["hp_b1"][1:], r["mu_algo"][:-1])


def test_no_host_transfer_and_no_recompilation() -> None:
    opt = closed_loop(inject(optax.adam)(1e-2, b1=0.9), hyperparam="b1", max_staleness=4)
    params = jax.device_put(jnp.linspace(-1.0, 1.0, 32))
    state = jax.device_put(opt.init(params))

    @jax.jit
    def step(params, state, tau, loss):
        updates, state = opt.update(2.0 * params, state, params, staleness=tau, value=loss)
        return optax.apply_updates(params, updates), state

    taus = [jax.device_put(jnp.int32(t)) for t in (0, 1, 3, 0, 2)]
    losses = [jax.device_put(jnp.float32(v)) for v in (1.0, 0.9, 0.8, 0.7, 0.6)]
    with jax.transfer_guard("disallow"):
        for tau, loss in zip(taus, losses, strict=True):
            params, state = step(params, state, tau, loss)
    assert step._cache_size() == 1
    assert int(state.loop.skipped) == 0
