"""Speed and memory of the asynchronous network stages (total-momentum, closed-loop)."""

from __future__ import annotations

import math

import jax
import numpy as np
import optax
import pytest

from experiments.library._async_net_beds import NetBed, arm_resources, train_seeds


@pytest.fixture(scope="module")
def trained() -> dict[str, np.ndarray]:
    bed = NetBed(hidden=8, batch=16, n_train=256)
    return train_seeds(
        lambda: optax.sgd(0.05, 0.9), bed, seeds=[0, 1], steps=30, workers=4, chunk=10
    )


def test_runs_carry_steps_per_second_and_compiled_peak_memory(trained) -> None:
    assert trained["loss"].shape == (2, 30)
    # Two seeds x three chunks: the first chunk compiles, the five others are timed.
    sps = float(trained["steps_per_s"])
    assert math.isfinite(sps) and sps > 0
    # On the CPU the peak is XLA's memory analysis of the chunk program: at least the state
    # (parameters, momentum, 4-worker staleness history: > 3 copies of 650 float32 parameters).
    peak = float(trained["peak_bytes"])
    params = 64 * 8 + 8 + 8 * 10 + 10
    assert peak >= 3 * 4 * params
    res = arm_resources({"a": trained})["a"]
    assert res["steps_per_s"] == sps and res["peak_bytes"] == int(peak)
    assert res["platform"] == jax.devices()[0].platform
    assert res["memory_source"] in ("compiled_memory_analysis", "device_peak_bytes_in_use")


def test_a_single_chunk_is_not_timed_and_reads_as_unmeasured() -> None:
    bed = NetBed(hidden=4, batch=8, n_train=64)
    out = train_seeds(lambda: optax.sgd(0.05), bed, seeds=[3], steps=5, workers=1, chunk=10)
    assert math.isnan(float(out["steps_per_s"]))
    res = arm_resources({"only": out, "old": {"loss": out["loss"]}})
    assert res["only"]["steps_per_s"] is None
    assert res["old"] == {
        "steps_per_s": None,
        "peak_bytes": None,
        "memory_source": "unavailable",
        "platform": jax.devices()[0].platform,
    }
