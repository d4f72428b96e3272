"""CIFAR-10/100 from a user-named directory of the standard python-pickle batches."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from gpu.data._common import Dataset, check_subset

_LAYOUT = {
    10: (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
        b"labels",
    ),
    100: ("cifar-100-python", ["train"], ["test"], b"fine_labels"),
}


def _hint(variant: int) -> str:
    folder = _LAYOUT[variant][0]
    return (
        f"CIFAR-{variant} is never downloaded: fetch the python version (folder {folder}) from "
        "https://www.cs.toronto.edu/~kriz/cifar.html once, unpack it, "
        "and pass its directory as root"
    )


def cifar_layout(variant: int) -> str:
    """The files :func:`load_cifar` reads, in words (for messages that name what is missing).

    Example:
        >>> cifar_layout(100)[:40]
        'ROOT/cifar-100-python/{train, test} (or '
    """
    if variant not in _LAYOUT:
        raise ValueError(f"variant must be 10 or 100 (got {variant!r})")
    folder, train, test, _ = _LAYOUT[variant]
    names = ", ".join(train + test) if variant == 100 else "data_batch_1 .. 5, test_batch"
    return (
        f"ROOT/{folder}/{{{names}}} (or those files directly in ROOT): "
        f"the python-pickle batches of CIFAR-{variant}"
    )


def find_cifar(root: str | Path | None) -> tuple[int, ...]:
    """The CIFAR variants (10, 100) whose batch files are all present under ``root`` (the unpacked
    folder or its parent); empty when ``root`` is None or holds neither.

    Example:
        >>> find_cifar(None)
        ()
    """
    if root is None or not str(root):
        return ()
    found = []
    for variant, (folder, train, test, _) in _LAYOUT.items():
        base = Path(root)
        base = base / folder if (base / folder).is_dir() else base
        if all((base / f).is_file() for f in train + test):
            found.append(variant)
    return tuple(found)


def _read_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    with path.open("rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise ValueError(f"{path} is not a CIFAR batch (data shape {data.shape})")
    # rows are 1024 red, 1024 green, 1024 blue values of a 32x32 image: to NHWC
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def load_cifar(
    root: str | Path | None,
    variant: int = 10,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
) -> Dataset:
    """Load CIFAR-10 or CIFAR-100 (fine labels) as ``(N, 32, 32, 3)`` float32 in [0, 1].

    ``root`` is the unpacked folder (``cifar-10-batches-py`` / ``cifar-100-python``) or its parent.
    The split is the original one (50000/10000); ``n_train``/``n_test`` keep the first examples.

    Raises:
        ValueError: ``root`` not given (with how to obtain the data), ``variant`` not 10 or 100,
            a bad subset size, or a corrupt batch.
        FileNotFoundError: when a batch file is missing (with how to obtain the data).
    """
    if variant not in _LAYOUT:
        raise ValueError(f"variant must be 10 or 100 (got {variant!r})")
    if root is None or not isinstance(root, str | Path):
        raise ValueError(f"root must name a directory (got {root!r}): {_hint(variant)}")
    folder, train_files, test_files, label_key = _LAYOUT[variant]
    base = Path(root)
    if (base / folder).is_dir():
        base = base / folder
    missing = [f for f in train_files + test_files if not (base / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-{variant} batches {missing} not found in {base}: {_hint(variant)}"
        )
    parts = {
        split: [_read_batch(base / f, label_key) for f in files]
        for split, files in (("train", train_files), ("test", test_files))
    }
    x_tr = np.concatenate([p[0] for p in parts["train"]])
    y_tr = np.concatenate([p[1] for p in parts["train"]])
    x_te = np.concatenate([p[0] for p in parts["test"]])
    y_te = np.concatenate([p[1] for p in parts["test"]])
    if y_tr.min() < 0 or max(y_tr.max(), y_te.max()) >= variant:
        raise ValueError(f"{base}: labels outside [0, {variant})")
    ntr = check_subset("n_train", n_train, len(y_tr))
    nte = check_subset("n_test", n_test, len(y_te))
    scale = np.float32(1.0 / 255.0)
    return Dataset.build(
        f"cifar{variant}",
        x_tr[:ntr] * scale,
        y_tr[:ntr],
        x_te[:nte] * scale,
        y_te[:nte],
        variant,
        {"source": str(base), "n_train": ntr, "n_test": nte},
    )
