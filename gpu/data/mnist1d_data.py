"""MNIST-1D generated locally with ``mnist1d.data.make_dataset`` (never downloaded)."""

from __future__ import annotations

import random

import numpy as np

from gpu.data._common import Dataset


def load_mnist1d(num_samples: int = 4000, seed: int = 42, train_split: float = 0.8) -> Dataset:
    """Generate MNIST-1D (Greydanus 2020): 10 classes of length-40 signals, shape ``(N, 40, 1)``.

    The generator's other arguments are the package defaults (``get_dataset_args()``); the split is
    the generator's own (first ``train_split`` of the shuffled examples). The generator seeds the
    global ``random``/``np.random`` state; it is restored afterwards: the call has no side effect.

    Raises:
        FileNotFoundError: when the ``mnist1d`` package is not installed (how to install it).
        ValueError: on ``num_samples`` outside [10, 10**6] or ``train_split`` outside (0, 1).
    """
    if (
        isinstance(num_samples, bool)
        or not isinstance(num_samples, int)
        or not (10 <= num_samples <= 10**6)
    ):
        raise ValueError(f"num_samples must be an integer in [10, 1000000] (got {num_samples!r})")
    if not (0.0 < train_split < 1.0):
        raise ValueError(f"train_split must lie in (0, 1) (got {train_split!r})")
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as err:
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
