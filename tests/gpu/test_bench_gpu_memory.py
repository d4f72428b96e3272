"""The per-optimizer memory of benchmarks/bench_gpu.py is per optimizer, not cumulative."""

from __future__ import annotations

import jax
import optax

from benchmarks.bench_gpu import optimizer_memory, tree_bytes
from gpu.resources import chunk_memory
from gpu.train import as_extra_args, chunk_runner, init_state
from tests.gpu._helpers import digits_task, mlp


def _memory(tx: optax.GradientTransformation) -> dict:
    graphdef, state = init_state(mlp(), as_extra_args(tx), seed=0)
    task = digits_task()
    run = chunk_runner(graphdef, tx, task)
    state, _ = run(state, task.train_data, 2)
    return optimizer_memory(state, chunk_memory(run, state, task.train_data, 2), task.train_data)


def test_state_bytes_are_exact_and_independent_of_order() -> None:
    tree = {"a": jax.numpy.zeros((3, 4), "float32"), "b": jax.numpy.zeros(5, "int8")}
    assert tree_bytes(tree) == 12 * 4 + 5
    n = tree_bytes(init_state(mlp(), as_extra_args(optax.sgd(0.1)), 0)[1].params)
    adam, sgd_m, sgd = (
        _memory(tx) for tx in (optax.adam(1e-3), optax.sgd(0.1, 0.9), optax.sgd(0.1))
    )
    again = _memory(optax.sgd(0.1))  # after the others: a cumulative number would have grown
    assert sgd["opt_state_bytes"] == again["opt_state_bytes"] == 0
    assert sgd_m["opt_state_bytes"] == n  # one momentum buffer
    assert adam["opt_state_bytes"] == 2 * n + 4  # mu, nu and an int32 count
    assert adam["params_bytes"] == sgd["params_bytes"] == n
    data = tree_bytes(digits_task().train_data)
    assert adam["data_bytes"] == data
    compiled = adam["compiled"]
    assert compiled is not None
    # the donated state and the data set are arguments of the compiled chunk
    assert compiled["argument_bytes"] >= n + adam["opt_state_bytes"] + data
    assert adam["model_footprint_bytes"] == compiled["footprint_bytes"] - data
    assert again["compiled"]["argument_bytes"] < compiled["argument_bytes"]
    assert again["model_footprint_bytes"] < adam["model_footprint_bytes"]
