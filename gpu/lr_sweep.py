"""Learning-rate sweeps: the same model, batches and seed trained at many learning rates at once.

MoMo's robustness experiment (Schaipp et al., arXiv 2305.07583, Sec. 6) trains one model at a decade
grid of learning rates and compares the final validation scores. Here the optimizer is built with
``optax.inject_hyperparams`` so the learning rate is an array in the optimizer state; the states
of ``G`` learning rates are stacked and one ``jax.vmap`` of the training step advances all of them
on the same batches (common random numbers: the runs differ only by the learning rate).
``max_parallel`` bounds ``G`` where memory is short; groups then run one after another.

Divergence has the meaning of the simulators' runs: a run diverged at step ``t`` when ``w_t`` is
the first iterate that is not finite or that is too far off; here, without a known minimiser,
"too far" is a training loss above ``blowup * max(loss_0, 1)``. ``w_t`` for ``t < steps`` is
judged by the loss of step ``t`` (taken at ``w_t``), the final ``w_steps`` by its parameters.
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
        diverged: whether each run diverged (see the module docstring), ``(L,)`` bool.
        diverged_at: first step whose iterate is not finite or whose loss exceeds the threshold,
            in ``[0, steps]``, ``-1`` when the run did not diverge, ``(L,)`` int.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    final_train_loss: np.ndarray
    test_loss: np.ndarray
    test_accuracy: np.ndarray
    stats: dict[str, np.ndarray]
    diverged: np.ndarray
    diverged_at: np.ndarray


def divergence_steps(losses: np.ndarray, final_finite: np.ndarray, blowup: float) -> np.ndarray:
    """First diverged step of each run (``-1`` if none) from its losses ``(L, steps)``.

    Step ``t < steps`` is bad when ``losses[:, t]`` is not finite or exceeds
    ``blowup * max(losses[:, 0], 1)``; step ``steps`` is bad when the final parameters are not
    finite (``final_finite`` false).

    Example:
        >>> divergence_steps(np.array([[1.0, 2.0], [1.0, np.inf]]), np.array([False, True]), 1e10)
        array([2, 1])
    """
    loss = np.asarray(losses, dtype=np.float64)
    limit = blowup * np.maximum(np.where(np.isfinite(loss[:, :1]), loss[:, :1], 1.0), 1.0)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(loss) | (loss > limit)
    bad = np.concatenate([bad, ~np.asarray(final_finite, bool)[:, None]], axis=1)
    return np.where(bad.any(axis=1), bad.argmax(axis=1), -1)


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
    blowup: float = 1e10,
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
        blowup: divergence threshold on ``loss_t / max(loss_0, 1)``, in ``(1, inf]`` (``inf``
            flags only non-finite losses and parameters).

    Returns:
        A :class:`SweepResult`; the test metrics of a diverged run are NaN.

    Raises:
        ValueError: an empty or non-positive grid, a bad count or a bad ``blowup``.
    """
    lrs = np.asarray(learning_rates, dtype=np.float64).ravel()
    if lrs.size == 0 or not np.all(np.isfinite(lrs)) or np.any(lrs <= 0):
        raise ValueError("learning_rates must be a non-empty grid of finite values > 0")
    for name, v in (("steps", steps), ("chunk", chunk), ("tail", tail)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1 (got {v!r})")
    if tail > steps:
        raise ValueError(f"tail must be <= steps = {steps} (got {tail})")
    if isinstance(blowup, bool) or not isinstance(blowup, int | float) or not blowup > 1:
        raise ValueError(f"blowup must be a number in (1, inf] (got {blowup!r})")
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
    losses, t_loss, t_acc, finite = [], [], [], []
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
            finite.append(all(bool(jnp.all(jnp.isfinite(p))) for p in leaves))
            t_loss.append(np.nan)
            t_acc.append(np.nan)
            if not finite[-1]:
                continue
            res = evaluate(egraph, member.params, member.rest, task.x_test, task.y_test)
            t_loss[-1], t_acc[-1] = res["loss"], res["accuracy"]
    loss_arr = np.concatenate(losses, axis=0)
    div_at = divergence_steps(loss_arr, np.asarray(finite), float(blowup))
    diverged = div_at >= 0
    return SweepResult(
        lrs,
        loss_arr,
        loss_arr[:, -tail:].mean(axis=1),
        np.where(diverged, np.nan, np.asarray(t_loss)),
        np.where(diverged, np.nan, np.asarray(t_acc)),
        {k: np.concatenate(v, axis=0) for k, v in stats.items()},
        diverged,
        div_at,
    )
