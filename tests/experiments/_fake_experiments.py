"""Tiny fake experiments for the framework tests (no theory, no simulators, milliseconds each).

The experiments are plain :class:`Experiment` objects; they enter the registry only when this
module is imported through ``MOMLAB_EXTRA_EXPERIMENTS`` (the subprocess tests) or when a test
registers them.
``fake-slow`` sleeps ``MOMLAB_FAKE_SLEEP`` seconds (default 0) after touching the file named by
``MOMLAB_FAKE_MARKER``, so a test can kill a ``momlab reproduce`` while it runs.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from experiments.framework import Experiment, Record, figure, register, style, verdict
from experiments.registry import EXTRA_ENV


@dataclasses.dataclass(frozen=True)
class FakeConfig:
    n: int = 64
    scale: float = 1.0

    @classmethod
    def quick(cls) -> FakeConfig:
        return cls(n=16)


def _run(cfg: FakeConfig, seed: int) -> Record:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=cfg.n) * cfg.scale
    mean = float(np.mean(x))
    tol = 5.0 * cfg.scale / np.sqrt(cfg.n)  # five standard errors of the sample mean
    return Record(
        claim="The sample mean of standard normals is near zero.",
        prediction={"mean": 0.0},
        measurement={"mean": mean, "nan": float("nan"), "first": np.float32(x[0])},
        tolerance={"abs": tol},
        verdict=verdict(abs(mean) <= tol),
        summary=f"predicted 0, measured {mean:.3g}",
        arrays={"x": x, "idx": np.arange(cfg.n)},
    )


def _plot(record: Record):
    fig, ax = figure()
    ax.plot(record.arrays["idx"], record.arrays["x"], **style("measured"))
    ax.axhline(0.0, **style("theory"))
    ax.set_title(record.name)
    return fig


def _run_slow(cfg: FakeConfig, seed: int) -> Record:
    marker = os.environ.get("MOMLAB_FAKE_MARKER")
    seconds = float(os.environ.get("MOMLAB_FAKE_SLEEP", "0"))
    if os.environ.get("MOMLAB_FAKE_JAX"):  # busy in jitted JAX code, as a real experiment is
        import jax
        import jax.numpy as jnp

        step = jax.jit(lambda a: jnp.tanh(a @ a.T) / a.shape[0])
        a = jnp.ones((256, 256))
        a = step(a).block_until_ready()
        if marker:
            Path(marker).touch()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            a = step(a + 1.0).block_until_ready()
        return _run(cfg, seed)
    if marker:
        Path(marker).touch()
    time.sleep(seconds)
    return _run(cfg, seed)


def _run_broken(cfg: FakeConfig, seed: int) -> Record:
    raise RuntimeError("this fake experiment always raises")


FAST = Experiment(
    name="fake-fast",
    title="fast fake",
    claim="A fast fake claim.",
    config=FakeConfig,
    run=_run,
    plot=_plot,
    order=1,
)
SLOW = Experiment(
    name="fake-slow",
    title="slow fake",
    claim="A slow fake claim.",
    config=FakeConfig,
    run=_run_slow,
    plot=_plot,
    order=2,
)
BROKEN = Experiment(
    name="fake-broken",
    title="broken fake",
    claim="A fake claim whose run raises.",
    config=FakeConfig,
    run=_run_broken,
    plot=_plot,
    order=3,
)
GPU = Experiment(
    name="fake-gpu",
    title="gpu fake",
    claim="A fake claim meant for a GPU.",
    config=FakeConfig,
    run=_run,
    plot=_plot,
    device="gpu",
    order=4,
)
ALL = (FAST, SLOW, BROKEN, GPU)

if __name__ in os.environ.get(EXTRA_ENV, "").split(","):
    register(FAST)
    register(SLOW)
