"""The trainer with the project's optimizers: value= and staleness= reach them, stats are logged."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optimizers
from gpu import stale
from gpu.train import train
from tests.gpu._helpers import digits_task, mlp

FACTORIES = {
    "yellowfin": lambda: optimizers.yellowfin(),
    "momo": lambda: optimizers.momo(1.0),
    "momo_adam": lambda: optimizers.momo_adam(1e-2),
    "heavy_ball": lambda: optimizers.heavy_ball(0.05, 0.9),
    "optax_contrib_momo": lambda: optax.contrib.momo(1.0),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_loss_falls_and_stats_are_recorded(name: str) -> None:
    r = train(mlp(), FACTORIES[name](), digits_task(), steps=80, chunk=80)
    loss = r.metrics["loss"]
    assert np.all(np.isfinite(loss))
    assert loss[-10:].mean() < 0.8 * loss[:10].mean()
    expected = set(optimizers.logged_stats(FACTORIES[name]().init(r.state.params)))
    assert expected <= set(r.metrics)
    for key in expected:
        assert r.metrics[key].shape == (80,)


class SpyState(NamedTuple):
    """Records the ``staleness`` keyword the trainer handed to ``update``."""

    seen: jax.Array

    LOGGED = ("seen",)


def staleness_spy() -> optax.GradientTransformationExtraArgs:
    def init(params):
        return SpyState(jnp.asarray(-1, jnp.int32))

    def update(updates, state, params=None, *, staleness=0, **extra):
        return updates, SpyState(jnp.asarray(staleness, jnp.int32))

    return optax.GradientTransformationExtraArgs(init, update)


@pytest.mark.parametrize("pass_staleness", [True, False])
def test_staleness_reaches_the_optimizer_only_when_passed(pass_staleness: bool) -> None:
    tx = optax.chain(staleness_spy(), optax.sgd(0.1))
    law = stale.uniform(5)
    r = train(
        mlp(), tx, digits_task(), steps=30, chunk=30, staleness=law, pass_staleness=pass_staleness
    )
    tau = r.metrics["tau"]
    assert tau.max() > 0
    if pass_staleness:
        np.testing.assert_array_equal(r.metrics["seen"], tau)
    else:
        np.testing.assert_array_equal(r.metrics["seen"], 0)


def test_yellowfin_closed_loop_receives_the_staleness() -> None:
    def run(pass_staleness: bool):
        tx = optimizers.closed_loop_yellowfin(effective_workers=4.0, max_staleness=32)
        return train(
            mlp(),
            tx,
            digits_task(),
            steps=60,
            chunk=60,
            staleness=stale.geometric(4, max_tau=32),
            pass_staleness=pass_staleness,
        )

    passed, ignored = run(True), run(False)
    assert np.all(np.isfinite(passed.metrics["loss"]))
    # same batches and delays; only the staleness handed to the sensor differs
    np.testing.assert_array_equal(passed.metrics["tau"], ignored.metrics["tau"])
    assert passed.metrics["tau"].max() > 0
    # the sensor pairs each gradient with the moves around x_{t - tau}: its readings, and through
    # the feedback the applied momentum, differ as soon as a delay is passed
    assert not np.array_equal(passed.metrics["mu_hat"], ignored.metrics["mu_hat"])
    assert not np.array_equal(passed.metrics["mu_algo"], ignored.metrics["mu_algo"])
