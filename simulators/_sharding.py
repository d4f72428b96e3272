"""Running a batch of independent configurations over devices, chunks and processes.

A sweep is a map over a flattened configuration axis of ``n`` rows: no row reads another. This
module runs such a map

* over a :class:`jax.sharding.Mesh` of devices (default: every device this process can address):
  the row axis is split over all mesh axes with a :class:`~jax.sharding.NamedSharding`, and the
  per-row function runs under ``shard_map``, so every device runs the one-device program on its
  rows and no collective is compiled in;
* in chunks of ``chunk_size`` rows (a multiple of the device count, at least two rows per device;
  the last chunk is padded by repeating the last row, so every chunk has one compiled shape).
  Peak device memory is that of at most two chunks in flight (the next one is dispatched before
  the previous one is copied back): ``2 * chunk_size * bytes_per_row`` plus the replicated
  arguments;
* over processes, after ``jax.distributed.initialize(...)``: process ``i`` of ``p`` computes rows
  ``[i b, (i + 1) b)`` with ``b = ceil(n / p)`` (the last block padded like a chunk) on its own
  devices, and the blocks are gathered with ``multihost_utils.process_allgather`` or written to
  ``out_dir`` as one ``.npz`` per process and merged from there.

Every row is computed by the same elementwise program whatever the device count, chunk size or
process count, so results are returned in row order and are bit-identical to a one-device run.
"""

from __future__ import annotations

import inspect
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "configs"
# fraction of a device's free memory that one chunk's arrays may take (two chunks are in flight)
MEMORY_FRACTION = 0.2
# auto chunks hold at most this many rows per device (beyond it throughput no longer grows)
MAX_ROWS_PER_DEVICE = 1 << 20
# XLA compiles a one-row batch differently (its reductions round differently in the last bit), so
# every device gets at least two rows, padded when the sweep has fewer
MIN_ROWS_PER_DEVICE = 2
MERGE_TIMEOUT_S = 3600.0


def shard_map(f: Callable, mesh: Mesh, in_specs: Any, out_specs: Any) -> Callable:
    """``jax.shard_map`` (jax >= 0.6), else ``jax.experimental.shard_map.shard_map``.

    The replication check is off: the body is a per-row map whose scans start from replicated
    constants, and every output is split over the rows, so there is nothing to check.
    """
    if hasattr(jax, "shard_map"):
        params = inspect.signature(jax.shard_map).parameters
        flag = {"check_vma": False} if "check_vma" in params else {"check_rep": False}
        return jax.shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs, **flag)
    from jax.experimental.shard_map import shard_map as legacy  # pragma: no cover

    return legacy(f, mesh, in_specs=in_specs, out_specs=out_specs, check_rep=False)


def row_spec(mesh: Mesh) -> PartitionSpec:
    """Rows split over every axis of ``mesh``."""
    return PartitionSpec(tuple(mesh.axis_names))


def config_mesh(devices: Sequence[Any] | None = None, mesh: Mesh | None = None) -> Mesh:
    """The mesh the rows are split over: ``mesh``, or a 1-D mesh of ``devices``.

    Default: every device of the default backend that this process addresses
    (``jax.local_devices()``). Devices of other processes are rejected: each process runs its
    block of rows on its own devices.
    """
    if mesh is not None and devices is not None:
        raise ValueError("give at most one of devices= and mesh=")
    if mesh is not None:
        if not isinstance(mesh, Mesh):
            raise ValueError("mesh must be a jax.sharding.Mesh")
        devs = list(mesh.devices.flat)
    else:
        devs = jax.local_devices() if devices is None else list(devices)
        if not devs:
            raise ValueError("devices must name at least one device")
        mesh = Mesh(np.asarray(devs, dtype=object), (AXIS,))
    me = jax.process_index()
    if any(getattr(d, "process_index", me) != me for d in devs):
        raise ValueError("the mesh may hold only devices of this process (jax.local_devices())")
    return mesh


def free_device_memory(device: Any) -> int:
    """Free bytes on ``device``: its allocator's limit less use, or the host's available memory
    shared by the host's devices when the backend reports none (CPU)."""
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        avail = 4 << 30
    return int(avail) // max(1, len(jax.local_devices(backend=device.platform)))


def auto_chunk_size(bytes_per_row: int, mesh: Mesh) -> int:
    """Rows per chunk: ``MEMORY_FRACTION`` of the smallest free device memory over the bytes of
    one row, rounded down to a power of two per device (so that small changes in free memory do
    not change the compiled shape), at most ``MAX_ROWS_PER_DEVICE`` per device."""
    free = min(free_device_memory(d) for d in mesh.devices.flat)
    per_device = max(1, int(MEMORY_FRACTION * free) // max(1, int(bytes_per_row)))
    per_device = min(1 << int(math.log2(per_device)), MAX_ROWS_PER_DEVICE)
    return per_device * mesh.size


def process_block(n: int, index: int, count: int) -> tuple[int, int]:
    """First row and row count ``b = ceil(n / count)`` of process ``index`` (may pass ``n``).

    Example:
        >>> [process_block(10, i, 3) for i in range(3)]
        [(0, 4), (4, 4), (8, 4)]
    """
    block = -(-n // count)
    return index * block, block


def _take(rows: Mapping[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in rows.items()}


def map_rows(
    call: Callable[[Mesh, dict[str, jax.Array]], Any],
    rows: Mapping[str, np.ndarray],
    *,
    mesh: Mesh,
    bytes_per_row: int,
    chunk_size: int | None = None,
    out_dir: str | os.PathLike | None = None,
) -> Any:
    """``call`` over all rows, chunked, sharded over ``mesh`` and split over processes.

    Args:
        call: ``call(mesh, batch)`` maps a dict of device arrays with ``c`` leading rows (sharded
            by :func:`row_spec`) to a pytree of arrays with ``c`` leading rows.
        rows: host arrays with the same leading length ``n >= 1``.
        mesh: from :func:`config_mesh`.
        bytes_per_row: device bytes one row needs (outputs and working state), for the auto
            chunk size.
        chunk_size: rows per chunk, rounded up to a multiple of ``mesh.size``; default
            :func:`auto_chunk_size`.
        out_dir: multi-process only: write this process's rows to
            ``out_dir/part-<i>-of-<p>.npz`` and merge all parts from there (no collectives)
            instead of ``process_allgather``.

    Returns:
        The pytree of NumPy arrays with ``n`` leading rows, in row order, on every process.

    Example:
        >>> rows = {"x": np.arange(5.0)}
        >>> out = map_rows(lambda m, b: {"y": 2 * b["x"]}, rows, mesh=config_mesh(),
        ...                bytes_per_row=8, chunk_size=2)
        >>> out["y"].tolist()
        [0.0, 2.0, 4.0, 6.0, 8.0]
    """
    n = len(next(iter(rows.values())))
    nd = mesh.size
    pid, count = jax.process_index(), jax.process_count()
    lo, block = process_block(n, pid, count)
    if chunk_size is None:
        chunk_size = auto_chunk_size(bytes_per_row, mesh)
    elif not (isinstance(chunk_size, int | np.integer) and chunk_size >= 1):
        raise ValueError(f"chunk_size must be a positive int (got {chunk_size!r})")
    per_device = min(-(-int(chunk_size) // nd), -(-block // nd))
    per_device = max(per_device, MIN_ROWS_PER_DEVICE)
    chunk = per_device * nd
    sharding = NamedSharding(mesh, row_spec(mesh))
    starts = range(lo, lo + block, chunk)

    def launch(start: int) -> Any:
        idx = np.minimum(np.arange(start, start + chunk), n - 1)  # pad by the last row
        return call(mesh, jax.device_put(_take(rows, idx), sharding))

    out: Any = None
    pending = launch(starts[0])
    for i, start in enumerate(starts):
        current = pending
        if i + 1 < len(starts):
            pending = launch(starts[i + 1])  # dispatched before copying the current chunk back
        host = jax.device_get(current)
        if out is None:
            out = jax.tree_util.tree_map(lambda a: np.empty((block, *a.shape[1:]), a.dtype), host)
        take = min(chunk, lo + block - start)

        def put(dst: np.ndarray, src: np.ndarray, s: int = start - lo, m: int = take) -> None:
            dst[s : s + m] = src[:m]

        jax.tree_util.tree_map(put, out, host)
        del current, host
    if count > 1:
        out = _gather(out, pid, count, out_dir)
    return jax.tree_util.tree_map(lambda a: a[:n], out)


def _gather(local: Any, pid: int, count: int, out_dir: str | os.PathLike | None) -> Any:
    if out_dir is None:
        from jax.experimental import multihost_utils

        return jax.tree_util.tree_map(
            np.asarray, multihost_utils.process_allgather(local, tiled=True)
        )
    leaves, treedef = jax.tree_util.tree_flatten(local)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    write_part(folder / part_name(pid, count), leaves)
    parts = [read_part(folder / part_name(i, count), len(leaves)) for i in range(count)]
    merged = [np.concatenate(column, axis=0) for column in zip(*parts, strict=True)]
    return jax.tree_util.tree_unflatten(treedef, merged)


def part_name(index: int, count: int) -> str:
    """File name of process ``index``'s rows among ``count`` processes."""
    return f"part-{index:05d}-of-{count:05d}.npz"


def write_part(path: Path, leaves: Sequence[np.ndarray]) -> None:
    """Write the leaves atomically (temporary file, then rename), so readers never see half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, *leaves)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_part(path: Path, n_leaves: int, timeout_s: float = MERGE_TIMEOUT_S) -> list[np.ndarray]:
    """Wait (polling) until another process has written ``path``; return its leaves."""
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout_s:.0f} s")
        time.sleep(0.05)
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(n_leaves)]
