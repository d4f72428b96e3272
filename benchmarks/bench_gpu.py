"""Steps per second and memory of real networks per optimizer, relative to Adam in the same run.

Run as ``python -m benchmarks.bench_gpu [--quick] [--rounds R]``. Two models, each trained through
``gpu.train``'s compiled chunk (:func:`gpu.chunk_runner`: one jitted ``lax.scan`` of ``steps``
steps per call, state donated, batches drawn inside the step from the device-resident data set,
the loss passed as ``value=``):

- ResNet (``gpu.models.ResNet``) on 32x32x3 inputs with 10 classes (synthetic, fixed-seed data of
  CIFAR's shape, so the benchmark needs no data set): ResNet-20 width 16, batch 128; quick mode
  ResNet-8 width 8, batch 32.
- Character LSTM (``gpu.models.CharLSTM``) on the embedded text snapshot: hidden 256, sequences of
  64, batch 32; quick mode hidden 64, sequences of 32, batch 16.

Optimizers: ``optax.adam`` (the reference), ``optax.sgd`` with momentum 0.9, the project's
``yellowfin``, ``momo``, ``momo_adam`` and ``yellowfin(curvature="hessian", curvature_every=10,
lanczos_steps=10)`` (its step receives ``loss_fn=``, the minibatch loss). One that cannot be built
or run is recorded as missing with the reason.

**Speed** (as ``bench_optimizers``): after a compile call and one warm-up round, every optimizer
runs one ``steps``-step chunk per round, blocked on at the end only, in an order rotated every
round (a slow period of a shared machine hits all alike). ``steps_per_s`` is ``steps`` over the
median chunk time; ``steps_per_s_ratio`` is the median over rounds of the per-round ratio
``adam time / optimizer time`` (paired: both timed seconds apart), so 0.8 means 20% fewer steps
per second than Adam. ``steps`` is a multiple of 10, so every chunk holds the same share of
Lanczos runs.

**Memory**, per optimizer, from XLA's analysis of its compiled chunk
(:func:`gpu.resources.compiled_memory`: ``footprint = argument + output - alias + temp`` bytes,
what the program holds while it runs), on every backend, so every optimizer is measured the same
way: ``peak_memory_ratio`` is the footprint over Adam's; ``model_memory_ratio`` leaves out the
data set, which the footprint includes (it is an argument of the chunk) and which dominates it for
small models. ``opt_state_bytes`` is the exact size of the optimizer state. The allocator's peak
(``device.memory_stats()``, GPU) cannot be separated per optimizer in one process: it is recorded
after each optimizer's warm-up as ``device_peak_bytes_so_far`` (cumulative), with the process's
peak resident set at the end (``process_peak_rss_bytes``).

The machine's load (``os.getloadavg()``) is recorded at the start and the end. Results are merged
into ``benchmarks/results/gpu.json`` under the platform's key (cpu/gpu), written atomically.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax
from flax import nnx

from benchmarks._results import merge_run
from gpu import (
    chunk_memory,
    chunk_runner,
    classification_task,
    device_peak_bytes,
    init_state,
    language_model_task,
    process_peak_rss_bytes,
)
from gpu.data import Dataset, load_text
from gpu.models import CharLSTM, ResNet, init_model

RESULTS = Path(__file__).resolve().parent / "results" / "gpu.json"
REFERENCE = "adam"
HESSIAN = "yellowfin_hessian_k10_m10"


def optimizer_factories() -> dict[str, tuple[Callable[[], optax.GradientTransformation], bool]]:
    """``{name: (factory, pass_loss_fn)}``; the project's optimizers are imported lazily."""

    def ours(attr: str, **kwargs: Any) -> Callable[[], optax.GradientTransformation]:
        def build() -> optax.GradientTransformation:
            import optimizers

            return getattr(optimizers, attr)(**kwargs)

        return build

    return {
        REFERENCE: (lambda: optax.adam(1e-3), False),
        "sgd_momentum": (lambda: optax.sgd(0.05, momentum=0.9), False),
        "yellowfin": (ours("yellowfin"), False),
        "momo": (ours("momo", learning_rate=1.0), False),
        "momo_adam": (ours("momo_adam", learning_rate=1e-2), False),
        HESSIAN: (
            ours("yellowfin", curvature="hessian", curvature_every=10, lanczos_steps=10),
            True,
        ),
    }


def synthetic_images(n: int, seed: int = 0) -> Dataset:
    """Random 32x32x3 images with labels (CIFAR's shape; timing does not depend on content)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, n)
    return Dataset.build("synthetic32", x, y, x[:8], y[:8], 10)


def tree_bytes(tree: Any) -> int:
    """Exact bytes held by the array leaves of ``tree``."""
    return int(
        sum(np.dtype(x.dtype).itemsize * int(np.prod(x.shape)) for x in jax.tree.leaves(tree))
    )


def optimizer_memory(state: Any, memory: dict[str, int] | None, data: Any) -> dict[str, Any]:
    """Exact state sizes, the compiled chunk's analysis and its footprint without the data set."""
    data_bytes = tree_bytes(data)
    return {
        "opt_state_bytes": tree_bytes(state.opt_state),
        "params_bytes": tree_bytes(state.params),
        "data_bytes": data_bytes,
        "compiled": memory,
        "model_footprint_bytes": None if memory is None else memory["footprint_bytes"] - data_bytes,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def bench_model(
    name: str, make_model: Callable[[], nnx.Module], task: Any, steps: int, rounds: int
) -> dict[str, Any]:
    """Time and measure every optimizer on one model (see the module docstring)."""
    live: dict[str, list[Any]] = {}
    out: dict[str, dict[str, Any]] = {}
    model = make_model()  # one initialisation (init_state copies its arrays)
    for opt_name, (make_tx, pass_loss_fn) in optimizer_factories().items():
        t0 = time.perf_counter()
        try:
            tx = make_tx()
            graphdef, state = init_state(model, optax.with_extra_args_support(tx), seed=0)
            run = chunk_runner(graphdef, tx, task, pass_loss_fn=pass_loss_fn)
            state, metrics = run(state, task.train_data, steps)  # compile
            jax.block_until_ready(metrics)
            memory = chunk_memory(run, state, task.train_data, steps)
            live[opt_name] = [run, state]
            out[opt_name] = {
                "memory": optimizer_memory(state, memory, task.train_data),
                "device_peak_bytes_so_far": device_peak_bytes(),
                "loss_finite": bool(np.all(np.isfinite(np.asarray(metrics["loss"])))),
            }
            out[opt_name]["compile_s"] = time.perf_counter() - t0
        except Exception as err:  # recorded, not hidden: the JSON says why it is missing
            out[opt_name] = {"missing": f"{type(err).__name__}: {err}"[:300]}
        print(f"{name} {opt_name}: ready after {time.perf_counter() - t0:.1f} s", flush=True)
    names = list(live)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds + 1):  # round 0 is the warm-up
        for opt_name in names[r % len(names) :] + names[: r % len(names)]:
            slot = live[opt_name]
            t0 = time.perf_counter()
            slot[1], metrics = slot[0](slot[1], task.train_data, steps)
            jax.block_until_ready((slot[1], metrics))
            if r > 0:
                times[opt_name].append(time.perf_counter() - t0)
    ref = out.get(REFERENCE, {})
    for opt_name, ts in times.items():
        entry = out[opt_name]
        mem, ref_mem = entry["memory"], ref.get("memory", {})
        entry["median_step_ms"] = 1e3 * statistics.median(ts) / steps
        entry["steps_per_s"] = steps / statistics.median(ts)
        if REFERENCE in times:
            paired = [a / t for a, t in zip(times[REFERENCE], ts, strict=True)]
            entry["steps_per_s_ratio"] = statistics.median(paired)
        foot = (mem["compiled"] or {}).get("footprint_bytes")
        ref_foot = (ref_mem.get("compiled") or {}).get("footprint_bytes")
        entry["peak_memory_ratio"] = _ratio(foot, ref_foot)
        entry["model_memory_ratio"] = _ratio(
            mem["model_footprint_bytes"], ref_mem.get("model_footprint_bytes")
        )
        entry["opt_state_ratio"] = _ratio(mem["opt_state_bytes"], ref_mem.get("opt_state_bytes"))
    return {
        "model": name,
        "steps_per_round": steps,
        "rounds": rounds,
        "optimizers": out,
        "process_peak_rss_bytes": process_peak_rss_bytes(),
    }


def load_average() -> list[float] | None:
    """``os.getloadavg()`` (1, 5 and 15 minute averages), or None where the OS has none."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def table(results: list[dict[str, Any]]) -> str:
    """The printed table: per model and optimizer, speed and memory relative to Adam."""

    def fmt(v: float | None, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    lines = [
        "| model | optimizer | ms/step | steps/s | steps/s vs Adam | peak memory vs Adam "
        "| without data vs Adam | optimizer state |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        for opt, e in res["optimizers"].items():
            if "missing" in e:
                lines.append(f"| {res['model']} | {opt} | missing: {e['missing'][:60]} |||||| ")
                continue
            lines.append(
                f"| {res['model']} | {opt} | {e['median_step_ms']:.4g} | {e['steps_per_s']:.3g} "
                f"| {fmt(e.get('steps_per_s_ratio'), '.2f')} "
                f"| {fmt(e['peak_memory_ratio'], '.3f')} | {fmt(e['model_memory_ratio'], '.2f')} "
                f"| {e['memory']['opt_state_bytes'] / 1e6:.2f} MB |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small models, few steps (CPU)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per model")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (5 if args.quick else 11)
    if rounds < 1:
        raise SystemExit("--rounds must be >= 1")
    if args.quick:
        res_cfg, res_batch, lstm_cfg, lstm_batch, steps = (8, 8), 32, (32, 64), (16, 32), 10
    else:
        res_cfg, res_batch, lstm_cfg, lstm_batch, steps = (20, 16), 128, (64, 256), (32, 64), 50
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
            rounds,
        ),
        bench_model(
            f"char_lstm_h{lstm_cfg[1]}_t{lstm_batch[1]}_b{lstm_batch[0]}",
            lambda: init_model(
                lambda r: CharLSTM(text.vocab_size, lstm_cfg[0], lstm_cfg[1], rngs=r), 0
            ),
            lm_task,
            steps,
            rounds,
        ),
    ]
    dev = jax.devices()[0]
    run = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "device": {"platform": dev.platform, "kind": dev.device_kind, "count": jax.device_count()},
        "cpu_count": os.cpu_count(),
        "load_average": {"start": load_start, "end": load_average()},
        "machine": platform.machine(),
        "versions": {
            "python": platform.python_version(),
            **{p: importlib.metadata.version(p) for p in ("jax", "jaxlib", "optax", "flax")},
        },
        "quick": args.quick,
        "rounds": rounds,
        "reference": REFERENCE,
        "statistic": "steps/s: steps over the median chunk time; ratios to Adam: median over "
        "rounds of the paired ratio; memory: XLA's analysis of the compiled chunk",
        "results": results,
        "wall_time_s": time.perf_counter() - t0,
    }
    merge_run(args.out, dev.platform, run)
    print(table(results))
    print(f"rounds {rounds}, {steps} steps per chunk, device {dev.platform} ({dev.device_kind})")
    print(f"load average (1, 5, 15 min): start {load_start}, end {run['load_average']['end']}")
    print(f"wrote {args.out}")
    return run


if __name__ == "__main__":
    main()
