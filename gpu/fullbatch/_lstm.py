"""A deterministic full-batch character LSTM objective on a flat float64 parameter vector.

``f(w) = mean_{s, t} CE(LSTM_w(x_{s, <=t}), x_{s, t+1}) + (lambda / 2) |w|^2`` over a fixed set of
``num_sequences`` windows of ``seq_len + 1`` characters of the training text (the same windows at
every step, so the gradient is deterministic). The characters are re-coded to the ones present in
those windows, so that no embedding row or read-out column is untouched by the data (such a
parameter only sees the weight decay, a Hessian row ``lambda e_i``). The weight decay makes a
minimiser exist. The network is :class:`gpu.models.CharLSTM` evaluated in float64.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.flatten_util import ravel_pytree

from gpu.data.text import TextDataset
from gpu.fullbatch._problem import FlatProblem
from gpu.models import CharLSTM


def _float64_model(model: nnx.Module) -> None:
    """Make every layer with a fixed computation dtype compute in float64 (``nnx.Embed`` defaults
    to float32, which would round the whole network's activations)."""
    for _, node in nnx.iter_graph(model):
        if isinstance(node, nnx.Module) and getattr(node, "dtype", None) is not None:
            node.dtype = jnp.float64


def char_lstm_problem(
    text: TextDataset,
    *,
    num_sequences: int = 16,
    seq_len: int = 32,
    embed: int = 8,
    hidden: int = 16,
    weight_decay: float = 1e-2,
    seed: int = 0,
) -> FlatProblem:
    """The full-batch character LSTM of the module docstring.

    The windows start at ``num_sequences`` distinct offsets drawn by
    ``np.random.default_rng(seed)``;
    the network is initialised by ``nnx.Rngs(seed)``.

    Args:
        text: the character data (:func:`gpu.data.load_text`).
        num_sequences: windows in the batch, >= 1.
        seq_len: characters predicted per window, >= 1.
        embed, hidden: the LSTM's sizes, >= 1.
        weight_decay: ``lambda > 0``.
        seed: >= 0.

    Returns:
        A :class:`FlatProblem`; ``batch_loss(w, rows)`` is the loss over the windows ``rows``.

    Raises:
        ValueError: naming the argument out of range.

    Example:
        >>> from gpu.data import load_text
        >>> p = char_lstm_problem(load_text(), num_sequences=2, seq_len=4, embed=2, hidden=2)
        >>> p.init.dtype
        dtype('float64')
    """
    for name, value in (
        ("num_sequences", num_sequences),
        ("seq_len", seq_len),
        ("embed", embed),
        ("hidden", hidden),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1 (got {value!r})")
    if not weight_decay > 0:
        raise ValueError(f"weight_decay must be > 0 (got {weight_decay!r})")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0 (got {seed!r})")
    room = len(text.train) - seq_len - 1
    if num_sequences > room:
        raise ValueError(f"num_sequences must be <= {room} for this text (got {num_sequences})")
    starts = np.sort(np.random.default_rng(seed).choice(room, num_sequences, replace=False))
    windows = np.stack([text.train[s : s + seq_len + 1] for s in starts])
    chars, coded = np.unique(windows, return_inverse=True)
    coded = coded.reshape(windows.shape).astype(np.int32)
    vocab = max(int(chars.size), 2)
    model = CharLSTM(vocab, embed=embed, hidden=hidden, rngs=nnx.Rngs(seed))
    _float64_model(model)
    graphdef, state = nnx.split(model)
    lam = float(weight_decay)
    with jax.enable_x64(True):
        flat, unravel = ravel_pytree(jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), state))
    init = np.asarray(flat, np.float64)
    shapes = tuple(tuple(np.shape(a)) for a in jax.tree.leaves(state))

    def batch_loss(w: jax.Array, rows: jax.Array) -> jax.Array:
        seqs = jnp.asarray(coded)[rows]
        logits = nnx.merge(graphdef, unravel(w))(seqs[:, :-1])
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, seqs[:, 1:]).mean()
        return ce + 0.5 * lam * jnp.sum(w * w)

    every = np.arange(num_sequences)

    def loss(w: jax.Array) -> jax.Array:
        return batch_loss(w, jnp.asarray(every))

    name = f"{text.name}-char-lstm-{embed}x{hidden}-{num_sequences}x{seq_len}"
    return FlatProblem(name, loss, init, shapes, lam, batch_loss, num_sequences)
