"""Steps per second of the full tier's ResNet step: epoch sampler x convolution, vmapped members.

Run as ``python -m benchmarks.bench_cpu_tier [--quick] [--rounds R]``. The step is the one the
real-network experiments' grids run (:mod:`experiments.library._seed_grid`): ``members`` copies of
ResNet-8 (width 4) trained with Adam under ``jax.vmap``, each drawing a batch of 16 from a
device-resident training set of Fashion-MNIST's shape (60000 random 28x28x1 images; timing does not
depend on content). Four variants:

- ``sort/xla``: the epoch permutation by ``jax.random.permutation`` (sorts ``n`` keys every step)
  and XLA's convolution: the reference, what the full tier ran before;
- ``feistel/xla``: the batch positions through :func:`gpu.shuffle.permuted_index` (``O(batch)``);
- ``sort/shifted``: the ResNet's shifted-views convolution (``ResNet(conv="shifted")``);
- ``feistel/shifted``: both, what ``classification_task`` and ``ResNet`` pick on a CPU by default.

Every round runs one ``steps``-step chunk of each variant in a rotated order, blocked on at the end
only; ``seconds_per_member_step`` is the median chunk time over ``steps x members`` and
``speedup`` the median over rounds of the per-round ratio ``reference time / variant time``
(paired, so a slow period of a shared machine hits both). Results and the machine's load average
are written atomically to ``benchmarks/results/cpu_tier.json`` under the platform's key.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax

from benchmarks._results import merge_run
from gpu import SORT_MAX_EXAMPLES, classification_task, init_state, make_step, scan_steps
from gpu.data import Dataset
from gpu.models import ResNet, init_model

RESULTS = Path(__file__).resolve().parent / "results" / "cpu_tier.json"
REFERENCE = "sort/xla"
VARIANTS = ("sort/xla", "feistel/xla", "sort/shifted", "feistel/shifted")


def fashion_shaped(n: int, seed: int = 0) -> Dataset:
    """``n`` random 28x28x1 images with 10 labels (Fashion-MNIST's shape)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, n)
    return Dataset.build("fashion-shaped", x, y, x[:8], y[:8], 10)


def variant_runner(name: str, ds: Dataset, members: int, batch: int) -> tuple[Any, Any, Any]:
    """``(run, state, data)``: the jitted vmapped chunk of one variant and its stacked state."""
    shuffle, conv = name.split("/")
    task = classification_task(ds, batch, shuffle=shuffle)
    tx = optax.with_extra_args_support(optax.adam(1e-3))
    states = []
    for s in range(members):
        model = init_model(lambda r: ResNet(8, 4, 10, 1, conv=conv, rngs=r), s)
        graphdef, st = init_state(model, tx, seed=s)
        states.append(st)
    state = jax.tree.map(lambda *a: jax.numpy.stack(a), *states)
    step = jax.vmap(make_step(graphdef, tx, task), in_axes=(0, None))
    return scan_steps(step), state, task.train_data


def measure(n: int, members: int, batch: int, steps: int, rounds: int) -> dict[str, Any]:
    """Time every variant (see the module docstring)."""
    ds = fashion_shaped(n)
    live = {v: list(variant_runner(v, ds, members, batch)) for v in VARIANTS}
    for v, (run, state, data) in live.items():  # compile and warm up
        for _ in range(2):
            state, _ = run(state, data, steps)
        jax.block_until_ready(state)
        live[v][1] = state
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(rounds):
        order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
        for v in order:
            run, state, data = live[v]
            t0 = time.perf_counter()
            state, _ = run(state, data, steps)
            jax.block_until_ready(state)
            times[v].append(time.perf_counter() - t0)
            live[v][1] = state
    ref = times[REFERENCE]
    return {
        v: {
            "seconds_per_member_step": statistics.median(t) / (steps * members),
            "speedup": statistics.median(a / b for a, b in zip(ref, t, strict=True)),
            "chunk_seconds": t,
        }
        for v, t in times.items()
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (tests, smoke)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 5, 2)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON to merge the run into")
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds must be >= 1 (got {args.rounds})")
    n, members, steps = (SORT_MAX_EXAMPLES + 1, 2, 4) if args.quick else (60000, 9, 50)
    rounds = args.rounds or (2 if args.quick else 5)
    load_start = list(os.getloadavg())
    results = measure(n, members, 16, steps, rounds)
    run = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "platform": jax.default_backend(),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "quick": args.quick,
        "setting": {"n": n, "members": members, "batch": 16, "steps": steps, "rounds": rounds},
        "load_average": {"start": load_start, "end": list(os.getloadavg())},
        "reference": REFERENCE,
        "variants": results,
    }
    merge_run(args.out, run["platform"], run)
    for v, res in results.items():
        ms = res["seconds_per_member_step"] * 1e3
        print(f"{v:16s} {ms:8.2f} ms per member step, {res['speedup']:.2f}x {REFERENCE}")
    print(f"wrote {args.out}")
    return run


if __name__ == "__main__":
    main()
