"""Training tasks: device-resident data, pure batch samplers, the loss and evaluation.

A batch is a pure function of ``(data, key, step)``, so a run is reproducible from its seed and a
resumed run draws exactly the batches the uninterrupted run would have drawn. The training set is
put on the device once, when the task is built, and the batch is drawn inside the compiled step,
so no step waits for data from the host (a test runs a chunk under ``jax.transfer_guard``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from gpu.data import Dataset, TextDataset
from gpu.shuffle import permuted_index

Batch = tuple[jax.Array, jax.Array]

#: Largest training set that ``classification_task(shuffle="auto")`` shuffles by sorting.
SORT_MAX_EXAMPLES = 4096


@dataclass(frozen=True)
class Task:
    """What a trainer needs besides the model and the optimizer.

    Attributes:
        name: data set name.
        train_data: pytree of device arrays handed to ``sample`` (an argument of the jitted step, so
            large data never becomes a compile-time constant).
        sample: pure ``sample(train_data, key, step) -> (inputs, targets)``.
        x_test, y_test: evaluation inputs and targets (numpy).
        batch_size: training batch size.
        checksum: the data set's checksum (for records).
    """

    name: str
    train_data: Any
    sample: Callable[[Any, jax.Array, jax.Array], Batch]
    x_test: np.ndarray
    y_test: np.ndarray
    batch_size: int
    checksum: str


def _check_int(name: str, value: int, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}] (got {value!r})")
    return int(value)


def classification_task(ds: Dataset, batch_size: int = 128, shuffle: str = "auto") -> Task:
    """Mini-batches drawn without replacement within an epoch.

    Epoch ``e = step // (n // batch_size)`` visits the training set in the order of a random
    permutation ``pi_e`` keyed by ``fold_in(key, e)``; the step takes the entries
    ``pi_e(pos B), ..., pi_e(pos B + B - 1)``, ``pos = step % (n // batch_size)``.

    Args:
        ds: the data set.
        batch_size: ``B``, in ``[1, n]``.
        shuffle: how ``pi_e`` is computed. ``"sort"``: ``jax.random.permutation`` (sorts ``n``
            random keys every step, ``O(n log n)``); ``"feistel"``:
            :func:`gpu.shuffle.permuted_index` evaluates a keyed bijection at the step's ``B``
            positions only (``O(B)``); ``"auto"``: ``"sort"`` up to :data:`SORT_MAX_EXAMPLES`
            examples (the digits, MNIST-1D), ``"feistel"`` above (Fashion-MNIST, CIFAR), where the
            sort would cost several times the step of a small network.

    Raises:
        ValueError: for a batch size outside ``[1, n]`` or an unknown ``shuffle``.
    """
    n = len(ds.y_train)
    B = _check_int("batch_size", batch_size, 1, n)
    if shuffle not in ("auto", "sort", "feistel"):
        raise ValueError(f"shuffle must be 'auto', 'sort' or 'feistel' (got {shuffle!r})")
    if shuffle == "auto":
        shuffle = "sort" if n <= SORT_MAX_EXAMPLES else "feistel"
    per_epoch = n // B

    def sample(data: Any, key: jax.Array, step: jax.Array) -> Batch:
        x, y = data
        epoch, pos = step // per_epoch, step % per_epoch
        epoch_key = jax.random.fold_in(key, epoch)
        if shuffle == "sort":
            perm = jax.random.permutation(epoch_key, n)
            idx = jax.lax.dynamic_slice(perm, (pos * B,), (B,))
        else:
            idx = permuted_index(epoch_key, pos * B + jnp.arange(B), n)
        return x[idx], y[idx]

    data = (jnp.asarray(ds.x_train), jnp.asarray(ds.y_train))
    return Task(ds.name, data, sample, ds.x_test, ds.y_test, B, ds.checksum)


def language_model_task(ds: TextDataset, batch_size: int = 32, seq_len: int = 64) -> Task:
    """Next-character prediction on random windows of ``seq_len + 1`` characters of the training
    stream (start positions uniform, from ``fold_in(key, step)``); the test stream is cut into
    consecutive non-overlapping windows."""
    T = _check_int("seq_len", seq_len, 1, max(1, len(ds.test) - 1))
    B = _check_int("batch_size", batch_size, 1, 1 << 20)
    n = len(ds.train)

    def sample(data: Any, key: jax.Array, step: jax.Array) -> Batch:
        starts = jax.random.randint(jax.random.fold_in(key, step), (B,), 0, n - T)
        windows = data[starts[:, None] + jnp.arange(T + 1)]
        return windows[:, :-1], windows[:, 1:]

    m = (len(ds.test) - 1) // T
    test = ds.test[: m * T + 1]
    x_test = test[:-1].reshape(m, T)
    y_test = test[1:].reshape(m, T)
    return Task(ds.name, jnp.asarray(ds.train), sample, x_test, y_test, B, ds.checksum)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean softmax cross-entropy and accuracy over every leading position of ``logits``."""
    losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
    acc = jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))
    return jnp.mean(losses), acc


def forward_loss(
    graphdef: nnx.GraphDef, params: Any, rest: Any, batch: Batch
) -> tuple[jax.Array, tuple[jax.Array, Any]]:
    """Loss of the model ``merge(graphdef, params, rest)`` on ``batch``; also returns the accuracy
    and the updated non-parameter state (BatchNorm statistics)."""
    # copy=True: fresh Variables at this trace level, so BatchNorm may update them under jax.grad
    model = nnx.merge(graphdef, params, rest, copy=True)
    loss, acc = cross_entropy(model(batch[0]), batch[1])
    _, _, new_rest = nnx.split(model, nnx.Param, ...)
    return loss, (acc, new_rest)


def eval_graphdef(graphdef: nnx.GraphDef, params: Any, rest: Any) -> nnx.GraphDef:
    """Graph of the same model in evaluation mode (BatchNorm uses its running averages)."""
    model = nnx.merge(graphdef, params, rest)
    model.eval()
    return nnx.split(model, nnx.Param, ...)[0]


def evaluate(
    graphdef: nnx.GraphDef,
    params: Any,
    rest: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int = 500,
) -> dict[str, float]:
    """Mean loss and accuracy over ``(x, y)`` in batches of ``batch_size`` (the last may be
    smaller). Pass :func:`eval_graphdef` for running-average BatchNorm, or the training graph to
    evaluate with batch statistics (whose updates are discarded)."""
    _check_int("batch_size", batch_size, 1, 1 << 24)
    if len(x) == 0:
        raise ValueError("x must hold at least one example")
    total_loss = total_acc = 0.0
    for lo in range(0, len(x), batch_size):
        xb, yb = jnp.asarray(x[lo : lo + batch_size]), jnp.asarray(y[lo : lo + batch_size])
        loss, acc = _eval_batch(graphdef, params, rest, xb, yb)
        w = len(xb) / len(x)
        total_loss += float(loss) * w
        total_acc += float(acc) * w
    return {"loss": total_loss, "accuracy": total_acc}


@functools.partial(jax.jit, static_argnums=0)
def _eval_batch(graphdef: nnx.GraphDef, params: Any, rest: Any, x: jax.Array, y: jax.Array):
    loss, (acc, _) = forward_loss(graphdef, params, rest, (x, y))
    return loss, acc
