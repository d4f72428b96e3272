"""Resume refuses a checkpoint written by a different run (seed, task, optimizer, ...)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optax
import pytest

from gpu import stale
from gpu.checkpoint import save_checkpoint
from gpu.data import load_digits
from gpu.tasks import classification_task
from gpu.train import CHECKPOINT_NAME, train
from tests.gpu._helpers import digits_task, leaves_equal, mlp

BASE = {"steps": 20, "chunk": 10, "step_budget": 10}


def _start(path: Path, **kwargs) -> None:
    args = {"tx": optax.sgd(0.1, 0.9), "task": digits_task(), "seed": 0, **BASE, **kwargs}
    r = train(mlp(), checkpoint_dir=path, **args)
    assert r.steps_done == 10 and (path / CHECKPOINT_NAME).is_file()


@pytest.mark.parametrize(
    ("change", "component"),
    [
        ({"seed": 1}, "seed"),
        ({"tx": optax.adam(1e-3)}, "optimizer"),
        ({"tx": optax.sgd(0.1)}, "optimizer"),  # no momentum: another state structure
        ({"task": digits_task(batch_size=16)}, "task"),
        ({"staleness": stale.fixed(2)}, "staleness"),
        ({"run_config": {"learning_rate": 0.2}}, "run_config"),
    ],
)
def test_resume_of_a_different_run_is_refused(tmp_path: Path, change: dict, component: str) -> None:
    _start(tmp_path)
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()
    args = {"tx": optax.sgd(0.1, 0.9), "task": digits_task(), "seed": 0, **BASE, **change}
    with pytest.raises(ValueError, match=rf"different run: {component} \(checkpoint"):
        train(mlp(), checkpoint_dir=tmp_path, **args)
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before  # nothing overwritten


def test_another_data_set_with_the_same_name_is_refused(tmp_path: Path) -> None:
    _start(tmp_path)
    ds = load_digits()
    other = type(ds).build(
        ds.name, ds.x_train[::-1], ds.y_train[::-1], ds.x_test, ds.y_test, ds.num_classes
    )
    with pytest.raises(ValueError, match="task"):
        train(
            mlp(),
            optax.sgd(0.1, 0.9),
            classification_task(other, 32),
            checkpoint_dir=tmp_path,
            **BASE,
        )


def test_the_same_run_resumes_and_run_config_is_part_of_it(tmp_path: Path) -> None:
    cfg = {"optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.9}
    _start(tmp_path, run_config=cfg)
    full = train(mlp(), optax.sgd(0.1, 0.9), digits_task(), steps=20, chunk=10)
    rest = train(
        mlp(),
        optax.sgd(0.1, 0.9),
        digits_task(),
        steps=20,
        chunk=10,
        checkpoint_dir=tmp_path,
        run_config=dict(reversed(list(cfg.items()))),  # key order does not matter
    )
    assert rest.steps_done == 20 and leaves_equal(full.state, rest.state)
    np.testing.assert_array_equal(full.metrics["loss"], rest.metrics["loss"])


def test_a_checkpoint_without_fingerprint_is_refused(tmp_path: Path) -> None:
    _start(tmp_path)
    first = train(mlp(), optax.sgd(0.1, 0.9), digits_task(), steps=10, chunk=10)
    save_checkpoint(tmp_path / CHECKPOINT_NAME, first.state)  # same arrays, no fingerprint
    with pytest.raises(ValueError, match="no run fingerprint"):
        train(mlp(), optax.sgd(0.1, 0.9), digits_task(), checkpoint_dir=tmp_path, **BASE)
