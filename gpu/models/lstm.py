"""An LSTM language model in flax nnx, over characters or words (:func:`gpu.data.load_text`).

The same module serves both: the vocabulary size sets the embedding table and the read-out. A
character model needs a small embedding (16-64 for about 100 characters); a word model over a
10000-word vocabulary needs a larger one (200-650 in the Penn Treebank models of Zaremba et al.,
"Recurrent Neural Network Regularization", 2014), and its read-out dominates the cost per token
(``2 hidden x vocab_size`` operations forward).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
from flax import nnx


class CharLSTM(nnx.Module):
    """Embedding, ``num_layers`` stacked LSTMs (``nnx.OptimizedLSTMCell`` scanned by ``nnx.RNN``)
    and a linear read-out giving next-token logits of shape ``(batch, time, vocab_size)``.

    The name is historical: tokens may be characters or words (``vocab_size`` of either).

    Example:
        >>> from flax import nnx
        >>> lm = CharLSTM(vocab_size=50, embed=16, hidden=32, rngs=nnx.Rngs(0))
        >>> words = CharLSTM(10000, embed=200, hidden=200, num_layers=2, rngs=nnx.Rngs(0))
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
