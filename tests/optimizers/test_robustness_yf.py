"""Robustness of heavy_ball, yellowfin (open/closed loop) and momentum_feedback.

Non-finite inputs skip the step, dtypes, no host transfer, no recompilation, optax composition.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optimizers import (
    ClosedLoopState,
    closed_loop_yellowfin,
    heavy_ball,
    logged_stats,
    momentum_feedback,
    yellowfin,
)
from optimizers.yellowfin import YELLOWFIN_STATIC_ARGS

FACTORIES = {
    "heavy_ball": lambda: heavy_ball(0.05, 0.9),
    "yellowfin": lambda: yellowfin(learning_rate=0.01),
    "yellowfin_hb_form": lambda: yellowfin(learning_rate=0.01, update_form="heavy_ball"),
    "yellowfin_closed_loop": lambda: closed_loop_yellowfin(learning_rate=0.01),
    "momentum_feedback": lambda: momentum_feedback(0.05, 0.8),
}


@functools.cache
def _opt_and_step(name: str):
    """One optimizer and one jitted step per name, shared by the tests (one compile per dtype)."""
    opt = FACTORIES[name]()
    return opt, jax.jit(lambda g, s, p, v: opt.update(g, s, p, value=v))


ONE = jnp.float32(1.0)
H = {"w": jnp.linspace(0.5, 2.0, 12).reshape(3, 4), "b": jnp.array([1.0, 3.0])}


def _params(dtype=jnp.float32):
    return {"w": jnp.ones((3, 4), dtype), "b": jnp.full((2,), -1.0, dtype)}


def _grad(params):
    return jax.tree_util.tree_map(
        lambda h, p: (h * p.astype(jnp.float32)).astype(p.dtype), H, params
    )


def _skipped(state) -> int:
    """The skip counter (the loop's for closed-loop YellowFin; YellowFin's own counts too)."""
    return int(state.loop.skipped if isinstance(state, ClosedLoopState) else state.skipped)


def _with_skipped_of(new, old):
    """``new`` with the skip counters of ``old``."""
    if not isinstance(new, ClosedLoopState):
        return new._replace(skipped=old.skipped)
    yf_new, yf_old = new.inner_state.inner_state, old.inner_state.inner_state
    inner = new.inner_state._replace(inner_state=yf_new._replace(skipped=yf_old.skipped))
    return new._replace(inner_state=inner, loop=new.loop._replace(skipped=old.loop.skipped))


def _trees_equal(a, b) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb, strict=True))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_nonfinite_gradient_skips_the_step(name: str) -> None:
    opt, step = _opt_and_step(name)
    params = _params()
    state = opt.init(params)
    for _ in range(3):
        upd, state = step(_grad(params), state, params, ONE)
        params = optax.apply_updates(params, upd)
    for bad in (np.nan, np.inf, -np.inf):
        poisoned = _grad(params)
        poisoned["w"] = poisoned["w"].at[1, 2].set(bad)
        upd, new_state = step(poisoned, state, params, ONE)
        assert all(float(jnp.max(jnp.abs(u))) == 0.0 for u in jax.tree_util.tree_leaves(upd))
        assert _skipped(new_state) == _skipped(state) + 1
        assert _trees_equal(_with_skipped_of(new_state, state), state)
        # The next good step continues exactly as if the bad one had never happened.
        upd_a, _ = step(_grad(params), new_state, params, ONE)
        upd_b, _ = step(_grad(params), state, params, ONE)
        assert _trees_equal(upd_a, upd_b)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_nonfinite_loss_skips_the_step(name: str) -> None:
    # Also for heavy_ball and momentum_feedback, whose step does not use the loss: a loop that
    # passes value=loss gets the same skip semantics from every optimizer.
    opt, step = _opt_and_step(name)
    params = _params()
    state = opt.init(params)
    for _ in range(3):
        upd, state = step(_grad(params), state, params, ONE)
        params = optax.apply_updates(params, upd)
    for bad in (np.nan, np.inf, -np.inf):
        upd, new_state = step(_grad(params), state, params, jnp.float32(bad))
        assert all(float(jnp.max(jnp.abs(u))) == 0.0 for u in jax.tree_util.tree_leaves(upd))
        assert _skipped(new_state) == _skipped(state) + 1
        assert _trees_equal(_with_skipped_of(new_state, state), state)


@pytest.mark.parametrize("name", ["yellowfin", "yellowfin_closed_loop"])
def test_zero_and_huge_gradients_never_reach_params(name: str) -> None:
    opt, step = _opt_and_step(name)
    params = _params()
    state = opt.init(params)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    for _ in range(30):  # zero gradients: every statistic hits its eps guard
        upd, state = step(zeros, state, params, ONE)
        params = optax.apply_updates(params, upd)
    huge = jax.tree_util.tree_map(lambda p: jnp.full_like(p, 1e30), params)  # ||g||^2 overflows
    upd, state = step(huge, state, params, ONE)
    params = optax.apply_updates(params, upd)
    for _ in range(5):
        upd, state = step(_grad(params), state, params, ONE)
        params = optax.apply_updates(params, upd)
    assert all(bool(jnp.all(jnp.isfinite(p))) for p in jax.tree_util.tree_leaves(params))
    assert _skipped(state) == 1
    assert all(bool(jnp.isfinite(v)) for v in logged_stats(state).values())


@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
def test_dtypes(name: str, dtype) -> None:
    opt, step = _opt_and_step(name)
    params = _params(dtype)
    state = opt.init(params)
    for _ in range(4):
        upd, state = step(_grad(params), state, params, ONE)
        assert all(u.dtype == dtype for u in jax.tree_util.tree_leaves(upd))
        params = optax.apply_updates(params, upd)
    for key, v in logged_stats(state).items():
        if not key.endswith("skipped"):
            assert v.dtype == jnp.float32, key
    assert all(bool(jnp.all(jnp.isfinite(p))) for p in jax.tree_util.tree_leaves(params))


@pytest.mark.parametrize("name", ["heavy_ball", "yellowfin_closed_loop"])
def test_float64_params_keep_float64_statistics(name: str) -> None:
    with jax.enable_x64(True):
        opt = FACTORIES[name]()
        params = _params(jnp.float64)
        state = opt.init(params)
        upd, state = jax.jit(opt.update)(_grad(params), state, params)
        assert all(u.dtype == jnp.float64 for u in jax.tree_util.tree_leaves(upd))
        assert logged_stats(state)["learning_rate"].dtype == jnp.float64
        assert logged_stats(state)["momentum"].dtype == jnp.float64


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_no_host_transfer_and_no_recompilation(name: str) -> None:
    opt = FACTORIES[name]()
    params = jax.device_put(_params())
    state = jax.device_put(opt.init(params))

    @jax.jit
    def step(params, state, staleness, loss):
        upd, state = opt.update(_grad(params), state, params, value=loss, staleness=staleness)
        return optax.apply_updates(params, upd), state

    staleness = [jax.device_put(jnp.int32(t)) for t in (0, 1, 0, 2, 1, 0)]
    losses = [jax.device_put(jnp.float32(v)) for v in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)]
    with jax.transfer_guard("disallow"):
        for tau, loss in zip(staleness, losses, strict=True):
            params, state = step(params, state, tau, loss)
    assert step._cache_size() == 1
    assert _skipped(state) == 0


def test_chain_and_inject_hyperparams() -> None:
    params = _params()
    opt = optax.chain(optax.clip_by_global_norm(1.0), yellowfin(learning_rate=0.01))
    state = opt.init(params)
    upd, state = jax.jit(lambda g, s, p: opt.update(g, s, p, value=1.0))(
        _grad(params), state, params
    )
    stats = logged_stats(state)
    assert {"learning_rate", "momentum", "h_min", "h_max", "grad_var", "dist_to_opt"} <= set(stats)

    hb = optax.inject_hyperparams(heavy_ball)(learning_rate=0.1, momentum=0.5)
    state = hb.init(params)
    upd, state = jax.jit(lambda g, s: hb.update(g, s, params, staleness=0))(_grad(params), state)
    stats = logged_stats(state)
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(0.1)
    assert float(stats["learning_rate"]) == pytest.approx(0.1)
    np.testing.assert_allclose(np.asarray(upd["b"]), -0.1 * np.asarray(_grad(params)["b"]), 1e-6)

    yf = optax.inject_hyperparams(yellowfin, static_args=YELLOWFIN_STATIC_ARGS)(
        learning_rate=0.01, lr_factor=0.5
    )
    state = yf.init(params)
    _, state = jax.jit(yf.update)(_grad(params), state, params)
    assert float(logged_stats(state)["learning_rate"]) == pytest.approx(0.005)


def test_flax_nnx_optimizer_drop_in() -> None:
    from flax import nnx

    class Model(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.lin = nnx.Linear(3, 1, rngs=rngs)

    model = Model(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, yellowfin(learning_rate=0.05), wrt=nnx.Param)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((64, 3)), jnp.float32)
    y = x @ jnp.array([[1.0], [-2.0], [0.5]])

    @nnx.jit
    def train_step(model, optimizer, x, y):
        def loss_fn(model):
            return jnp.mean((model.lin(x) - y) ** 2)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads, value=loss)
        return loss

    losses = [float(train_step(model, optimizer, x, y)) for _ in range(300)]
    assert losses[-1] < 0.1 * losses[0]
    assert int(logged_stats(optimizer.opt_state)["skipped"]) == 0
