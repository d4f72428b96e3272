"""Sharded and chunked sweeps: device scaling, chunked memory and throughput, wide asynchrony.

Part of ``python -m benchmarks.bench_simulators``; each measurement that needs its own device
count or its own peak-memory reading runs in a fresh subprocess
(``python -m benchmarks._bench_sharding MODE JSON-ARGS`` prints one JSON line):

* ``scaling``: with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``, the same heavy-ball
  sweep on 1 and on N devices (best of interleaved rounds). Unit: coordinate-steps/s; efficiency
  = ``rate_N / (N rate_1)``.
* ``chunked``: a 2-D heavy-ball sweep of ``runs`` configurations, one per subprocess, either in
  chunks of ``chunk_size`` or in one call. Peak memory is the process's peak resident set
  (``ru_maxrss``) over the first call (compile and run) less its resident set just before it (after
  the imports and the grid); it is compared with the stated bound ``host arrays + 2 * chunk_size *
  bytes_per_row + RUNTIME_SLACK`` (the sweep's host results and inputs, two chunks in flight, and
  the compiler's, XLA's and the allocator's working slack). The second, warm call is timed.
* ``async_wide``: the exact asynchronous simulator at ``d = 1e4`` with ``M = 16`` and ``M = 256``
  workers, in worker-updates/s.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_SLACK = 256 << 20  # bytes: XLA buffers, allocator arenas, the warm-up's leftovers


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def _heavy_ball_sweep(runs: int, steps: int, **kw: Any) -> Any:
    import jax
    import numpy as np

    from optimizers import heavy_ball
    from simulators import quadratic, sweep

    rng = np.random.default_rng(0)
    grid = {"learning_rate": rng.uniform(0.05, 1.0, runs), "momentum": rng.uniform(0, 0.9, runs)}
    obj = quadratic([0.1, 1.0])
    return lambda: (
        sweep(heavy_ball, grid, obj, steps, jax.random.key(0), record_every=steps, **kw).distances
    )


def scaling(runs: int, steps: int, repeats: int) -> dict[str, Any]:
    import jax

    from benchmarks.bench_simulators import interleaved_best

    devs = jax.devices()
    fns = {f"{n}": _heavy_ball_sweep(runs, steps, devices=devs[:n]) for n in (1, len(devs))}
    times = interleaved_best(fns, repeats)
    work = runs * 2 * steps
    rate = {n: work / t for n, t in times.items()}
    nd = len(devs)
    return {
        "devices": nd,
        "runs": runs,
        "steps": steps,
        "coord_steps_per_s": rate,
        "per_device_coord_steps_per_s": {n: r / int(n) for n, r in rate.items()},
        "efficiency": rate[f"{nd}"] / (nd * rate["1"]),
    }


def chunked(runs: int, steps: int, chunk_size: int | None) -> dict[str, Any]:
    import numpy as np

    fn = _heavy_ball_sweep(runs, steps, chunk_size=chunk_size or runs)
    base = _rss()
    fn()  # first call: compiles and runs; its peak is the one read
    peak = _peak_rss() - base
    t0 = time.perf_counter()
    out = fn()  # second call: warm, timed
    seconds = time.perf_counter() - t0
    from optimizers import heavy_ball
    from simulators import quadratic, sweep_memory

    memory = sweep_memory(
        heavy_ball,
        ["learning_rate", "momentum"],
        quadratic([0.1, 1.0]),
        steps,
        record_every=steps,
    )
    per_row, host_row = memory["device_bytes_per_row"], memory["host_bytes_per_row"]
    chunk = chunk_size or runs
    bound = runs * host_row + 2 * chunk * per_row + RUNTIME_SLACK
    return {
        "runs": runs,
        "steps": steps,
        "chunk_size": chunk,
        "auto_chunk_size": memory["auto_chunk_size"],
        "seconds": seconds,
        "runs_per_s": runs / seconds,
        "coord_steps_per_s": runs * 2 * steps / seconds,
        "peak_rss_growth_bytes": peak,
        "bytes_per_row_device": per_row,
        "bytes_per_row_host": host_row,
        "bound_bytes": bound,
        "within_bound": bool(peak <= bound),
        "finite_fraction": float(np.mean(np.isfinite(out))),
    }


def async_wide(dim: int, steps: int, repeats: int) -> dict[str, Any]:
    import numpy as np
    import optax

    from benchmarks.bench_simulators import interleaved_best
    from simulators import quadratic, simulate_async_exact

    obj = quadratic(np.linspace(0.1, 1.0, dim))
    opt = optax.sgd(0.01)  # one instance: the compiled run is reused across calls

    def run(m: int) -> Any:
        # a fixed seed: the same schedule, buffer length and compiled run on every call
        return lambda: simulate_async_exact(obj, opt, steps, m, 0, record_every=steps).distances

    times = interleaved_best({"16": run(16), "256": run(256)}, repeats)
    rate = {m: steps / t for m, t in times.items()}
    return {
        "dim": dim,
        "updates": steps,
        "updates_per_s": rate,
        "ratio_256_vs_16": rate["256"] / rate["16"],
    }


def in_subprocess(mode: str, devices: int = 1, timeout: float = 1800, **kw: Any) -> dict:
    """Run ``mode(**kw)`` in a fresh Python with ``devices`` forced host devices."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env.setdefault("JAX_PLATFORMS", "cpu")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks._bench_sharding", mode, json.dumps(kw)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{mode} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench(quick: bool) -> dict[str, Any]:
    """The three measurements at quick or full sizes (see the module docstring)."""
    if quick:
        sc = {"runs": 4096, "steps": 100, "repeats": 2}
        ch = {"runs": 200_000, "steps": 64, "chunk_size": 1 << 15}
        asy = {"dim": 10_000, "steps": 2_000, "repeats": 2}
    else:
        sc = {"runs": 65_536, "steps": 200, "repeats": 3}
        ch = {"runs": 2_000_000, "steps": 64, "chunk_size": 1 << 17}
        asy = {"dim": 10_000, "steps": 20_000, "repeats": 3}
    out: dict[str, Any] = {"scaling_1_to_2_cpu_devices": in_subprocess("scaling", 2, **sc)}
    c = in_subprocess("chunked", **ch)
    u = in_subprocess("chunked", **(ch | {"chunk_size": None}))
    out["chunked_sweep"] = {
        "chunked": c,
        "unchunked": u,
        "unchunked_vs_chunked_throughput": u["runs_per_s"] / c["runs_per_s"],
        "peak_ratio_chunked_vs_unchunked": c["peak_rss_growth_bytes"]
        / max(1, u["peak_rss_growth_bytes"]),
    }
    out["async_exact_wide"] = in_subprocess("async_wide", **asy)
    return out


if __name__ == "__main__":
    fn = {"scaling": scaling, "chunked": chunked, "async_wide": async_wide}[sys.argv[1]]
    print(json.dumps(fn(**json.loads(sys.argv[2]))))
