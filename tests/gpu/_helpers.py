"""Small shared fixtures for the gpu tests."""

from __future__ import annotations

import functools

import jax
import numpy as np
from flax import nnx

from gpu.data import load_digits
from gpu.models import MLP
from gpu.tasks import Task, classification_task


@functools.cache
def digits_task(batch_size: int = 32) -> Task:
    return classification_task(load_digits(), batch_size)


def mlp(seed: int = 0, hidden: tuple[int, ...] = (16,)) -> MLP:
    return MLP(64, hidden, 10, rngs=nnx.Rngs(seed))


def leaves_equal(a: object, b: object) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb, strict=True)
    )
