"""Vmapped learning-rate sweeps agree with separate runs; MoMo's robustness shows up."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gpu.lr_sweep import divergence_steps, sweep_learning_rates
from gpu.train import train
from tests.gpu._helpers import digits_task, mlp


def test_sweep_equals_separate_runs_in_groups() -> None:
    lrs = [0.03, 0.3, 3.0]
    task = digits_task()
    sweep = sweep_learning_rates(mlp(), optax.sgd, lrs, task, steps=40, chunk=40, max_parallel=2)
    assert sweep.losses.shape == (3, 40) and sweep.test_accuracy.shape == (3,)
    single = train(mlp(), optax.sgd(lrs[1]), task, steps=40, chunk=40)
    # same batches and initial point; vmap changes only the float32 fusion order (a few ulps/step)
    np.testing.assert_allclose(sweep.losses[1], single.metrics["loss"], rtol=1e-4)
    assert sweep.test_accuracy[1] == pytest.approx(single.evals[-1]["test_accuracy"], abs=1e-6)


def test_momo_is_robust_where_sgd_fails() -> None:
    """At a learning rate 100x too large SGD diverges or stalls, MoMo truncates its step."""
    lrs = [0.1, 10.0]
    task = digits_task()
    sgd = sweep_learning_rates(mlp(), optax.sgd, lrs, task, steps=60, chunk=60)
    momo = sweep_learning_rates(mlp(), optax.contrib.momo, lrs, task, steps=60, chunk=60)
    assert momo.test_accuracy[1] > 0.8
    assert not sgd.test_accuracy[1] > 0.5  # NaN (diverged) or poor
    assert not momo.diverged.any() and np.all(momo.diverged_at == -1)


def _nan_from(step: int):
    """SGD whose update of step ``step`` (0-based) is NaN: ``w_{step + 1}`` is the first bad one."""

    def make(learning_rate):
        poison = optax.scale_by_schedule(lambda c: jnp.where(c >= step, jnp.nan, 1.0))
        return optax.chain(optax.sgd(learning_rate), poison)

    return make


def test_divergence_flag_and_step_match_the_simulators_meaning() -> None:
    task = digits_task()
    # NaN update at step 5: losses 0..5 finite, loss 6 (taken at w_6) NaN -> diverged at 6
    r = sweep_learning_rates(mlp(), _nan_from(5), [0.05, 0.1], task, steps=12, chunk=12, tail=2)
    assert r.diverged.tolist() == [True, True] and r.diverged_at.tolist() == [6, 6]
    assert np.all(np.isfinite(r.losses[:, :6])) and np.all(np.isnan(r.losses[:, 6:]))
    assert np.all(np.isnan(r.test_accuracy))
    # the last update only: every loss finite, the final parameters not -> diverged at `steps`
    r = sweep_learning_rates(mlp(), _nan_from(11), [0.05], task, steps=12, chunk=12, tail=2)
    assert np.all(np.isfinite(r.losses)) and r.diverged_at.tolist() == [12]
    # a stable rate next to an exploding one: only the latter is flagged, at its first huge loss
    r = sweep_learning_rates(mlp(), optax.sgd, [0.1, 1e4], task, steps=30, chunk=30, blowup=1e3)
    assert r.diverged.tolist() == [False, True] and r.diverged_at[0] == -1
    t = int(r.diverged_at[1])
    limit = 1e3 * max(r.losses[1, 0], 1.0)
    assert t >= 1 and np.all(r.losses[1, :t] <= limit)
    assert not (np.isfinite(r.losses[1, t]) and r.losses[1, t] <= limit)
    assert np.isfinite(r.test_accuracy[0]) and np.isnan(r.test_accuracy[1])


def test_divergence_steps_on_hand_made_losses() -> None:
    losses = np.array([[2.0, 3.0, 4.0], [2.0, 50.0, np.nan], [np.nan, 1.0, 1.0], [0.5, 9.0, 11.0]])
    got = divergence_steps(losses, np.array([True, True, True, False]), 10.0)
    # limits 10*max(loss_0, 1): 20, 20, (nan start -> 10), 10
    assert got.tolist() == [-1, 1, 0, 2]
    assert divergence_steps(losses[:1], np.array([False]), 10.0).tolist() == [3]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"learning_rates": []}, "learning_rates"),
        ({"learning_rates": [0.1, -1.0]}, "learning_rates"),
        ({"max_parallel": 0}, "max_parallel"),
        ({"steps": 0}, "steps"),
        ({"tail": 50}, "tail"),
        ({"blowup": 1.0}, "blowup"),
    ],
)
def test_sweep_validation(kwargs: dict, match: str) -> None:
    args = {"learning_rates": [0.1], "steps": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        sweep_learning_rates(mlp(), optax.sgd, task=digits_task(), **args)
