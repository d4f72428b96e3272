"""Peak memory and steps/s of a run (gpu.resources), the compile cache of gpu.train, and the
device-resident data set of the step."""

from __future__ import annotations

import dataclasses
import json
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gpu import resources
from gpu.train import chunk_runner, init_state, train
from tests.gpu._helpers import digits_task, mlp


def _add_run():
    """A jitted chunk runner of the ``run(state, data, n)`` form, state donated."""
    return jax.jit(
        lambda s, d, n: (s + n * d[: s.shape[0]], {"x": s.sum()}),
        static_argnums=2,
        donate_argnums=0,
    )


def test_rate_excludes_the_first_chunk_and_chunks_that_compile() -> None:
    run = _add_run()
    meter = resources.ResourceMeter()
    state, data = jnp.zeros(1000, jnp.float32), jnp.ones(5000, jnp.float32)
    for n in (5, 5, 3, 3):  # 3 is a new length: its first chunk compiles
        state, _ = meter.run_chunk(run, state, data, n)
    res = meter.finish()
    assert res.chunks == 4 and res.timed_steps == 5 + 3 and res.untimed_steps == 5 + 3
    assert res.steps_per_s == pytest.approx(8 / res.timed_s) and res.timed_s > 0
    np.testing.assert_array_equal(np.asarray(state), 16.0)
    compiled = res.compiled
    assert compiled is not None
    # exact argument bytes: the state and the data set; the donated state aliases its output
    assert compiled["argument_bytes"] == 4 * (1000 + 5000)
    assert compiled["alias_bytes"] == 4 * 1000
    total = compiled["argument_bytes"] + compiled["output_bytes"] - 4000 + compiled["temp_bytes"]
    assert compiled["footprint_bytes"] == total
    if jax.devices()[0].platform == "cpu":
        assert res.memory_source == "compiled_memory_analysis"
        assert res.peak_bytes == compiled["footprint_bytes"] and res.device_peak_bytes is None
    else:
        assert res.memory_source == "device_peak_bytes_in_use"
        assert res.peak_bytes >= 4 * 6000
    assert res.process_peak_rss_bytes > 0


def test_a_single_chunk_has_no_rate() -> None:
    meter = resources.ResourceMeter()
    meter.run_chunk(_add_run(), jnp.zeros(4), jnp.ones(4), 2)
    res = meter.finish()
    assert res.steps_per_s is None and res.timed_steps == 0 and res.untimed_steps == 2


def test_the_compile_counters_see_a_new_program() -> None:
    traces, compiles = resources.trace_count(), resources.compile_count()
    jax.jit(lambda x: x * 3.0 + 11.0)(jnp.arange(7.0)).block_until_ready()
    assert resources.trace_count() > traces and resources.compile_count() > compiles


def test_train_records_resources_and_collect_gathers_them() -> None:
    with resources.collect() as runs:
        res = train(mlp(), optax.sgd(0.1, 0.9), digits_task(), steps=30, chunk=10)
    assert runs == [res.resources]
    r = res.resources
    assert r.chunks == 3 and r.timed_steps + r.untimed_steps == 30 and r.steps_per_s > 0
    assert r.peak_bytes is not None and r.peak_bytes > 0
    assert json.loads(json.dumps(res.info["resources"])) == r.as_dict()


def test_a_second_run_of_the_same_shapes_does_not_trace_again() -> None:
    base = digits_task()
    traced = []

    def sample(data, key, step):  # runs only while JAX traces the step
        traced.append(1)
        return base.sample(data, key, step)

    task = dataclasses.replace(base, sample=sample)
    tx = optax.adam(1e-3)
    first = train(mlp(), tx, task, steps=25, chunk=10)  # chunk lengths 10 and 5
    n = len(traced)
    assert n >= 2
    before = resources.trace_count()
    second = train(mlp(seed=1), tx, task, steps=25, chunk=10)  # other values, same shapes
    assert len(traced) == n and resources.trace_count() == before
    assert not np.array_equal(first.metrics["loss"], second.metrics["loss"])
    assert second.resources.untimed_steps == 10  # only the first chunk: nothing compiled
    train(mlp(), optax.adam(1e-3), task, steps=10, chunk=10)  # another optimizer object
    assert len(traced) > n
    assert chunk_runner(first.graphdef, tx, task) is chunk_runner(second.graphdef, tx, task)


def test_the_step_reads_the_data_set_on_the_device_without_transfers() -> None:
    task = digits_task()
    x, y = task.train_data
    assert isinstance(x, jax.Array) and isinstance(y, jax.Array)
    assert x.devices() == {jax.devices()[0]}
    tx = optax.sgd(0.1)
    graphdef, state = init_state(mlp(), tx, 0)
    run = chunk_runner(graphdef, tx, task)
    state, _ = run(state, task.train_data, 4)  # compiled outside the guard
    with jax.transfer_guard("disallow"):
        state, metrics = run(state, task.train_data, 4)
    assert int(state.step) == 8 and metrics["loss"].shape == (4,)
    # the guard does catch a data set that lives on the host
    host = (np.asarray(x), np.asarray(y))
    with pytest.raises(Exception, match=r"[Dd]isallowed"), jax.transfer_guard("disallow"):
        run(state, host, 4)
    # the data set is an argument of the compiled chunk, not a constant baked into it
    compiled = run.lower(state, task.train_data, 4).compile()
    data_bytes = x.nbytes + y.nbytes
    assert resources.compiled_memory(compiled)["argument_bytes"] >= data_bytes


class _Gap(NamedTuple):
    gap: jax.Array  # largest |loss_fn(params) - value| seen; -1 when no loss_fn came


def _loss_fn_probe() -> optax.GradientTransformationExtraArgs:
    def update(grads, state, params=None, *, value=None, loss_fn=None, **_):
        gap = -jnp.ones(()) if loss_fn is None else jnp.abs(loss_fn(params) - value)
        return jax.tree.map(lambda g: -0.1 * g, grads), _Gap(jnp.maximum(state.gap, gap))

    return optax.GradientTransformationExtraArgs(lambda p: _Gap(-2 * jnp.ones(())), update)


def test_pass_loss_fn_hands_the_minibatch_loss_to_the_optimizer() -> None:
    task = digits_task()
    on = train(mlp(), _loss_fn_probe(), task, steps=6, chunk=3, pass_loss_fn=True)
    # the same float32 forward pass at the same parameters and batch as the step's loss
    loss = float(np.max(on.metrics["loss"]))
    assert 0.0 <= float(on.state.opt_state.gap) <= 1e-6 * loss
    off = train(mlp(), _loss_fn_probe(), task, steps=3, chunk=3)
    assert float(off.state.opt_state.gap) == -1.0


def test_measure_times_calls_of_another_form() -> None:
    fn = jax.jit(lambda w, v, mu: (w - 0.1 * v, mu * v + w))
    meter = resources.ResourceMeter()
    w, v = jnp.ones(256, jnp.float32), jnp.zeros(256, jnp.float32)
    for _ in range(3):
        w, v = meter.measure(fn, w, v, 0.9, steps=7)
    res = meter.finish()
    assert (res.chunks, res.timed_steps, res.untimed_steps) == (3, 14, 7)
    assert res.compiled["argument_bytes"] == 2 * 4 * 256 + 4  # w, v and the float32 mu
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        meter.measure(fn, w, v, 0.9, steps=0)
    donated = jax.jit(lambda w: w + 1.0, donate_argnums=0)
    other = resources.ResourceMeter()
    other.measure(donated, jnp.ones(8), steps=1)  # its argument is gone: no analysis, no error
    assert other.finish().compiled is None
