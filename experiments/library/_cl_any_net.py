"""The real-network bed of ``closed-loop-any-optimizer``: one optimizer, many seeds in one program.

Each seed is an independent run of :func:`gpu.train`'s step (:func:`gpu.make_step`): its own
initialisation (``init_model(factory, seed)``), its own batches and its own staleness draws
(geometric delays of ``M`` workers, :func:`gpu.geometric`, the ring buffer of
:mod:`gpu.stale`). The seeds are stacked on a leading axis and the step is ``jax.vmap``-ed over
them inside one ``lax.scan``, so a seed's trajectory is the one ``gpu.train`` gives for that seed
(the same pure step), but the small network's per-step overhead is paid once for all seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import gpu
from gpu.models import MLP


def load_task(dataset: str, batch: int, n_train: int | None = None) -> gpu.Task:
    """The classification task of a bed: ``"digits"`` (sklearn's 8x8 digits, 64 inputs) or
    ``"fashion_mnist"`` (28x28 images, flattened by the MLP; the first ``n_train`` examples)."""
    if dataset == "digits":
        from gpu.data import load_digits

        return gpu.classification_task(load_digits(), batch)
    if dataset == "fashion_mnist":
        from gpu.data import load_fashion_mnist

        return gpu.classification_task(load_fashion_mnist(n_train=n_train, n_test=2000), batch)
    raise ValueError(f"dataset must be 'digits' or 'fashion_mnist' (got {dataset!r})")


class _Flat(nnx.Module):
    """An MLP on flattened inputs (images of any shape)."""

    def __init__(self, inputs: int, hidden: tuple[int, ...], *, rngs: nnx.Rngs) -> None:
        self.mlp = MLP(inputs, hidden, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.mlp(x.reshape(x.shape[0], -1))


def train_seeds(
    make_tx: Callable[[], optax.GradientTransformation],
    task: gpu.Task,
    *,
    hidden: tuple[int, ...],
    seeds: int,
    seed: int,
    steps: int,
    workers: int,
    chunk: int = 250,
) -> dict[str, np.ndarray]:
    """Train ``seeds`` MLPs (seeds ``seed .. seed + seeds - 1``) with ``make_tx()`` in one program.

    Args:
        make_tx: builds the optimizer (called once; it receives ``value=`` and, with more than one
            worker, ``staleness=``).
        task: the classification task.
        hidden: hidden widths of the MLP.
        seeds: number of runs (>= 2).
        seed: first seed (initialisation, batches and staleness of run ``i`` use ``seed + i``).
        steps: updates per run.
        workers: ``M``; 1 is synchronous, more is geometric staleness of ``M`` workers.
        chunk: steps per scanned call.

    Returns:
        ``loss`` (seeds, steps), the batch loss at the parameters the gradient was taken at, and
        every scalar statistic the optimizer logs (same shape), e.g. ``hp_b1`` of an injected
        hyper-parameter.
    """
    for label, value, lo in (("seeds", seeds, 2), ("steps", steps, 1), ("workers", workers, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ValueError(f"{label} must be an integer >= {lo} (got {value!r})")
    tx = gpu.as_extra_args(make_tx())
    law = gpu.geometric(workers) if workers > 1 else None
    inputs = int(np.prod(task.x_test.shape[1:]))
    states = []
    graphdef = None
    for i in range(seeds):
        model = _Flat(inputs, tuple(hidden), rngs=nnx.Rngs(seed + i))  # eager: small, no compile
        graphdef, st = gpu.init_state(model, tx, seed + i, law)
        states.append(st)
    state = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *states)
    step = gpu.make_step(graphdef, tx, task, staleness=law, pass_staleness=law is not None)
    vstep = jax.vmap(step, in_axes=(0, None))

    def body(s: Any, data: Any, length: int) -> Any:
        return jax.lax.scan(lambda c, _: vstep(c, data), s, None, length=length)

    run = jax.jit(body, static_argnums=2, donate_argnums=0)
    history: dict[str, list[np.ndarray]] = {}
    done = 0
    while done < steps:
        n = min(chunk, steps - done)
        state, metrics = run(state, task.train_data, n)
        for k, v in jax.device_get(metrics).items():
            if np.ndim(v) == 2:  # (steps, seeds): scalar per step and seed
                history.setdefault(k, []).append(np.asarray(v, np.float64))
        done += n
    return {k: np.concatenate(v, axis=0).T for k, v in history.items()}
