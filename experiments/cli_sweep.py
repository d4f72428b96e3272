"""``momlab sweep``: a grid sweep from a config file, on every local device or on several processes.

``momlab sweep run CONFIG.toml`` runs :func:`simulators.sweep` over the product grid the file
declares (``momlab sweep example`` prints one) on all devices of this process, and writes the
trajectories to ``--out`` (``.npz``). With ``--distributed`` it first calls
``jax.distributed.initialize``: with ``--coordinator``, ``--num-processes`` and ``--process-id``
given, or from the cluster's environment (SLURM, TPU pods, Open MPI) when they are not. Every
process then runs its block of the grid; the blocks are gathered with
``multihost_utils.process_allgather`` (or merged through ``--merge-dir``) and process 0 writes the
file. JAX is imported only when a sweep runs, so ``momlab --help`` stays light.
"""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

sweep_app = typer.Typer(
    name="sweep",
    help="Sweeps over a hyper-parameter grid, sharded over devices and processes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

EXAMPLE = """\
# momlab sweep run this.toml --out sweep.npz
optimizer = "heavy_ball"   # a factory of the optimizers package
objective = "quadratic"    # a constructor of simulators.objectives
steps = 200
record_every = 200         # records at 0 and 200 only
seeds = 4                  # seeds per grid point (common random numbers)
seed = 0
x64 = true                 # float64 runs
# chunk_size = 65536       # configurations per compiled call (default: from device memory)

[objective_args]
spectrum = [1.0, 10.0]
noise_std = 0.01

[grid]                     # the product of these axes
learning_rate = { start = 0.01, stop = 0.35, num = 60 }
momentum = [0.0, 0.3, 0.6, 0.9]
"""

_KEYS = {
    "optimizer",
    "objective",
    "steps",
    "record_every",
    "seeds",
    "seed",
    "x64",
    "chunk_size",
    "objective_args",
    "optimizer_args",
    "grid",
}


def load_config(path: Path) -> dict[str, Any]:
    """Read and check a sweep config (TOML, or JSON when the name ends in ``.json``)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        cfg = json.loads(text) if str(path).endswith(".json") else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"{path}: not a valid config: {err}") from err
    unknown = sorted(set(cfg) - _KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; known: {sorted(_KEYS)}")
    for key in ("optimizer", "objective", "steps", "grid"):
        if key not in cfg:
            raise ValueError(f"{path}: missing key {key!r}")
    if not isinstance(cfg["grid"], dict) or not cfg["grid"]:
        raise ValueError(f"{path}: grid must be a table of at least one axis")
    return cfg


def grid_axes(grid: dict[str, Any]) -> dict[str, Any]:
    """1-D axes from lists of numbers or ``{start, stop, num, log}`` tables (``log``: geometric)."""
    import numpy as np

    axes = {}
    for name, spec in grid.items():
        if isinstance(spec, dict):
            extra = sorted(set(spec) - {"start", "stop", "num", "log"})
            if extra or not {"start", "stop", "num"} <= set(spec):
                raise ValueError(f"grid.{name}: a range needs start, stop, num (and log)")
            space = np.geomspace if spec.get("log", False) else np.linspace
            axes[name] = space(float(spec["start"]), float(spec["stop"]), int(spec["num"]))
        elif isinstance(spec, list) and spec:
            axes[name] = np.asarray(spec, dtype=np.float64)
        else:
            raise ValueError(f"grid.{name}: give a non-empty list or a {{start, stop, num}} range")
    return axes


def _factory(module: Any, name: str, what: str) -> Any:
    public = getattr(module, "__all__", [])
    if name not in public or not callable(getattr(module, name)):
        raise ValueError(f"unknown {what} {name!r}; known: {sorted(public)}")
    return getattr(module, name)


def run_config(
    cfg: dict[str, Any],
    *,
    n_devices: int | None = None,
    chunk_size: int | None = None,
    merge_dir: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the sweep ``cfg`` describes; return ``(arrays to save, summary)``.

    ``x64 = true`` in the config runs it in float64 inside ``jax.enable_x64`` (the process-wide
    flag is restored afterwards, so a caller in the same process is not switched to float64).
    """
    import contextlib

    import jax

    x64 = jax.enable_x64(True) if cfg.get("x64", False) else contextlib.nullcontext()
    with x64:
        return _run_config(cfg, n_devices=n_devices, chunk_size=chunk_size, merge_dir=merge_dir)


def _run_config(
    cfg: dict[str, Any],
    *,
    n_devices: int | None,
    chunk_size: int | None,
    merge_dir: str | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    import functools

    import jax
    import numpy as np

    import optimizers
    import simulators
    from simulators import objectives

    make = _factory(optimizers, cfg["optimizer"], "optimizer")
    if cfg.get("optimizer_args"):
        make = functools.partial(make, **cfg["optimizer_args"])
    objective = _factory(objectives, cfg["objective"], "objective")(**cfg.get("objective_args", {}))
    axes = grid_axes(cfg["grid"])
    devices = jax.local_devices()
    if n_devices is not None:
        if not 1 <= n_devices <= len(devices):
            raise ValueError(f"--devices must lie in [1, {len(devices)}] (got {n_devices})")
        devices = devices[:n_devices]
    seeds = int(cfg.get("seeds", 1))
    t0 = time.perf_counter()
    tr = simulators.sweep(
        make,
        simulators.product_grid(**axes),
        objective,
        int(cfg["steps"]),
        jax.random.key(int(cfg.get("seed", 0))),
        seeds=seeds,
        record_every=int(cfg.get("record_every", cfg["steps"])),
        devices=devices,
        chunk_size=chunk_size if chunk_size is not None else cfg.get("chunk_size"),
        out_dir=merge_dir,
    )
    seconds = time.perf_counter() - t0
    arrays = {f"grid/{k}": v for k, v in axes.items()}
    arrays |= {
        "steps": tr.steps,
        "losses": tr.losses,
        "distances": tr.distances,
        "diverged": tr.diverged,
        "diverged_at": tr.diverged_at,
    }
    arrays |= {f"stats/{k}": v for k, v in tr.stats.items()}
    runs = int(tr.diverged.size)
    final = np.where(tr.diverged, np.inf, tr.distances[..., -1])
    median = np.median(final, axis=-1)  # over seeds
    best = np.unravel_index(int(np.argmin(median)), median.shape)
    summary = {
        "runs": runs,
        "grid_shape": list(median.shape),
        "seeds": seeds,
        "devices_per_process": len(devices),
        "processes": jax.process_count(),
        "seconds": round(seconds, 3),
        "runs_per_s": runs / seconds,
        "diverged_fraction": float(np.mean(tr.diverged)),
        "best_point": {k: float(v[i]) for (k, v), i in zip(axes.items(), best, strict=True)},
        "best_median_final_distance": float(median[best]),
    }
    return arrays, summary


def save_npz(path: Path, arrays: dict[str, Any]) -> None:
    """Write ``arrays`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    import os
    import tempfile

    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@sweep_app.command("example")
def example() -> None:
    """Print an example config (TOML) for ``momlab sweep run``."""
    print(EXAMPLE, end="")


@sweep_app.command("run")
def run(
    config: Annotated[Path, typer.Argument(help="sweep config (.toml or .json)")],
    out: Annotated[Path, typer.Option(help="output .npz (written by process 0)")] = Path(
        "sweep.npz"
    ),
    devices: Annotated[
        int | None, typer.Option(help="use the first N local devices (default all)")
    ] = None,
    chunk_size: Annotated[
        int | None, typer.Option(help="configurations per compiled call (default: from memory)")
    ] = None,
    distributed: Annotated[
        bool, typer.Option("--distributed", help="call jax.distributed.initialize first")
    ] = False,
    coordinator: Annotated[
        str | None, typer.Option(help="HOST:PORT of process 0 (with --distributed)")
    ] = None,
    num_processes: Annotated[int | None, typer.Option(help="process count")] = None,
    process_id: Annotated[int | None, typer.Option(help="this process's index")] = None,
    merge_dir: Annotated[
        str | None, typer.Option(help="merge the processes' parts through files in this folder")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Run the sweep CONFIG describes on every local device (and every process with
    --distributed); write the trajectories to --out and print a summary."""
    cfg = load_config(config)
    import jax

    if distributed:
        jax.distributed.initialize(
            coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
        )
    elif coordinator or num_processes or process_id is not None:
        raise ValueError("--coordinator, --num-processes and --process-id need --distributed")
    arrays, summary = run_config(cfg, n_devices=devices, chunk_size=chunk_size, merge_dir=merge_dir)
    if jax.process_index() != 0:
        return
    save_npz(out, arrays)
    summary["out"] = str(out)
    if as_json:
        print(json.dumps(summary))
        return
    for key, value in summary.items():
        print(f"{key}: {value}")
