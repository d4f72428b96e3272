"""Sweeps run in a subprocess by ``test_sweep_sharding.py`` (device counts are fixed at start-up).

``python tests/simulators/_sweep_worker.py local OUT.npz``: with 8 forced CPU devices, the sweep on
one device, on all 8 (default), on 8 in chunks of 16 and on a 2 x 4 mesh, saved side by side.
``python tests/simulators/_sweep_worker.py dist OUT.npz PORT PID NPROC [MERGE_DIR]``: one process of
a ``jax.distributed`` run on localhost; with MERGE_DIR the parts are merged through files.
"""

from __future__ import annotations

import sys

import jax
import numpy as np


def problem() -> tuple:
    """A noisy 2-D quadratic, a 7 x 3 grid with diverging points, 3 seeds: 63 configurations."""
    from optimizers import heavy_ball
    from simulators import product_grid, quadratic

    obj = quadratic([1.0, 9.0], noise_std=0.3)
    grid = product_grid(learning_rate=np.linspace(0.02, 0.4, 7), momentum=[0.0, 0.6, 0.95])
    return heavy_ball, grid, obj


def run(**kw) -> dict[str, np.ndarray]:
    from simulators import sweep

    make, grid, obj = problem()
    tr = sweep(make, grid, obj, 60, jax.random.key(5), seeds=3, record_every=3, **kw)
    out = {"losses": tr.losses, "distances": tr.distances, "iterates": tr.iterates}
    out |= {"diverged_at": tr.diverged_at, "steps": tr.steps}
    out |= {f"stats_{k}": v for k, v in tr.stats.items()}
    return out


def run_ensemble(**kw) -> dict[str, np.ndarray]:
    """13 asynchronous runs, exact mode (3 workers) and fast mode (geometric law)."""
    import optax

    from simulators import async_ensemble
    from simulators.asynchrony import geometric

    _, _, obj = problem()
    out = {}
    for mode, extra in (("exact", {"n_workers": 3}), ("fast", {"law": geometric(3)})):
        ens = async_ensemble(obj, optax.sgd(0.05), 40, 13, seed=2, record_every=4, **extra, **kw)
        out[f"{mode}_losses"] = ens.runs.losses
        out[f"{mode}_iterates"] = ens.runs.iterates
        out[f"{mode}_staleness"] = ens.runs.staleness
        out[f"{mode}_mean"] = ens.mean_iterates
    return out


def main(argv: list[str]) -> None:
    mode, path = argv[0], argv[1]
    if mode == "local":
        from jax.sharding import Mesh

        devs = jax.devices()
        assert len(devs) == 8, devs
        runs = {
            "one": run(devices=devs[:1]),
            "all": run(),
            "chunked": run(chunk_size=16),
            "mesh": run(mesh=Mesh(np.asarray(devs).reshape(2, 4), ("a", "b")), chunk_size=8),
            "ens_one": run_ensemble(devices=devs[:1]),
            "ens_all": run_ensemble(),
        }
    else:
        port, pid, nproc = int(argv[2]), int(argv[3]), int(argv[4])
        merge = argv[5] if len(argv) > 5 else None
        jax.distributed.initialize(f"localhost:{port}", num_processes=nproc, process_id=pid)
        assert jax.process_count() == nproc
        runs = {"dist": run(out_dir=merge, chunk_size=8)}
    np.savez(path, **{f"{r}/{k}": v for r, d in runs.items() for k, v in d.items()})


if __name__ == "__main__":
    # float64 in the worker processes only: importing this module (the test does) must not switch
    # the importing process to float64.
    jax.config.update("jax_enable_x64", True)
    main(sys.argv[1:])
