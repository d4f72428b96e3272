"""MNIST-1D generated locally with ``mnist1d.data.make_dataset`` (never downloaded)."""

from __future__ import annotations

import random

import numpy as np

from gpu.data._common import Dataset

#: Largest seed the generator accepts (it seeds ``np.random.seed``, which takes 32-bit seeds).
MAX_SEED = 2**32 - 1


def _is_int(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | np.integer)


def load_mnist1d(num_samples: int = 4000, seed: int = 42, train_split: float = 0.8) -> Dataset:
    """Generate MNIST-1D (Greydanus 2020): 10 classes of length-40 signals, shape ``(N, 40, 1)``.

    The generator makes ``num_samples // 10`` examples of each class, so ``num_samples`` must be a
    multiple of 10 (any other value would be rounded down silently; it is rejected instead). The
    generator's other arguments are the package defaults (``get_dataset_args()``); the split is
    the generator's own: the first ``int(num_samples * train_split)`` of the shuffled examples are
    the training set. The generator seeds the global ``random``/``np.random`` state; it is
    restored afterwards: the call has no side effect.

    Raises:
        FileNotFoundError: when the ``mnist1d`` package, or a package it imports, is not installed
            (the message names it and how to install it).
        ValueError: on ``num_samples`` not a multiple of 10 in [10, 10**6], ``seed`` not an integer
            in [0, 2**32 - 1], or ``train_split`` outside (0, 1) or leaving a split empty.

    Example:
        >>> ds = load_mnist1d(num_samples=100, seed=0)
        >>> ds.x_train.shape, ds.x_test.shape
        ((80, 40, 1), (20, 40, 1))
    """
    if not _is_int(num_samples) or not 10 <= num_samples <= 10**6 or num_samples % 10:
        raise ValueError(
            f"num_samples must be a multiple of 10 in [10, 1000000] (got {num_samples!r})"
        )
    if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer in [0, {MAX_SEED}] (got {seed!r})")
    if (
        isinstance(train_split, bool)
        or not isinstance(train_split, int | float)
        or not 0.0 < train_split < 1.0
    ):
        raise ValueError(f"train_split must lie in (0, 1) (got {train_split!r})")
    n_train = int(num_samples * float(train_split))
    if not 0 < n_train < num_samples:
        raise ValueError(
            f"train_split={train_split!r} leaves an empty split of {num_samples} samples "
            f"(train size int(num_samples * train_split) = {n_train})"
        )
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as err:
        missing = getattr(err, "name", None) or ""
        if missing and missing.split(".")[0] != "mnist1d":
            raise FileNotFoundError(
                f"MNIST-1D: the mnist1d package is installed but imports {missing!r}, which is "
                f"missing: pip install {missing.split('.')[0]}"
            ) from err
        raise FileNotFoundError("MNIST-1D needs the mnist1d package: pip install mnist1d") from err
    args = get_dataset_args()
    args.num_samples, args.seed, args.train_split = num_samples, int(seed), float(train_split)
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
    return Dataset.build(
        "mnist1d",
        data["x"][..., None],
        data["y"],
        data["x_test"][..., None],
        data["y_test"],
        10,
        {"source": "mnist1d.data.make_dataset", "num_samples": num_samples, "seed": int(seed)},
    )
