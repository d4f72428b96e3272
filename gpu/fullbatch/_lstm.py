"""A deterministic full-batch character LSTM objective on a flat float64 parameter vector.

``f(w) = mean_{s, t} CE(LSTM_w(x_{s, <=t}), x_{s, t+1}) + (lambda / 2) |w|^2`` over a fixed set of
``num_sequences`` windows of ``seq_len + 1`` characters of the training text (the same windows at
every step, so the gradient is deterministic). The characters are re-coded to the ones present in
those windows, so that no embedding row or read-out column is untouched by the data (such a
parameter only sees the weight decay, a Hessian row ``lambda e_i``). The weight decay makes a
minimiser exist. The network is :class:`gpu.models.CharLSTM` evaluated in float64.

With ``train_embedding=False`` the embedding table stays at its random initial value and ``w``
holds the other parameters. A trained embedding ``E`` and input kernel ``W_i`` enter the loss only
through ``E W_i``, and ``(E R, R^T W_i)`` for any orthogonal ``R`` has the same product and the same
``|w|^2``: every minimiser with ``E != 0`` lies on a manifold of minimisers, with
``embed (embed - 1) / 2`` zero Hessian eigenvalues, and the one isolated candidate is
``E = 0, W_i = 0``, a network that ignores its input (a local minimum when ``lambda`` exceeds the
largest singular value of the cross curvature between ``E`` and ``W_i`` there). A fixed embedding
removes the symmetry, and the input enters linearly in ``W_i``, so ``W_i = 0`` is not stationary.

Whether a minimiser reads its input is measured against two input-ignoring references
(:class:`CharLSTMProblem`): the best constant predictor of the next character, whose cross-entropy
is the entropy ``H = -sum_c q_c log q_c`` of the target characters' frequencies ``q`` (a constant
distribution ``p`` scores ``H + KL(q || p) >= H``), and the same network with its input kernel set
to zero (the LSTM then sees no input, so its prediction depends on the position only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.flatten_util import ravel_pytree

from gpu.data.text import TextDataset
from gpu.fullbatch._problem import FlatProblem
from gpu.models import CharLSTM


@dataclass(frozen=True)
class CharLSTMProblem(FlatProblem):
    """A :class:`FlatProblem` that knows its windows, for the input-use measurements.

    Attributes:
        targets: the predicted characters, re-coded, shape ``(num_sequences, seq_len)``.
        input_kernel: the slice of ``w`` that holds the LSTM's input kernel ``W_i``.
    """

    targets: np.ndarray | None = None
    input_kernel: slice = field(default_factory=lambda: slice(0, 0))

    def data_losses(self, w: np.ndarray) -> np.ndarray:
        """Per window ``s``: ``mean_t CE(LSTM_w(x_{s, <=t}), x_{s, t+1})`` (no weight decay)."""
        reg = 0.5 * self.weight_decay * float(np.dot(w, w))
        with jax.enable_x64(True):
            one = jax.jit(self.batch_loss)
            wj = jnp.asarray(w, jnp.float64)
            return (
                np.array([float(one(wj, jnp.array([s]))) for s in range(self.num_examples)]) - reg
            )

    def constant_losses(self) -> np.ndarray:
        """Per window: the mean of ``-log q_c`` over its targets, ``q`` the targets' frequencies
        over all windows (the best constant predictor; the mean over windows is ``H``)."""
        _, inverse, counts = np.unique(self.targets, return_inverse=True, return_counts=True)
        nll = -np.log(counts / counts.sum())[inverse.reshape(self.targets.shape)]
        return nll.mean(axis=1)

    def without_input(self, w: np.ndarray) -> np.ndarray:
        """``w`` with the input kernel set to zero (the network then ignores its input)."""
        out = np.array(w, np.float64)
        out[self.input_kernel] = 0.0
        return out


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
    train_embedding: bool = True,
    embedding_scale: float = 1.0,
) -> CharLSTMProblem:
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
        train_embedding: whether ``w`` includes the embedding table (else it stays at its
            initial value times ``embedding_scale``; module docstring).
        embedding_scale: ``> 0``, the fixed table's factor (with ``train_embedding=False``).

    Returns:
        A :class:`CharLSTMProblem`; ``batch_loss(w, rows)`` is the loss over the windows ``rows``.

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
    if not embedding_scale > 0:
        raise ValueError(f"embedding_scale must be > 0 (got {embedding_scale!r})")
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
    leaves = [
        (jax.tree_util.keystr(k), np.shape(a))
        for k, a in jax.tree_util.tree_leaves_with_path(state)
    ]
    # ravel_pytree packs the leaves in this order: the embedding first, the input kernel last
    if "embed" not in leaves[0][0] or "dense_i" not in leaves[-1][0]:
        raise RuntimeError(f"unexpected parameter order of CharLSTM: {[k for k, _ in leaves]}")
    shapes = tuple(tuple(shape) for _, shape in leaves)
    fixed = 0 if train_embedding else int(np.prod(shapes[0]))
    frozen = float(embedding_scale) * np.asarray(flat, np.float64)[:fixed]
    init = np.asarray(flat, np.float64)[fixed:]
    shapes = shapes[1:] if fixed else shapes

    def batch_loss(w: jax.Array, rows: jax.Array) -> jax.Array:
        seqs = jnp.asarray(coded)[rows]
        full = jnp.concatenate([jnp.asarray(frozen, w.dtype), w]) if fixed else w
        logits = nnx.merge(graphdef, unravel(full))(seqs[:, :-1])
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, seqs[:, 1:]).mean()
        return ce + 0.5 * lam * jnp.sum(w * w)

    every = np.arange(num_sequences)

    def loss(w: jax.Array) -> jax.Array:
        return batch_loss(w, jnp.asarray(every))

    name = f"{text.name}-char-lstm-{embed}x{hidden}-{num_sequences}x{seq_len}"
    name += "" if train_embedding else "-fixed-embedding"
    kernel = int(np.prod(shapes[-1]))
    return CharLSTMProblem(
        name,
        loss,
        init,
        shapes,
        lam,
        batch_loss,
        num_sequences,
        targets=coded[:, 1:],
        input_kernel=slice(init.size - kernel, init.size),
    )
