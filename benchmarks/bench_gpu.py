"""Step time of the real networks for each optimizer, relative to Adam in the same run.

Run as ``python -m benchmarks.bench_gpu [--quick]``. Two models, each trained through the same
functional core as ``gpu.train`` (one jitted ``lax.scan`` of ``steps`` steps per call, state
donated, the loss passed as ``value=``):

- ResNet (``gpu.models.ResNet``) on 32x32x3 inputs with 10 classes (synthetic, fixed-seed data of
  CIFAR's shape, so the benchmark needs no data set): ResNet-20 width 16, batch 128; quick mode
  ResNet-8 width 8, batch 32.
- Character LSTM (``gpu.models.CharLSTM``) on the embedded text snapshot: hidden 256, sequences of
  64, batch 32; quick mode hidden 64, sequences of 32, batch 16.

Optimizers: ``optax.adam`` (the reference), ``optax.sgd`` with momentum 0.9, and the project's
``yellowfin``, ``momo`` and ``momo_adam`` (imported lazily; skipped with a note when missing).
Each timing is the best over ``repeats`` interleaved rounds (every optimizer once per round, so a
slow period of a shared machine hits all alike) after a compile/warm-up call; per-step time is that
divided by ``steps``. Target: YellowFin and MoMo steps within 1.15x of Adam.

Memory, per optimizer (all optimizers live in one process, so the process peak cannot separate
them):

- ``opt_state_bytes``: the exact size of the optimizer state (sum of its leaves' bytes), next to
  ``params_bytes``;
- ``compiled``: XLA's memory analysis of the compiled ``steps``-step scan on the present backend
  (``Compiled.memory_analysis()``): argument, output, temporary and aliased (donated) bytes and
  XLA's ``peak_memory_in_bytes`` estimate of the program (None where the backend gives none).

Once per model, after all its optimizers ran, ``process_peak`` records the process's peak so far:
``device.memory_stats()["peak_bytes_in_use"]`` on a GPU, the maximum resident set
(``getrusage``) on the CPU. It is cumulative over the process (every optimizer and model before
it), not a per-optimizer number.

The machine's load is recorded as ``load_average`` (``os.getloadavg()``: 1, 5 and 15 minute
averages) at the ``start`` of the run, which shows the other work on the machine, and at its
``end``, which also counts the benchmark's own threads; with ``cpu_count`` it tells how shared the
CPU was. The JSON is written atomically to ``benchmarks/results/gpu.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.metadata
import json
import os
import platform
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax
from flax import nnx

from gpu import (
    as_extra_args,
    classification_task,
    init_state,
    language_model_task,
    make_step,
    scan_steps,
)
from gpu.data import Dataset, load_text
from gpu.models import CharLSTM, ResNet, init_model

RESULTS = Path(__file__).resolve().parent / "results" / "gpu.json"
TARGET = 1.15


def optimizer_factories() -> tuple[
    dict[str, Callable[[], optax.GradientTransformation]], list[str]
]:
    """Adam, SGD+momentum and the project's optimizers that can be imported."""
    facts: dict[str, Callable[[], optax.GradientTransformation]] = {
        "adam": lambda: optax.adam(1e-3),
        "sgd_momentum": lambda: optax.sgd(0.05, momentum=0.9),
    }
    notes = []
    ours = {"yellowfin": (), "momo": (1.0,), "momo_adam": (1e-2,)}
    try:
        mod = importlib.import_module("optimizers")
    except ImportError as err:  # pragma: no cover
        return facts, [f"optimizers not importable: {err}"]
    for name, args in ours.items():
        fn = getattr(mod, name, None)
        if fn is None:
            notes.append(f"optimizers.{name} missing: skipped")
        else:
            facts[name] = lambda fn=fn, args=args: fn(*args)
    return facts, notes


def synthetic_images(n: int, seed: int = 0) -> Dataset:
    """Random 32x32x3 images with labels (CIFAR's shape; timing does not depend on content)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, n)
    return Dataset.build("synthetic32", x, y, x[:8], y[:8], 10)


def process_peak() -> dict[str, Any]:
    """The process's peak memory so far (cumulative; see the module docstring)."""
    dev = jax.devices()[0]
    stats = dev.memory_stats() if dev.platform == "gpu" else None
    if stats and "peak_bytes_in_use" in stats:
        return {"kind": "device_peak_bytes_in_use", "bytes": int(stats["peak_bytes_in_use"])}
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"kind": "host_max_rss_bytes", "bytes": int(rss_kb) * 1024}


def tree_bytes(tree: Any) -> int:
    """Exact bytes held by the array leaves of ``tree``."""
    return int(
        sum(np.dtype(x.dtype).itemsize * int(np.prod(x.shape)) for x in jax.tree.leaves(tree))
    )


def compiled_memory(compiled: Any) -> dict[str, int | None] | None:
    """XLA's memory analysis of a compiled program, or None where the backend has none."""
    try:
        stats = compiled.memory_analysis()
    except (AttributeError, NotImplementedError, RuntimeError):
        return None
    if stats is None:
        return None
    fields = {
        "argument_bytes": "argument_size_in_bytes",
        "output_bytes": "output_size_in_bytes",
        "temp_bytes": "temp_size_in_bytes",
        "alias_bytes": "alias_size_in_bytes",
        "peak_estimate_bytes": "peak_memory_in_bytes",
    }
    return {
        k: (None if getattr(stats, a, None) is None else int(getattr(stats, a)))
        for k, a in fields.items()
    }


def optimizer_memory(state: Any, compiled: Any) -> dict[str, Any]:
    """Per-optimizer memory: exact state sizes and the compiled program's analysis."""
    return {
        "opt_state_bytes": tree_bytes(state.opt_state),
        "params_bytes": tree_bytes(state.params),
        "compiled": compiled_memory(compiled),
    }


def bench_model(name: str, make_model: Callable[[], nnx.Module], task, steps: int, repeats: int):
    facts, notes = optimizer_factories()
    runners: dict[str, Callable[[], Any]] = {}
    memory: dict[str, Any] = {}
    for opt_name, make_tx in facts.items():
        tx = as_extra_args(make_tx())
        graphdef, state = init_state(make_model(), tx, seed=0)
        # compiled ahead of time: the same program serves the memory analysis and the timing
        compiled = scan_steps(make_step(graphdef, tx, task)).lower(state, task.train_data, steps)
        compiled = compiled.compile()
        memory[opt_name] = optimizer_memory(state, compiled)
        box = {"state": state}

        def call(compiled=compiled, box=box):
            box["state"], metrics = compiled(box["state"], task.train_data)
            return metrics["loss"]

        jax.block_until_ready(call())  # warm-up
        runners[opt_name] = call
    best = dict.fromkeys(runners, float("inf"))
    for _ in range(repeats):
        for opt_name, call in runners.items():
            t0 = time.perf_counter()
            jax.block_until_ready(call())
            best[opt_name] = min(best[opt_name], time.perf_counter() - t0)
    per_step = {k: v / steps for k, v in best.items()}
    rel = {k: v / per_step["adam"] for k, v in per_step.items()}
    return {
        "model": name,
        "steps_per_call": steps,
        "repeats": repeats,
        "step_time_s": per_step,
        "relative_to_adam": rel,
        "within_target": {
            k: rel[k] <= TARGET for k in rel if k in ("yellowfin", "momo", "momo_adam")
        },
        "memory": memory,
        "process_peak": process_peak(),
        "notes": notes,
    }


def load_average() -> list[float] | None:
    """``os.getloadavg()`` (1, 5 and 15 minute averages), or None where the OS has none."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def write_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small models, few steps (CPU)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        res_cfg, res_batch, lstm_cfg, lstm_batch, steps, repeats = (
            (8, 8),
            32,
            (32, 64),
            (16, 32),
            10,
            5,
        )
    else:
        res_cfg, res_batch, lstm_cfg, lstm_batch, steps, repeats = (
            (20, 16),
            128,
            (64, 256),
            (32, 64),
            50,
            5,
        )
    t0 = time.perf_counter()
    load_start = load_average()
    images = classification_task(synthetic_images(2048), res_batch)
    text = load_text()
    lm_task = language_model_task(text, batch_size=lstm_batch[0], seq_len=lstm_batch[1])
    results = [
        bench_model(
            f"resnet{res_cfg[0]}_w{res_cfg[1]}_b{res_batch}",
            lambda: init_model(lambda r: ResNet(res_cfg[0], res_cfg[1], 10, 3, rngs=r), 0),
            images,
            steps,
            repeats,
        ),
        bench_model(
            f"char_lstm_h{lstm_cfg[1]}_t{lstm_batch[1]}_b{lstm_batch[0]}",
            lambda: init_model(
                lambda r: CharLSTM(text.vocab_size, lstm_cfg[0], lstm_cfg[1], rngs=r), 0
            ),
            lm_task,
            steps,
            repeats,
        ),
    ]
    dev = jax.devices()[0]
    payload = {
        "benchmark": "gpu",
        "quick": args.quick,
        "device": {"platform": dev.platform, "kind": dev.device_kind, "count": jax.device_count()},
        "target_relative_to_adam": TARGET,
        "results": results,
        "versions": {p: importlib.metadata.version(p) for p in ("jax", "optax", "flax")},
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average": {"start": load_start, "end": load_average()},
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "wall_time_s": time.perf_counter() - t0,
    }
    write_atomic(args.out, payload)
    for r in results:
        rel = ", ".join(f"{k} {v:.2f}x" for k, v in r["relative_to_adam"].items())
        print(f"{r['model']}: adam {r['step_time_s']['adam'] * 1e3:.2f} ms/step; {rel}")
        mem = ", ".join(f"{k} {v['opt_state_bytes'] / 1e6:.2f} MB" for k, v in r["memory"].items())
        print(f"  optimizer state: {mem}; process peak {r['process_peak']['bytes'] / 1e9:.2f} GB")
    print(f"load average (1, 5, 15 min): start {load_start}, end {payload['load_average']['end']}")
    return payload


if __name__ == "__main__":
    main()
