"""heavy_ball: the exact Polyak recursion against float64 NumPy and the 2x2 transfer matrix."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optimizers import heavy_ball, logged_stats
from tests.optimizers._injection import assert_injection_transparent


def _run(opt, x0, grad_fn, steps):
    x = jnp.asarray(x0, jnp.float32)
    state = opt.init(x)
    step = jax.jit(lambda x, s: opt.update(grad_fn(x), s, x))
    xs = [np.asarray(x)]
    for _ in range(steps):
        u, state = step(x, state)
        x = optax.apply_updates(x, u)
        xs.append(np.asarray(x))
    return np.array(xs), state


def test_matches_polyak_recursion_with_schedule() -> None:
    # A decaying learning rate separates Polyak's form (lr inside) from PyTorch's (lr outside).
    rng = np.random.default_rng(0)
    h = rng.uniform(0.1, 2.0, 6)
    x0 = rng.standard_normal(6)
    sched = optax.exponential_decay(0.5, transition_steps=1, decay_rate=0.97)
    mu = 0.8
    xs, _ = _run(heavy_ball(sched, mu), x0, lambda x: h * x, 60)
    ref = [x0, x0 - 0.5 * h * x0]  # zero-velocity start: x_1 = x_0 - alpha_0 g_0
    for t in range(1, 60):
        alpha = 0.5 * 0.97**t
        ref.append(ref[-1] - alpha * h * ref[-1] + mu * (ref[-1] - ref[-2]))
    # float32 rounding accumulates over 60 contracting steps: a few 1e-7 relative per step.
    np.testing.assert_allclose(xs, np.array(ref), rtol=1e-5, atol=1e-6)
    # optax's sgd with momentum keeps lr outside the velocity and therefore differs here.
    xs_optax, _ = _run(optax.sgd(sched, momentum=mu), x0, lambda x: h * x, 60)
    assert np.max(np.abs(xs_optax - np.array(ref))) > 1e-3


def test_equals_sgd_momentum_for_constant_lr() -> None:
    rng = np.random.default_rng(1)
    h = rng.uniform(0.1, 2.0, 5)
    x0 = rng.standard_normal(5)
    xs, _ = _run(heavy_ball(0.3, 0.6), x0, lambda x: h * x, 40)
    xs_optax, _ = _run(optax.sgd(0.3, momentum=0.6), x0, lambda x: h * x, 40)
    np.testing.assert_allclose(xs, xs_optax, rtol=1e-5, atol=1e-6)


def test_error_follows_transfer_matrix_powers() -> None:
    # e_{t+1} = A e_t with A = [[1 - alpha h + mu, -mu], [1, 0]]: compare with numpy matrix powers.
    alpha, mu, h = 0.4, 0.5, 1.7
    a = np.array([[1 - alpha * h + mu, -mu], [1.0, 0.0]])
    x0 = 1.3
    xs, _ = _run(heavy_ball(alpha, mu), np.array([x0]), lambda x: h * x, 30)
    e1 = np.array([x0 - alpha * h * x0, x0])
    for t in range(1, 31):
        pred = (np.linalg.matrix_power(a, t - 1) @ e1)[0]
        # float32 iterates vs float64 powers: absolute error ~1e-7 * |x0| per step.
        assert abs(xs[t, 0] - pred) < 1e-5
    # Inside the robust region the rate is sqrt(mu) (eigenvalue modulus).
    rho = np.max(np.abs(np.linalg.eigvals(a)))
    assert rho == pytest.approx(np.sqrt(mu), rel=1e-12)


def test_weight_decay_is_coupled_l2() -> None:
    h, wd = 0.5, 0.1
    xs, _ = _run(heavy_ball(0.2, 0.3, weight_decay=wd), np.array([2.0]), lambda x: h * x, 20)
    ref, _ = _run(heavy_ball(0.2, 0.3), np.array([2.0]), lambda x: (h + wd) * x, 20)
    np.testing.assert_allclose(xs, ref, rtol=1e-6)


def test_logged_stats_and_extra_args() -> None:
    opt = heavy_ball(0.1, 0.9)
    state = opt.init(jnp.zeros(3))
    _, state = opt.update(jnp.ones(3), state, jnp.zeros(3), value=1.0, staleness=2)
    stats = logged_stats(state)
    assert sorted(stats) == ["learning_rate", "momentum", "skipped"]
    assert float(stats["learning_rate"]) == pytest.approx(0.1)
    assert float(stats["momentum"]) == pytest.approx(0.9)
    assert int(stats["skipped"]) == 0


def test_negative_momentum_matches_polyak_recursion() -> None:
    # mu in (-1, 0) is accepted (asynchrony compensation); same float64 recursion as above.
    rng = np.random.default_rng(3)
    h = rng.uniform(0.1, 2.0, 4)
    x0 = rng.standard_normal(4)
    alpha, mu = 0.3, -0.4
    xs, state = _run(heavy_ball(alpha, mu), x0, lambda x: h * x, 30)
    ref = [x0, x0 - alpha * h * x0]
    for _ in range(1, 30):
        ref.append(ref[-1] - alpha * h * ref[-1] + mu * (ref[-1] - ref[-2]))
    # Contracting recursion in float32: rounding of a few 1e-7 relative per step.
    np.testing.assert_allclose(xs, np.array(ref), rtol=1e-5, atol=1e-6)
    assert float(state.momentum) == pytest.approx(mu)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"learning_rate": -0.1, "momentum": 0.5}, "learning_rate"),
        ({"learning_rate": 0.1, "momentum": 1.0}, "momentum"),
        ({"learning_rate": 0.1, "momentum": -1.0}, "momentum"),
        ({"learning_rate": 0.1, "momentum": 0.5, "weight_decay": -1.0}, "weight_decay"),
        ({"learning_rate": float("nan"), "momentum": 0.5}, "learning_rate"),
    ],
)
def test_invalid_hyperparameters(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        heavy_ball(**kwargs)


def test_weight_decay_needs_params() -> None:
    opt = heavy_ball(0.1, 0.5, weight_decay=0.1)
    with pytest.raises(ValueError, match="params"):
        opt.update(jnp.ones(2), opt.init(jnp.ones(2)))


def _distinct_buffers(tree) -> bool:
    ptrs = [leaf.unsafe_buffer_pointer() for leaf in jax.tree_util.tree_leaves(tree)]
    return len(set(ptrs)) == len(ptrs)


def test_state_buffers_are_distinct_and_donatable() -> None:
    # Fields sharing one buffer cannot all be donated to a jitted step.
    opt = heavy_ball(0.1, -0.3)
    x = jnp.ones(5)
    state = opt.init(x)
    assert _distinct_buffers(state)
    step = jax.jit(lambda x, s, g: opt.update(g, s, x), donate_argnums=(1,))
    upd, state = step(x, state, 2 * x)
    upd, state = step(x, state, 2 * x)
    # delta_1 = -0.1 g, delta_2 = -0.3 delta_1 - 0.1 g with g = 2.
    np.testing.assert_allclose(np.asarray(upd), np.full(5, -0.3 * -0.2 - 0.2), rtol=1e-6)


def test_float16_move_that_overflows_is_skipped_not_written() -> None:
    # alpha g = 6e5 is finite in the float32 statistics but beyond float16's 65504: the update
    # would write -inf into the parameters. It is skipped and counted instead.
    x = jnp.ones(3, jnp.float16)
    opt = heavy_ball(10.0, 0.9)
    state = opt.init(x)
    upd, state = opt.update(jnp.full(3, 60000.0, jnp.float16), state, x)
    assert np.all(np.isfinite(np.asarray(optax.apply_updates(x, upd), np.float32)))
    assert int(state.skipped) == 1 and float(jnp.max(jnp.abs(state.delta[0:]))) == 0.0
    # a move that fits is applied as usual
    upd, state = opt.update(jnp.full(3, 1.0, jnp.float16), state, x)
    assert int(state.skipped) == 1 and float(upd[0]) == pytest.approx(-10.0)


def test_injected_equals_plain_step_by_step() -> None:
    # Every hyper-parameter injected, weight_decay = 0 included (it then arrives as an array and
    # takes the coupled-L2 path with a zero coefficient): same updates and state at every step.
    h = jnp.asarray(np.geomspace(0.1, 2.0, 16), jnp.float32)
    x0 = jnp.asarray(np.random.default_rng(2).standard_normal(16), jnp.float32)
    for wd in (0.0, 0.05):
        plain = heavy_ball(0.3, -0.4 if wd else 0.8, weight_decay=wd)
        injected = optax.inject_hyperparams(heavy_ball)(0.3, -0.4 if wd else 0.8, weight_decay=wd)
        last = assert_injection_transparent(plain, injected, x0, lambda x: h * x, 30)
        assert float(last.hyperparams["weight_decay"]) == pytest.approx(wd)
        assert int(last.inner_state.count) == 30
