"""Many seeds and learning rates of one optimizer in one compiled, vmapped training loop.

Compilation dominates a small network's run on a CPU (about 8 s for a ResNet-8 against 1 s for 300
steps), so the seeds x learning rates of one method share one ``jax.vmap`` of
:func:`gpu.make_step` and one ``lax.scan`` (:func:`gpu.scan_steps`). Member ``(s, g)`` starts from
seed ``s``'s initialisation, draws seed ``s``'s batches (its ``key``) and uses learning rate
``g`` (``optax.inject_hyperparams``): exactly the run :func:`gpu.train` makes with that model,
optimizer and seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from gpu import Task, as_extra_args, evaluate, init_state, make_step, scan_steps


@dataclass(frozen=True)
class GridRuns:
    """Per-step training losses ``(S, G, steps)`` and held-out loss and accuracy ``(S, G)``."""

    losses: np.ndarray
    test_loss: np.ndarray
    test_accuracy: np.ndarray


def train_grid(
    models: Sequence[nnx.Module],
    make_tx: Callable[..., optax.GradientTransformation],
    learning_rates: Sequence[float] | None,
    task: Task,
    *,
    steps: int,
    chunk: int,
) -> GridRuns:
    """Train every ``models[s]`` (batches of seed ``s``) at every learning rate, vmapped.

    Args:
        models: one initial model per seed (same structure).
        make_tx: optimizer factory taking ``learning_rate``; with ``learning_rates=None`` it is
            called without arguments (an optimizer that tunes itself, G = 1).
        learning_rates: the grid, or None.
        task: data and sampler.
        steps, chunk: steps per run and per compiled scan.
    """
    if learning_rates is None:
        tx = as_extra_args(make_tx())
        lrs: list[float | None] = [None]
    else:
        tx = as_extra_args(optax.inject_hyperparams(make_tx)(learning_rate=1.0))
        lrs = [float(v) for v in learning_rates]
    states = []
    for s, model in enumerate(models):
        graphdef, base = init_state(model, tx, s)
        for lr in lrs:
            st = base
            if lr is not None:
                hp = dict(st.opt_state.hyperparams)
                hp["learning_rate"] = jnp.asarray(lr, jnp.asarray(hp["learning_rate"]).dtype)
                st = st._replace(opt_state=st.opt_state._replace(hyperparams=hp))
            states.append(jax.tree_util.tree_map(lambda a: jnp.array(a, copy=True), st))
    state = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *states)
    run = scan_steps(jax.vmap(make_step(graphdef, tx, task), in_axes=(0, None)))
    losses = []
    for start in range(0, steps, chunk):
        state, metrics = run(state, task.train_data, min(chunk, steps - start))
        losses.append(np.asarray(jax.device_get(metrics["loss"])))
    loss = np.concatenate(losses, axis=0).T.reshape(len(models), len(lrs), steps)
    model = nnx.merge(graphdef, *jax.tree_util.tree_map(lambda a: a[0], (state.params, state.rest)))
    model.eval()
    egraph = nnx.split(model, nnx.Param, ...)[0]
    t_loss = np.full(len(states), np.nan)
    t_acc = np.full(len(states), np.nan)
    for i in range(len(states)):
        params, rest = jax.tree_util.tree_map(lambda a, i=i: a[i], (state.params, state.rest))
        if all(bool(jnp.all(jnp.isfinite(p))) for p in jax.tree_util.tree_leaves(params)):
            res = evaluate(egraph, params, rest, task.x_test, task.y_test)
            t_loss[i], t_acc[i] = res["loss"], res["accuracy"]
    shape = (len(models), len(lrs))
    return GridRuns(loss.astype(np.float64), t_loss.reshape(shape), t_acc.reshape(shape))
