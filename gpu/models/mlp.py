"""A multilayer perceptron classifier in flax nnx."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import jax
from flax import nnx


class MLP(nnx.Module):
    """``Linear -> relu`` per hidden layer, then a linear read-out; inputs are flattened.

    Example:
        >>> from flax import nnx
        >>> model = MLP(64, (32,), 10, rngs=nnx.Rngs(0))
    """

    def __init__(
        self, in_features: int, hidden: Sequence[int], num_classes: int, *, rngs: nnx.Rngs
    ) -> None:
        if in_features < 1 or num_classes < 2 or any(h < 1 for h in hidden):
            raise ValueError(
                "in_features and hidden sizes must be >= 1 and num_classes >= 2 "
                f"(got {in_features}, {tuple(hidden)}, {num_classes})"
            )
        sizes = [in_features, *hidden]
        self.layers = nnx.List(nnx.Linear(a, b, rngs=rngs) for a, b in itertools.pairwise(sizes))
        self.head = nnx.Linear(sizes[-1], num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        for layer in self.layers:
            x = jax.nn.relu(layer(x))
        return self.head(x)
