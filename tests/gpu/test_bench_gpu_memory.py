"""The per-optimizer memory of benchmarks/bench_gpu.py is per optimizer, not cumulative."""

from __future__ import annotations

import jax
import optax

from benchmarks.bench_gpu import optimizer_memory, tree_bytes
from gpu.train import as_extra_args, init_state, make_step, scan_steps
from tests.gpu._helpers import digits_task, mlp


def _memory(tx: optax.GradientTransformation) -> dict:
    tx = as_extra_args(tx)
    graphdef, state = init_state(mlp(), tx, seed=0)
    task = digits_task()
    compiled = scan_steps(make_step(graphdef, tx, task)).lower(state, task.train_data, 2).compile()
    return optimizer_memory(state, compiled)


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
    compiled = adam["compiled"]
    if compiled is not None and compiled["argument_bytes"] is not None:
        # the donated state appears among the arguments of the compiled scan
        assert compiled["argument_bytes"] >= n + adam["opt_state_bytes"]
        assert again["compiled"]["argument_bytes"] < compiled["argument_bytes"]
