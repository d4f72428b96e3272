"""A tiny CIFAR directory in the standard python-pickle layout, for tests that must not download."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def write_fake_cifar(root: Path, variant: int = 10, per_batch: int = 12, seed: int = 0) -> Path:
    """Write ``cifar-10-batches-py`` (5 training batches and a test batch) or ``cifar-100-python``
    (train, test) under ``root`` with ``per_batch`` random 32x32x3 images per file; returns root.

    Each image is class-coloured noise (mean intensity grows with the label): learnable.
    """
    rng = np.random.default_rng(seed)
    classes = variant
    if variant == 10:
        folder, files, key = (
            root / "cifar-10-batches-py",
            [
                *(f"data_batch_{i}" for i in range(1, 6)),
                "test_batch",
            ],
            b"labels",
        )
    else:
        folder, files, key = root / "cifar-100-python", ["train", "test"], b"fine_labels"
    folder.mkdir(parents=True, exist_ok=True)
    for name in files:
        labels = rng.integers(0, classes, per_batch)
        base = (labels[:, None] * (200 // classes)).astype(np.int64)
        data = np.clip(base + rng.integers(0, 56, (per_batch, 3 * 32 * 32)), 0, 255)
        with (folder / name).open("wb") as fh:
            pickle.dump({b"data": data.astype(np.uint8), key: labels.tolist()}, fh)
    return root
