"""The real-network beds of ``total-momentum`` and ``closed-loop``: data, model, stale training.

Three sizes, one code path (:func:`train_seeds`):

- quick: the 64-64-10 MLP on sklearn's 8x8 digits;
- full: a ResNet-8 (a small CNN, :class:`gpu.models.ResNet`) on Fashion-MNIST (Debian
  ``dataset-fashion-mnist``, :func:`gpu.data.load_fashion_mnist`);
- gpu: ResNet-20 on CIFAR-100 read from ``$MOMLAB_CIFAR_DIR`` (:func:`gpu.data.load_cifar`);
  without the variable the bed names it as missing (:func:`missing_data`) and is not run.

Asynchrony is :mod:`gpu.stale`'s emulation: each step's gradient is read at the parameters of
``tau`` steps before, ``tau`` geometric with mean ``M - 1`` (:func:`gpu.geometric`, the queueing
model of ``M`` workers, Mitliagkas et al., arXiv 1605.09774, Sec. 3). Each seed is an independent
run of :func:`gpu.make_step` (its own initialisation, batches and delays), scanned in chunks by
one compiled program shared by the seeds (a ``vmap`` over seeds turns each convolution into a
grouped one, many times slower on the CPU), so a seed's trajectory is the one :func:`gpu.train`
gives for that seed.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax

import gpu
from experiments import runtime
from gpu.models import MLP, ResNet, init_model

#: The environment variable naming the CIFAR-100 folder of the gpu tier.
CIFAR_ENV = "MOMLAB_CIFAR_DIR"


@dataclasses.dataclass(frozen=True)
class NetBed:
    """One real-network bed.

    Attributes:
        dataset: ``"digits"``, ``"fashion-mnist"`` or ``"cifar100"``.
        model: ``"mlp"`` (hidden widths ``hidden``) or ``"resnet"`` (``depth``, ``width``).
        hidden, depth, width: model sizes.
        batch: minibatch size.
        n_train: training examples kept (None: all).
        data_dir: folder of CIFAR-100 (the gpu tier reads ``$MOMLAB_CIFAR_DIR``).
    """

    dataset: str = "digits"
    model: str = "mlp"
    hidden: int = 64
    depth: int = 8
    width: int = 4
    batch: int = 64
    n_train: int | None = None
    data_dir: str = ""

    def __post_init__(self) -> None:
        if self.dataset not in ("digits", "fashion-mnist", "cifar100"):
            raise ValueError(
                f"dataset must be 'digits', 'fashion-mnist' or 'cifar100' (got {self.dataset!r})"
            )
        if self.model not in ("mlp", "resnet"):
            raise ValueError(f"model must be 'mlp' or 'resnet' (got {self.model!r})")
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1 (got {self.batch!r})")

    def describe(self) -> str:
        """e.g. ``"ResNet-8 (width 4) on fashion-mnist"``."""
        net = f"MLP ({self.hidden} hidden)" if self.model == "mlp" else f"ResNet-{self.depth}"
        if self.model == "resnet":
            net += f" (width {self.width})"
        return f"{net} on {self.dataset}"


def quick_bed() -> NetBed:
    """The digits MLP."""
    return NetBed()


def full_bed() -> NetBed:
    """ResNet-8 of width 4 on 12000 Fashion-MNIST images, batch 32."""
    return NetBed(
        dataset="fashion-mnist", model="resnet", depth=8, width=4, batch=32, n_train=12000
    )


def gpu_bed() -> NetBed:
    """ResNet-20 (width 16) on CIFAR-100 from ``$MOMLAB_CIFAR_DIR``, batch 128 (the paper's
    asynchronous closed-loop setting)."""
    return NetBed(
        dataset="cifar100",
        model="resnet",
        depth=20,
        width=16,
        batch=128,
        data_dir=os.environ.get(CIFAR_ENV, ""),
    )


def missing_data(bed: NetBed) -> str:
    """Why the bed's data cannot be read (empty when it can): the missing path or variable."""
    if bed.dataset == "cifar100":
        if not bed.data_dir:
            return f"CIFAR-100 directory missing: set {CIFAR_ENV} (it is unset)"
        if not os.path.isdir(bed.data_dir):
            return f"CIFAR-100 directory missing: {CIFAR_ENV}={bed.data_dir} is not a directory"
    if bed.dataset == "fashion-mnist":
        from gpu.data import FASHION_MNIST_FILES as FILES
        from gpu.data import FASHION_MNIST_ROOT as DEFAULT_ROOT

        if not all((DEFAULT_ROOT / f).is_file() for f in FILES.values()):
            return f"Fashion-MNIST missing in {DEFAULT_ROOT} (Debian dataset-fashion-mnist)"
    return ""


def load_bed(bed: NetBed) -> tuple[gpu.Task, Callable[[int], Any], float]:
    """``(task, model_of_seed, chance_loss)``; ``chance_loss = ln(classes)``."""
    if bed.dataset == "digits":
        from gpu.data import load_digits

        ds = load_digits()
    elif bed.dataset == "fashion-mnist":
        from gpu.data import load_fashion_mnist

        ds = load_fashion_mnist(n_train=bed.n_train, n_test=1000)
    else:
        from gpu.data import load_cifar

        ds = load_cifar(bed.data_dir, 100, n_train=bed.n_train, n_test=1000)
    task = gpu.classification_task(ds, bed.batch)
    classes = int(ds.num_classes)
    if bed.model == "mlp":
        inputs = int(np.prod(ds.x_train.shape[1:]))

        def factory(r):
            return MLP(inputs, (bed.hidden,), classes, rngs=r)
    else:
        channels = int(ds.x_train.shape[-1])

        def factory(r):
            return ResNet(bed.depth, bed.width, classes, channels, rngs=r)

    return task, lambda seed: init_model(factory, seed), math.log(classes)


def train_seeds(
    make_tx: Callable[[], optax.GradientTransformation],
    bed: NetBed,
    *,
    seeds: list[int],
    steps: int,
    workers: int,
    chunk: int = 100,
    on_chunk: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Train one run per seed with ``make_tx()`` under geometric staleness of ``workers``.

    Args:
        make_tx: builds the optimizer once; it receives ``value=`` and ``staleness=``.
        bed: the network bed.
        seeds: one run per seed (initialisation, batches and delays of that seed).
        steps: updates per run.
        workers: ``M``; 1 is synchronous (``staleness=0`` is passed).
        chunk: steps per scanned call (one host sync per chunk).
        on_chunk: called with the steps done after every chunk.

    Returns:
        ``loss`` ``(seeds, steps)`` (batch loss at the parameters the gradient was taken at),
        ``tau`` and every scalar statistic the optimizer logs, same shape; and the run's speed
        and memory (:class:`gpu.ResourceMeter` over every seed's chunks, compilation excluded):
        ``steps_per_s`` and ``peak_bytes`` (0-d; NaN when not measured, e.g. a single chunk).

    Raises:
        ValueError: for an empty seed list, ``steps < 1`` or ``workers < 1``.
    """
    if not seeds or steps < 1 or workers < 1:
        raise ValueError(
            f"seeds non-empty, steps >= 1, workers >= 1 (got {seeds}, {steps}, {workers})"
        )
    task, model_of, _ = load_bed(bed)
    law = gpu.geometric(workers) if workers > 1 else gpu.fixed(0)
    tx = gpu.as_extra_args(make_tx())
    run = None
    meter = gpu.ResourceMeter()
    per_seed: list[dict[str, np.ndarray]] = []
    for j, s in enumerate(seeds):
        graphdef, state = gpu.init_state(model_of(int(s)), tx, int(s), law)
        if run is None:  # one compilation: every seed's state has the same structure
            run = gpu.scan_steps(
                gpu.make_step(graphdef, tx, task, staleness=law, pass_staleness=True)
            )
        history: dict[str, list[np.ndarray]] = {}
        done = 0
        while done < steps:
            n = min(chunk, steps - done)
            state, metrics = meter.run_chunk(run, state, task.train_data, n)
            for k, v in jax.device_get(metrics).items():
                history.setdefault(k, []).append(np.asarray(v, np.float64))
            done += n
            if on_chunk is not None:
                on_chunk(j * steps + done)
        per_seed.append({k: np.concatenate(v) for k, v in history.items()})
    out = {k: np.stack([r[k] for r in per_seed]) for k in per_seed[0]}
    res = meter.finish()
    out["steps_per_s"] = np.asarray(np.nan if res.steps_per_s is None else res.steps_per_s)
    out["peak_bytes"] = np.asarray(np.nan if res.peak_bytes is None else float(res.peak_bytes))
    return out


def staged_arm(
    name: str,
    make_tx: Callable[[], optax.GradientTransformation],
    bed: NetBed,
    *,
    seeds: list[int],
    steps: int,
    workers: int,
    keep: tuple[str, ...],
    done_before: float,
    total: float,
    what: str,
) -> dict[str, np.ndarray]:
    """:func:`train_seeds` as a resumable :func:`experiments.runtime.stage` keeping those of
    ``keep`` the optimizer logs (and ``loss``, ``steps_per_s``, ``peak_bytes``), reporting
    progress in units of steps x seeds out of ``total``."""

    def compute() -> dict[str, np.ndarray]:
        def tick(done: int) -> None:
            runtime.progress(done_before + done, total, what)

        out = train_seeds(make_tx, bed, seeds=seeds, steps=steps, workers=workers, on_chunk=tick)
        return {k: out[k] for k in ("loss", "steps_per_s", "peak_bytes", *keep) if k in out}

    res = runtime.stage(name, compute)
    runtime.progress(done_before + steps * len(seeds), total, what)
    return res


def pooled_ls(num: np.ndarray, den: np.ndarray, burn_in: int) -> np.ndarray:
    """Per-run least-squares reading ``sum_t num_t / sum_t den_t`` over steps ``t >= burn_in``.

    Example:
        >>> pooled_ls(np.array([[9.0, 1.0, 2.0]]), np.array([[1.0, 2.0, 2.0]]), 1).tolist()
        [0.75]
    """
    return num[:, burn_in:].sum(axis=1) / den[:, burn_in:].sum(axis=1)


def arm_resources(arms: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    """Steps/s (compilation excluded) and peak memory per arm, from :func:`staged_arm`'s output,
    for the record (None where not measured; memory as :mod:`gpu.resources` defines it)."""
    out = {}
    for name, r in arms.items():
        sps = float(r["steps_per_s"]) if "steps_per_s" in r else math.nan
        peak = float(r["peak_bytes"]) if "peak_bytes" in r else math.nan
        out[name] = {
            "steps_per_s": sps if math.isfinite(sps) else None,
            "peak_bytes": int(peak) if math.isfinite(peak) else None,
            "memory_source": "unavailable"
            if not math.isfinite(peak)
            else "compiled_memory_analysis"
            if gpu.device_peak_bytes() is None
            else "device_peak_bytes_in_use",
            "platform": jax.devices()[0].platform,
        }
    return out
