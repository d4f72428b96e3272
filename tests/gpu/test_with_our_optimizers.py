"""The trainer with the project's optimizers: value= and staleness= reach them, stats are logged."""

from __future__ import annotations

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


def test_yellowfin_closed_loop_receives_the_staleness() -> None:
    tx = optimizers.yellowfin(closed_loop=True, effective_workers=4.0, max_staleness=32)
    r = train(
        mlp(),
        tx,
        digits_task(),
        steps=60,
        chunk=60,
        staleness=stale.geometric(4, max_tau=32),
        pass_staleness=True,
    )
    assert np.all(np.isfinite(r.metrics["loss"]))
    assert r.metrics["tau"].max() > 0
    momentum_keys = [k for k in r.metrics if "momentum" in k]
    assert momentum_keys, sorted(r.metrics)
