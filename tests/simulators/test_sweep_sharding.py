"""Sharded, chunked and multi-process sweeps equal the one-device sweep bit for bit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

from optimizers import heavy_ball
from simulators import _sharding, quadratic, sweep

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORKER = HERE / "_sweep_worker.py"
sys.path.insert(0, str(HERE))
import _sweep_worker  # noqa: E402


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    env |= {"JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)} | extra
    return env


def _same(a: dict, b: dict, prefix: str = "") -> None:
    for name, ref in a.items():
        got = b[prefix + name]
        assert got.dtype == ref.dtype and got.shape == ref.shape, name
        np.testing.assert_array_equal(got, ref, err_msg=name, strict=True)


def test_eight_devices_equal_one_device_bit_for_bit(tmp_path: Path) -> None:
    out = tmp_path / "local.npz"
    done = subprocess.run(
        [sys.executable, str(WORKER), "local", str(out)],
        env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=8"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = dict(np.load(out))
    one = {k[4:]: v for k, v in data.items() if k.startswith("one/")}
    assert one["diverged_at"].max() > 0 and one["diverged_at"].min() == -1  # both kinds of run
    for run in ("all", "chunked", "mesh"):  # 8 devices; chunks of 16; a 2 x 4 mesh, chunks of 8
        _same(one, data, f"{run}/")
    ens = {k[8:]: v for k, v in data.items() if k.startswith("ens_one/")}
    assert len(ens) == 8
    _same(ens, data, "ens_all/")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def one_process() -> dict[str, np.ndarray]:
    """The worker's sweep in this process on one device (float64, as in the workers)."""
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        return _sweep_worker.run(devices=jax.devices()[:1])
    finally:
        jax.config.update("jax_enable_x64", old)


@pytest.mark.parametrize("merge", ["allgather", "files"])
def test_two_processes_equal_one_process(tmp_path: Path, merge: str, one_process: dict) -> None:
    port = _free_port()
    extra = [str(tmp_path / "parts")] if merge == "files" else []

    def args(i: int) -> list[str]:
        out = str(tmp_path / f"p{i}.npz")
        return [sys.executable, str(WORKER), "dist", out, str(port), str(i), "2", *extra]

    procs = [
        subprocess.Popen(
            args(i),
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    for i in range(2):  # every process returns the whole sweep
        _same(one_process, dict(np.load(tmp_path / f"p{i}.npz")), "dist/")
    if merge == "files":
        assert sorted(os.listdir(tmp_path / "parts")) == [
            _sharding.part_name(i, 2) for i in range(2)
        ]


@pytest.mark.usefixtures("x64")
def test_small_chunks_and_auto_chunks_equal_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    obj = quadratic([1.0, 4.0], noise_std=0.2)
    g = {"learning_rate": np.linspace(0.05, 0.6, 5), "momentum": [0.5]}
    key = jax.random.key(1)
    ref = sweep(heavy_ball, g, obj, 12, key, seeds=3, record_coords=None)
    small = sweep(heavy_ball, g, obj, 12, key, seeds=3, record_coords=None, chunk_size=4)
    # auto chunk size from a device with little free memory: several chunks, same result
    per_row = 1000
    monkeypatch.setattr(_sharding, "free_device_memory", lambda d: 8 * per_row)
    assert _sharding.auto_chunk_size(per_row, _sharding.config_mesh()) == 1
    tiny = sweep(heavy_ball, g, obj, 12, key, seeds=3, record_coords=None)
    for tr in (small, tiny):
        for a, b in zip(tr, ref, strict=True):
            if isinstance(a, dict):
                assert a.keys() == b.keys()
                for k in a:
                    np.testing.assert_array_equal(a[k], b[k], strict=True)
            else:
                np.testing.assert_array_equal(a, b, strict=True)


def test_auto_chunk_size_is_a_power_of_two_per_device_within_the_budget() -> None:
    mesh = _sharding.config_mesh()
    free = min(_sharding.free_device_memory(d) for d in mesh.devices.flat)
    for per_row in (10, 10_000, 10**7):
        c = _sharding.auto_chunk_size(per_row, mesh) // mesh.size
        assert c & (c - 1) == 0 and c <= _sharding.MAX_ROWS_PER_DEVICE
        assert (
            c == 1
            or c * per_row <= _sharding.MEMORY_FRACTION * free < 2 * c * per_row
            or (c == _sharding.MAX_ROWS_PER_DEVICE)
        )


def test_process_blocks_cover_the_rows_once() -> None:
    for n, p in [(10, 3), (2, 4), (64, 2), (1, 1)]:
        rows = []
        for i in range(p):
            lo, b = _sharding.process_block(n, i, p)
            rows += [r for r in range(lo, lo + b) if r < n]
        assert rows == list(range(n))


def test_bad_devices_mesh_and_chunk_size() -> None:
    obj = quadratic([1.0])
    g = {"learning_rate": [0.1], "momentum": [0.0]}
    key = jax.random.key(0)
    devs = jax.devices()
    mesh = Mesh(np.asarray(devs), ("x",))
    with pytest.raises(ValueError, match="at most one"):
        sweep(heavy_ball, g, obj, 3, key, devices=devs, mesh=mesh)
    with pytest.raises(ValueError, match="at least one device"):
        sweep(heavy_ball, g, obj, 3, key, devices=[])
    with pytest.raises(ValueError, match="Mesh"):
        sweep(heavy_ball, g, obj, 3, key, mesh="cpu")
    for bad in (0, 2.5, -1):
        with pytest.raises(ValueError, match="chunk_size"):
            sweep(heavy_ball, g, obj, 3, key, chunk_size=bad)
    tr = sweep(heavy_ball, g, obj, 3, key, mesh=mesh)
    assert tr.distances.shape == (1, 1, 4)
