"""The dataset container shared by every loader: numpy arrays, a fixed split and a checksum."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


def checksum(*arrays: np.ndarray) -> str:
    """SHA-256 over the dtype, shape and bytes of each array, in order (hex digest).

    Two loads of the same source give the same digest on every platform, so a record can state
    exactly which data it was measured on.
    """
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Dataset:
    """A classification data set with a fixed train/test split.

    Attributes:
        name: short name, e.g. ``"digits"``.
        x_train, y_train, x_test, y_test: inputs (float32, channels last for images) and integer
            labels (int32).
        num_classes: number of classes.
        checksum: :func:`checksum` of the four arrays.
        info: free-form provenance (source path, generator arguments).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    checksum: str
    info: dict = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        name: str,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_test: np.ndarray,
        y_test: np.ndarray,
        num_classes: int,
        info: dict | None = None,
    ) -> Dataset:
        """Cast to float32/int32, check the shapes agree and compute the checksum."""
        x_train = np.ascontiguousarray(x_train, dtype=np.float32)
        x_test = np.ascontiguousarray(x_test, dtype=np.float32)
        y_train = np.ascontiguousarray(y_train, dtype=np.int32)
        y_test = np.ascontiguousarray(y_test, dtype=np.int32)
        if len(x_train) != len(y_train) or len(x_test) != len(y_test):
            raise ValueError(f"{name}: inputs and labels differ in length")
        digest = checksum(x_train, y_train, x_test, y_test)
        return cls(name, x_train, y_train, x_test, y_test, num_classes, digest, dict(info or {}))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example."""
        return tuple(self.x_train.shape[1:])


def check_subset(name: str, value: int | None, available: int) -> int:
    """Validate an optional subset size in ``[1, available]``; ``None`` means everything."""
    if value is None:
        return available
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or not (1 <= value <= available)
    ):
        raise ValueError(f"{name} must be an integer in [1, {available}] or None (got {value!r})")
    return int(value)
