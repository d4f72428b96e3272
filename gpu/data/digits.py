"""scikit-learn's 8x8 handwritten digits: the embedded default (no file outside the install)."""

from __future__ import annotations

import numpy as np

from gpu.data._common import Dataset

#: Size of the fixed test split (about 20 % of the 1797 images).
TEST_SIZE = 360
#: Seed of the fixed permutation that defines the split (part of the data set's definition).
SPLIT_SEED = 0


def load_digits() -> Dataset:
    """Load the 1797 8x8 digit images, pixels scaled to [0, 1], shape ``(N, 8, 8, 1)``.

    The split is a fixed permutation (``np.random.default_rng(SPLIT_SEED)``): the last
    ``TEST_SIZE`` images are the test set.

    Example:
        >>> ds = load_digits()
        >>> ds.x_train.shape, ds.x_test.shape, ds.num_classes
        ((1437, 8, 8, 1), (360, 8, 8, 1), 10)
    """
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as err:  # pragma: no cover - scikit-learn is a dependency
        raise FileNotFoundError(
            "the digits data set comes with scikit-learn: pip install scikit-learn"
        ) from err
    bunch = _sk_load_digits()
    x = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[..., None]
    y = np.asarray(bunch.target, dtype=np.int32)
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    tr, te = perm[:-TEST_SIZE], perm[-TEST_SIZE:]
    return Dataset.build(
        "digits", x[tr], y[tr], x[te], y[te], 10, {"source": "sklearn.datasets.load_digits"}
    )
