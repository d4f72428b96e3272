"""Data, models and held-out subsets of experiment 11 (yellowfin-vs-adam), and what is missing.

The ResNet reads the digits, Fashion-MNIST or CIFAR-10/100 (from ``cifar_dir``, the gpu tier's
``$MOMLAB_CIFAR_DIR``); the LSTM reads the embedded pydoc snapshot or ``text_path`` (the gpu tier's
``$MOMLAB_TEXT``), as characters or words (:func:`gpu.data.load_text`). Data that the user must
provide and did not is not an error: :func:`build` returns the reason, naming the environment
variable and the expected layout, and the experiment records it as a failed precondition.

The held-out subset is ``eval_examples`` test images (or test windows of ``seq_len`` tokens for the
LSTM) at evenly spaced positions of the test set, fixed for every method, seed and step.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gpu import Task, classification_task, language_model_task
from gpu.data import (
    cifar_layout,
    find_cifar,
    load_cifar,
    load_digits,
    load_fashion_mnist,
    load_text,
)
from gpu.models import CharLSTM, ResNet, init_model

#: Floating-point operations per second of one member step, measured at full size on the quiet
#: 2-core machine (a 9-member Adam grid, seconds per member step): small convolutions run far
#: below the LSTM's matrix products, so progress weighs each task's steps by
#: ``flops_per_step / FLOPS_PER_CPU_S``.
FLOPS_PER_CPU_S = {"resnet": 0.058e9 / 0.0062, "lstm": 1.167e9 / 0.021}
CIFAR_ENV = "MOMLAB_CIFAR_DIR"
TEXT_ENV = "MOMLAB_TEXT"


@dataclass
class Built:
    """One task ready to train, or the reason it cannot be.

    Attributes:
        task: data and sampler (None when ``missing``).
        models: one initial model per seed.
        chance: the loss of a uniform prediction, ``log(classes)`` or ``log(vocabulary)``.
        eval_x, eval_y: the fixed held-out subset.
        eval_batch: examples per evaluation batch (divides ``len(eval_x)``).
        unit: ``"image"``, ``"character"`` or ``"word"`` (perplexity is per character or word).
        data: name, checksum and provenance of the data.
        missing: empty, or which user path is missing and the layout expected there.
    """

    task: Task | None = None
    models: list = field(default_factory=list)
    chance: float = math.nan
    eval_x: np.ndarray | None = None
    eval_y: np.ndarray | None = None
    eval_batch: int = 1
    unit: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    missing: str = ""


def missing_data(name: str, cfg: Any) -> str:
    """Why task ``name`` cannot read its data under ``cfg`` (empty when it can)."""
    if name == "resnet" and cfg.resnet_data in ("cifar10", "cifar100"):
        variant = int(cfg.resnet_data.removeprefix("cifar"))
        if variant in find_cifar(cfg.cifar_dir or None):
            return ""
        where = (
            f"${CIFAR_ENV} is not set"
            if not cfg.cifar_dir
            else f"${CIFAR_ENV}={cfg.cifar_dir} does not hold CIFAR-{variant}"
        )
        return f"{where}: expected {cifar_layout(variant)} (never downloaded at run time)"
    if name == "lstm":
        if cfg.text_path and not Path(cfg.text_path).is_file():
            return f"${TEXT_ENV}={cfg.text_path} is not a file: expected a UTF-8 text corpus"
        if cfg.lstm_tokens == "word" and not cfg.text_path:
            return (
                f"${TEXT_ENV} is not set: expected the path of a UTF-8 text corpus for the "
                "word-level LSTM (e.g. a Penn Treebank file, one sentence per line)"
            )
    return ""


def _spaced(n_available: int, n: int) -> np.ndarray:
    """``n`` (at most ``n_available``) evenly spaced indices of ``range(n_available)``."""
    n = min(n, n_available)
    return np.unique(np.linspace(0, n_available - 1, n).round().astype(np.int64))


def _subset(x: np.ndarray, y: np.ndarray, n: int, batch: int) -> tuple[np.ndarray, ...]:
    idx = _spaced(len(x), n)
    eb = max(1, min(batch, len(idx)))
    idx = idx[: len(idx) // eb * eb]
    return x[idx], y[idx], eb


def build(name: str, cfg: Any, seed: int) -> Built:
    """Task ``name`` (``"resnet"`` or ``"lstm"``) with ``cfg.seeds`` models (seeds ``seed + s``)."""
    missing = missing_data(name, cfg)
    if missing:
        return Built(missing=missing)
    if name == "resnet":
        if cfg.resnet_data == "digits":
            ds = load_digits()
        elif cfg.resnet_data == "fashion-mnist":
            ds = load_fashion_mnist(n_train=cfg.resnet_n_train)
        else:
            variant = int(cfg.resnet_data.removeprefix("cifar"))
            ds = load_cifar(cfg.cifar_dir, variant, n_train=cfg.resnet_n_train)
        task = classification_task(ds, cfg.resnet_batch)
        channels, classes = ds.x_train.shape[-1], ds.num_classes
        models = [
            init_model(
                lambda r: ResNet(
                    depth=cfg.resnet_depth,
                    width=cfg.resnet_width,
                    num_classes=classes,
                    in_channels=channels,
                    rngs=r,
                ),
                seed + s,
            )
            for s in range(cfg.seeds)
        ]
        ex, ey, eb = _subset(ds.x_test, ds.y_test, cfg.eval_examples, cfg.eval_batch)
        return Built(task, models, math.log(classes), ex, ey, eb, "image", _provenance(ds, task))
    ds = load_text(
        cfg.text_path or None,
        level=cfg.lstm_tokens,
        **({"vocab_size": cfg.lstm_vocab} if cfg.lstm_tokens == "word" else {}),
    )
    task = language_model_task(ds, cfg.lstm_batch, cfg.lstm_seq_len)
    models = [
        init_model(
            lambda r: CharLSTM(
                ds.vocab_size,
                embed=cfg.lstm_embed,
                hidden=cfg.lstm_hidden,
                num_layers=cfg.lstm_layers,
                rngs=r,
            ),
            seed + s,
        )
        for s in range(cfg.seeds)
    ]
    ex, ey, eb = _subset(task.x_test, task.y_test, cfg.eval_examples, cfg.eval_batch)
    unit = "word" if cfg.lstm_tokens == "word" else "character"
    data = {**_provenance(ds, task), "vocab_size": ds.vocab_size, "level": cfg.lstm_tokens}
    return Built(task, models, math.log(ds.vocab_size), ex, ey, eb, unit, data)


def _provenance(ds: Any, task: Task) -> dict[str, Any]:
    return {"name": ds.name, "checksum": task.checksum, **{k: v for k, v in ds.info.items()}}


def flops_per_step(name: str, cfg: Any, built: Built) -> float:
    """Estimated floating-point operations of one training step of one member (the unit of the
    progress reports, so that ResNet and LSTM steps weigh what they cost).

    ResNet: ``3 B sum_conv 2 H W k^2 c_in c_out`` over the stem, every block's two 3x3 convolutions
    and the 1x1 projections (forward once, backward twice). LSTM: ``3 B T (sum_layers 8 (n_in + h) h
    + 2 h V)`` (gates and the read-out).
    """
    if built.task is None:
        return 0.0
    if name == "lstm":
        sizes = [cfg.lstm_embed] + [cfg.lstm_hidden] * cfg.lstm_layers
        vocab = round(math.exp(built.chance))
        per_token = sum(8 * (a + b) * b for a, b in itertools.pairwise(sizes))
        per_token += 2 * cfg.lstm_hidden * vocab
        return 3.0 * cfg.lstm_batch * cfg.lstm_seq_len * per_token
    h, w, cin = built.eval_x.shape[1:4]
    width, n = cfg.resnet_width, (cfg.resnet_depth - 2) // 6
    total = 2.0 * h * w * 9 * cin * width
    cin = width
    for stage in range(3):
        cout = width * 2**stage
        for i in range(n):
            if stage > 0 and i == 0:
                h, w = -(-h // 2), -(-w // 2)
            total += 2.0 * h * w * 9 * (cin + cout) * cout
            if cin != cout:
                total += 2.0 * h * w * cin * cout
            cin = cout
    return 3.0 * cfg.resnet_batch * total
