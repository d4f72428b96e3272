"""Learning-rate sweeps: the same model, batches and seed trained at many learning rates at once.

MoMo's robustness experiment (Schaipp et al., arXiv 2305.07583, Sec. 6) trains one model at a decade
grid of learning rates and compares the final validation scores. Here the optimizer is built with
``optax.inject_hyperparams`` so the learning rate is an array in the optimizer state; the states
of ``G`` learning rates are stacked and one ``jax.vmap`` of the training step advances all of them
on the same batches (common random numbers: the runs differ only by the learning rate).
``max_parallel`` bounds ``G`` where memory is short; groups then run one after another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from gpu.tasks import Task, eval_graphdef, evaluate
from gpu.train import TrainState, as_extra_args, init_state, make_step


@dataclass(frozen=True)
class SweepResult:
    """Outcome of :func:`sweep_learning_rates`.

    Attributes:
        learning_rates: the grid, shape ``(L,)``.
        losses: per-step training loss, shape ``(L, steps)`` (NaN/inf where a run diverged).
        final_train_loss: mean training loss over the last ``tail`` steps, ``(L,)``.
        test_loss, test_accuracy: evaluation of each final model, ``(L,)`` (NaN where diverged).
        stats: per-step scalar optimizer statistics, each ``(L, steps)``.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    final_train_loss: np.ndarray
    test_loss: np.ndarray
    test_accuracy: np.ndarray
    stats: dict[str, np.ndarray]


def _set_lr(state: optax.InjectHyperparamsState, name: str, lr: jax.Array):
    hp = dict(state.hyperparams)
    hp[name] = jnp.asarray(lr, dtype=jnp.asarray(hp[name]).dtype)
    return state._replace(hyperparams=hp)


def sweep_learning_rates(
    model: nnx.Module,
    make_tx: Callable[..., optax.GradientTransformation],
    learning_rates: Sequence[float],
    task: Task,
    *,
    steps: int,
    seed: int = 0,
    chunk: int = 50,
    max_parallel: int | None = None,
    lr_name: str = "learning_rate",
    tail: int = 10,
    eval_batch_stats: bool = False,
) -> SweepResult:
    """Train ``model`` once per learning rate, vmapped over the grid.

    Args:
        model: the initial model (every run starts from these parameters).
        make_tx: optimizer factory with a ``lr_name`` keyword (``optax.adam``,
            ``optax.contrib.momo``, ``optimizers.momo``, ...); bind other arguments with
            ``functools.partial``.
        learning_rates: positive grid.
        task: data and sampler.
        steps: steps per run.
        seed: batch key seed (shared by every learning rate).
        chunk: steps per jitted scan.
        max_parallel: most learning rates advanced together (None: all).
        lr_name: name of the learning-rate argument of ``make_tx``.
        tail: steps averaged into ``final_train_loss``.
        eval_batch_stats: evaluate BatchNorm with batch statistics.

    Raises:
        ValueError: an empty or non-positive grid, or a bad count.
    """
    lrs = np.asarray(learning_rates, dtype=np.float64).ravel()
    if lrs.size == 0 or not np.all(np.isfinite(lrs)) or np.any(lrs <= 0):
        raise ValueError("learning_rates must be a non-empty grid of finite values > 0")
    for name, v in (("steps", steps), ("chunk", chunk), ("tail", tail)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1 (got {v!r})")
    if tail > steps:
        raise ValueError(f"tail must be <= steps = {steps} (got {tail})")
    G = lrs.size if max_parallel is None else max_parallel
    if isinstance(G, bool) or not isinstance(G, int) or G < 1:
        raise ValueError(f"max_parallel must be an integer >= 1 or None (got {max_parallel!r})")
    G = min(G, lrs.size)
    tx = as_extra_args(optax.inject_hyperparams(make_tx)(**{lr_name: float(lrs[0])}))
    graphdef, base = init_state(model, tx, seed)
    step = jax.vmap(make_step(graphdef, tx, task), in_axes=(0, None))

    @jax.jit
    def stack(group_lrs: jax.Array) -> TrainState:
        def one(lr):
            return base._replace(opt_state=_set_lr(base.opt_state, lr_name, lr))

        return jax.vmap(one)(group_lrs)

    def run(state: TrainState, data, length: int):
        return jax.lax.scan(lambda s, _: step(s, data), state, None, length=length)

    run = jax.jit(run, static_argnums=2, donate_argnums=0)
    egraph = graphdef if eval_batch_stats else eval_graphdef(graphdef, base.params, base.rest)
    losses, t_loss, t_acc = [], [], []
    stats: dict[str, list[np.ndarray]] = {}
    for lo in range(0, lrs.size, G):
        group = lrs[lo : lo + G]
        padded = np.concatenate([group, np.repeat(group[-1:], G - group.size)])
        state = stack(jnp.asarray(padded, jnp.float32))
        hist: dict[str, list[np.ndarray]] = {}
        for start in range(0, steps, chunk):
            state, metrics = run(state, task.train_data, min(chunk, steps - start))
            for k, v in jax.device_get(metrics).items():  # (n, G)
                hist.setdefault(k, []).append(np.asarray(v))
        for k, v in hist.items():
            arr = np.concatenate(v, axis=0).T[: group.size]  # (g, steps)
            if k == "loss":
                losses.append(arr)
            elif k != "accuracy":
                stats.setdefault(k, []).append(arr)
        for i in range(group.size):
            member = jax.tree_util.tree_map(lambda a, i=i: a[i], state)
            leaves = jax.tree_util.tree_leaves(member.params)
            if not all(bool(jnp.all(jnp.isfinite(p))) for p in leaves):
                t_loss.append(np.nan)
                t_acc.append(np.nan)
                continue
            res = evaluate(egraph, member.params, member.rest, task.x_test, task.y_test)
            t_loss.append(res["loss"])
            t_acc.append(res["accuracy"])
    loss_arr = np.concatenate(losses, axis=0)
    return SweepResult(
        lrs,
        loss_arr,
        loss_arr[:, -tail:].mean(axis=1),
        np.asarray(t_loss),
        np.asarray(t_acc),
        {k: np.concatenate(v, axis=0) for k, v in stats.items()},
    )
