"""The network stages' helpers: the total-momentum observer, the beds, the loss smoothing (doctests
included), and the observer's readings on planted moves under staleness."""

from __future__ import annotations

import doctest

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.library import _async_net_beds, _async_net_sensor, _closed_loop_net
from experiments.library._async_net_beds import NetBed, gpu_bed, missing_data, pooled_ls
from experiments.library._async_net_sensor import find_field, observed
from optimizers import closed_loop_yellowfin


@pytest.mark.parametrize("module", [_async_net_sensor, _async_net_beds, _closed_loop_net])
def test_doctests(module) -> None:
    res = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0 and res.attempted > 0


def test_observer_leaves_updates_unchanged_and_reads_stale_pairs() -> None:
    # heavy ball with mu = 0.6, alpha = 0.1; at step 2 the gradient was read at x_1 (tau = 1):
    # it is paired with d_2 and d_1, numerator step alpha / M
    mu, alpha, m = 0.6, 0.1, 4
    plain = optax.sgd(alpha, mu)
    obs = observed(optax.sgd(alpha, mu), workers=m, max_staleness=3, step_size=alpha)
    p0 = jnp.zeros(3)
    s_plain, s_obs = plain.init(p0), obs.init(p0)
    grads = [jnp.array([1.0, -2.0, 0.5]), jnp.array([0.3, 1.0, -1.0]), jnp.array([2.0, 0.5, 1.5])]
    moves = []
    for k, g in enumerate(grads):
        u1, s_plain = plain.update(g, s_plain)
        u2, s_obs = obs.update(g, s_obs, staleness=1 if k == 2 else 0)
        np.testing.assert_array_equal(u1, u2)
        moves.append(np.asarray(u2, np.float64))
    d1, d2 = moves[0], moves[1]
    num = d2 + alpha / m * np.asarray(grads[2])
    sen = s_obs.sensor
    assert float(sen.total_median) == pytest.approx(float(np.median(num / d1)), rel=1e-5)
    assert float(sen.total_ls_num) == pytest.approx(float(num @ d1), rel=1e-5)
    assert float(sen.total_ls_den) == pytest.approx(float(d1 @ d1), rel=1e-5)
    # a staleness beyond the ring gives no reading
    _, s_obs = obs.update(grads[0], s_obs, staleness=9)
    assert np.isnan(float(s_obs.sensor.total_median)) and float(s_obs.sensor.total_ls_den) == 0


def test_observer_finds_yellowfins_step_inside_the_closed_loop_wrapper() -> None:
    tx = closed_loop_yellowfin(curv_window=3, gain=0.02, max_staleness=4)
    state = tx.init(jnp.ones(5))
    assert find_field(state, "step_size") is not None
    obs = observed(tx, workers=2, max_staleness=4, step_size=lambda s: find_field(s, "step_size"))
    s = obs.init(jnp.ones(5))
    for k in range(4):
        _, s = obs.update(jnp.full(5, 0.5 + k), s, jnp.ones(5), staleness=0, value=1.0)
    assert int(s.sensor.count) == 4


def test_bed_validation_and_missing_paths(monkeypatch, tmp_path) -> None:
    with pytest.raises(ValueError, match="dataset"):
        NetBed(dataset="imagenet")
    with pytest.raises(ValueError, match="model"):
        NetBed(model="vit")
    monkeypatch.delenv("MOMLAB_CIFAR_DIR", raising=False)
    assert "MOMLAB_CIFAR_DIR" in missing_data(gpu_bed())
    monkeypatch.setenv("MOMLAB_CIFAR_DIR", str(tmp_path / "nowhere"))
    assert "is not a directory" in missing_data(gpu_bed())
    assert missing_data(NetBed()) == ""
    assert pooled_ls(np.ones((2, 4)), 2 * np.ones((2, 4)), 2).tolist() == [0.5, 0.5]
