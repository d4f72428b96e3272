"""Compiled model construction."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import jax
from flax import nnx

M = TypeVar("M", bound=nnx.Module)


def init_model(factory: Callable[[nnx.Rngs], M], seed: int) -> M:
    """Build ``factory(nnx.Rngs(seed))`` inside one ``jax.jit`` (eager construction dispatches every
    initialiser separately, which dominates start-up for deep networks on a busy CPU).

    Example:
        >>> from gpu.models import ResNet
        >>> net = init_model(lambda r: ResNet(depth=8, width=4, rngs=r), seed=0)
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0 (got {seed!r})")
    graphdef, _ = nnx.split(nnx.eval_shape(lambda: factory(nnx.Rngs(seed))))
    state = jax.jit(lambda: nnx.split(factory(nnx.Rngs(seed)))[1])()
    return nnx.merge(graphdef, state)
