"""A character-level LSTM language model in flax nnx."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
from flax import nnx


class CharLSTM(nnx.Module):
    """Embedding, ``num_layers`` stacked LSTMs (``nnx.OptimizedLSTMCell`` scanned by ``nnx.RNN``)
    and a linear read-out giving next-character logits of shape ``(batch, time, vocab_size)``.

    Example:
        >>> from flax import nnx
        >>> lm = CharLSTM(vocab_size=50, embed=16, hidden=32, rngs=nnx.Rngs(0))
    """

    def __init__(
        self,
        vocab_size: int,
        embed: int = 64,
        hidden: int = 256,
        num_layers: int = 1,
        *,
        rngs: nnx.Rngs,
    ) -> None:
        if vocab_size < 2 or embed < 1 or hidden < 1 or num_layers < 1:
            raise ValueError(
                "vocab_size must be >= 2 and embed, hidden, num_layers >= 1 "
                f"(got {vocab_size}, {embed}, {hidden}, {num_layers})"
            )
        self.embed = nnx.Embed(vocab_size, embed, rngs=rngs)
        sizes = [embed] + [hidden] * num_layers
        self.layers = nnx.List(
            nnx.RNN(nnx.OptimizedLSTMCell(a, b, rngs=rngs), rngs=False)
            for a, b in itertools.pairwise(sizes)
        )
        self.head = nnx.Linear(hidden, vocab_size, rngs=rngs)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        x = self.embed(tokens)
        for layer in self.layers:
            zeros = jnp.zeros((*x.shape[:-2], layer.cell.hidden_features), x.dtype)
            x = layer(x, initial_carry=(zeros, zeros))  # the carry starts at zero: no rng state
        return self.head(x)
