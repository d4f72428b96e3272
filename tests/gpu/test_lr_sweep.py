"""Vmapped learning-rate sweeps agree with separate runs; MoMo's robustness shows up."""

from __future__ import annotations

import numpy as np
import optax
import pytest

from gpu.lr_sweep import sweep_learning_rates
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


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"learning_rates": []}, "learning_rates"),
        ({"learning_rates": [0.1, -1.0]}, "learning_rates"),
        ({"max_parallel": 0}, "max_parallel"),
        ({"steps": 0}, "steps"),
        ({"tail": 50}, "tail"),
    ],
)
def test_sweep_validation(kwargs: dict, match: str) -> None:
    args = {"learning_rates": [0.1], "steps": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        sweep_learning_rates(mlp(), optax.sgd, task=digits_task(), **args)
