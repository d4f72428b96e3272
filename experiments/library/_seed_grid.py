"""Many seeds and learning rates of one optimizer in one compiled, vmapped training loop.

Compilation dominates a small network's run on a CPU (about 8 s for a ResNet-8 against 1 s for 300
steps), so the seeds x learning rates of one method share one ``jax.vmap`` of
:func:`gpu.make_step` and one ``lax.scan`` (:func:`gpu.scan_steps`). Member ``(s, g)`` starts from
seed ``s``'s initialisation, draws seed ``s``'s batches (its ``key``) and uses learning rate
``g`` (``optax.inject_hyperparams``): exactly the run :func:`gpu.train` makes with that model,
optimizer and seed.

Held-out metrics: every ``eval_every`` steps (the length of one compiled scan) every member is
evaluated, in the same vmapped way and in evaluation mode (BatchNorm's running averages), on a fixed
held-out subset ``(eval_x, eval_y)``; a member whose parameters are no longer finite reads NaN.

Resume: the steps are cut into blocks of ``block_steps``; each block is one
:func:`experiments.runtime.stage` named ``<name>.b<k>`` holding that block's per-step losses and
held-out readings, and the stacked state at the end of block ``k`` is kept beside it
(``<work dir>/grids/<name>/state_<k>.npz``, :func:`gpu.save_checkpoint`) until block ``k + 1`` is
stored. A killed run resumes at the first missing block from the state its predecessor left, so
it recomputes at most one block, and the readings equal those of an uninterrupted run (the same
compiled chunks on the same state). Outside ``experiments.runtime.running`` nothing is kept.

Speed and memory: every chunk runs through a :class:`gpu.resources.ResourceMeter` (peak memory;
which chunks are timed, those that neither compile nor come first); each chunk's training and
evaluation wall times and whether it was timed are stored with its block, so that the steps/s of
a resumed grid still cover every block, compilation excluded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from experiments import runtime
from gpu import (
    ResourceMeter,
    Task,
    as_extra_args,
    eval_graphdef,
    forward_loss,
    init_state,
    load_checkpoint,
    make_step,
    save_checkpoint,
)
from gpu import scan_steps as _scan_steps


@dataclass(frozen=True)
class GridRuns:
    """Readings of one vmapped grid.

    Attributes:
        losses: per-step training (mini-batch) losses ``(S, G, steps)``.
        eval_steps: iterations at which the held-out subset was read ``(E,)`` (``eval_every``,
            ``2 eval_every``, ...).
        eval_loss, eval_accuracy: held-out mean loss and accuracy ``(S, G, E)``.
        train_seconds, eval_seconds: wall time of each chunk's training scan and its evaluation.
        timed: per chunk, whether its time counts for speed (not a first or compiling chunk).
        resources: :meth:`gpu.resources.RunResources.as_dict` of the chunks this process ran.
    """

    losses: np.ndarray
    eval_steps: np.ndarray
    eval_loss: np.ndarray
    eval_accuracy: np.ndarray
    train_seconds: np.ndarray
    eval_seconds: np.ndarray
    timed: np.ndarray
    resources: dict

    @property
    def test_loss(self) -> np.ndarray:
        """Held-out loss at the end of the run ``(S, G)``."""
        return self.eval_loss[..., -1]

    @property
    def test_accuracy(self) -> np.ndarray:
        """Held-out accuracy at the end of the run ``(S, G)``."""
        return self.eval_accuracy[..., -1]

    @property
    def members(self) -> int:
        """Runs in the grid, ``S G``."""
        return int(self.losses.shape[0] * self.losses.shape[1])

    def timed_totals(self) -> tuple[int, float, float]:
        """``(grid steps, training seconds, evaluation seconds)`` over the timed chunks."""
        keep = self.timed.astype(bool)
        chunk = self.losses.shape[-1] // max(1, self.timed.size)
        return (
            chunk * int(keep.sum()),
            float(np.sum(self.train_seconds[keep])),
            float(np.sum(self.eval_seconds[keep])),
        )


def _stacked_state(models, tx, lrs):
    """Initial states of every (seed, learning rate) member stacked on a leading axis."""
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
    return graphdef, jax.tree_util.tree_map(lambda *a: jnp.stack(a), *states)


def _evaluator(graphdef, params, rest, batch_size: int) -> Callable:
    """Jitted ``(params, rest, x, y) -> (loss, accuracy)`` per member, in evaluation mode, over
    equal batches of ``batch_size`` examples of ``x`` (mapped, so memory stays one batch)."""
    egraph = eval_graphdef(graphdef, params, rest)

    def one(p, r, x, y):
        def batch(xy):
            loss, (acc, _) = forward_loss(egraph, p, r, xy)
            return loss, acc

        xs = x.reshape(-1, batch_size, *x.shape[1:])
        ys = y.reshape(-1, batch_size, *y.shape[1:])
        loss, acc = jax.lax.map(batch, (xs, ys))
        return jnp.mean(loss), jnp.mean(acc)

    return jax.jit(jax.vmap(one, in_axes=(0, 0, None, None)))


def train_grid(
    models: Sequence[nnx.Module],
    make_tx: Callable[..., optax.GradientTransformation],
    learning_rates: Sequence[float] | None,
    task: Task,
    *,
    steps: int,
    eval_every: int,
    eval_x: np.ndarray,
    eval_y: np.ndarray,
    eval_batch: int | None = None,
    block_steps: int | None = None,
    name: str = "",
    on_block: Callable[[int], None] | None = None,
) -> GridRuns:
    """Train every ``models[s]`` (batches of seed ``s``) at every learning rate, vmapped.

    Args:
        models: one initial model per seed (same structure).
        make_tx: optimizer factory taking ``learning_rate``; with ``learning_rates=None`` it is
            called without arguments (an optimizer that tunes itself, G = 1).
        learning_rates: the grid, or None.
        task: data and sampler.
        steps: steps per run, a multiple of ``eval_every``.
        eval_every: steps per compiled scan, each followed by a held-out reading.
        eval_x, eval_y: the fixed held-out subset.
        eval_batch: examples per evaluation batch (must divide ``len(eval_x)``; default all).
        block_steps: steps per resumable stage, a multiple of ``eval_every`` (default ``steps``).
        name: stage prefix (letters, digits, ``_.=-``); empty keeps nothing between runs.
        on_block: called with the steps done after each block (computed or reused).

    Raises:
        ValueError: when ``steps`` or ``block_steps`` is not a positive multiple of
            ``eval_every``, or ``eval_batch`` does not divide the held-out subset.
    """
    if not (eval_every >= 1 and steps >= eval_every and steps % eval_every == 0):
        raise ValueError(
            f"steps must be a positive multiple of eval_every (got {steps}, {eval_every})"
        )
    block = steps if block_steps is None else min(int(block_steps), steps)
    if not (block >= eval_every and block % eval_every == 0):
        raise ValueError(f"block_steps must be a multiple of eval_every (got {block_steps})")
    eb = len(eval_x) if eval_batch is None else int(eval_batch)
    if not (1 <= eb <= len(eval_x) and len(eval_x) % eb == 0):
        raise ValueError(f"eval_batch must divide the {len(eval_x)} held-out examples (got {eb})")
    if learning_rates is None:
        tx = as_extra_args(make_tx())
        lrs: list[float | None] = [None]
    else:
        tx = as_extra_args(optax.inject_hyperparams(make_tx)(learning_rate=1.0))
        lrs = [float(v) for v in learning_rates]
    graphdef, params0, rest0 = nnx.split(models[0], nnx.Param, ...)
    evaluate = _evaluator(graphdef, params0, rest0, eb)
    run = _scan_steps(jax.vmap(make_step(graphdef, tx, task), in_axes=(0, None)))
    ex, ey = jnp.asarray(eval_x), jnp.asarray(eval_y)
    folder = runtime.work_dir("grids", name) if name else None
    shape = (len(models), len(lrs))
    state = None
    meter = ResourceMeter()
    blocks = []
    for k, lo in enumerate(range(0, steps, block)):
        n = min(block, steps - lo)

        def compute(k=k, n=n):
            nonlocal state
            if state is None:
                state = _start_state(folder, k, lambda: _stacked_state(models, tx, lrs)[1])
            out = {key: [] for key in ("loss", "eval_loss", "eval_accuracy", "train_s", "eval_s")}
            out["timed"] = []
            for _ in range(n // eval_every):
                untimed = meter.untimed_steps
                t0 = time.perf_counter()
                state, metrics = meter.run_chunk(run, state, task.train_data, eval_every)
                out["loss"].append(np.asarray(jax.device_get(metrics["loss"])))
                t1 = time.perf_counter()
                loss, acc = evaluate(state.params, state.rest, ex, ey)
                out["eval_loss"].append(np.asarray(loss, np.float64))
                out["eval_accuracy"].append(np.asarray(acc, np.float64))
                out["train_s"].append(t1 - t0)
                out["eval_s"].append(time.perf_counter() - t1)
                out["timed"].append(meter.untimed_steps == untimed)
            if folder is not None:
                save_checkpoint(folder / f"state_{k}.npz", state)
            return {
                "loss": np.concatenate(out["loss"], axis=0),
                **{key: np.stack(out[key]) for key in ("eval_loss", "eval_accuracy")},
                **{key: np.asarray(out[key]) for key in ("train_s", "eval_s", "timed")},
            }

        fresh: list[bool] = []

        def tracked(compute=compute, fresh=fresh):
            fresh.append(True)
            return compute()

        arrays = runtime.stage(f"{name or 'grid'}.b{k:03d}", tracked)
        if not fresh:
            state = None  # a stored block: the state in memory (if any) is not its end state
        elif folder is not None and k > 0:
            (folder / f"state_{k - 1}.npz").unlink(missing_ok=True)
        blocks.append(arrays)
        if on_block is not None:
            on_block(lo + n)
    if folder is not None:
        (folder / f"state_{len(blocks) - 1}.npz").unlink(missing_ok=True)
    cat = {key: np.concatenate([b[key] for b in blocks]) for key in blocks[0]}
    loss = cat["loss"].T.reshape(*shape, steps).astype(np.float64)
    return GridRuns(
        losses=loss,
        eval_steps=np.arange(1, steps // eval_every + 1) * eval_every,
        eval_loss=cat["eval_loss"].T.reshape(*shape, -1),
        eval_accuracy=cat["eval_accuracy"].T.reshape(*shape, -1),
        train_seconds=cat["train_s"].astype(np.float64),
        eval_seconds=cat["eval_s"].astype(np.float64),
        timed=cat["timed"].astype(bool),
        resources=meter.finish().as_dict(),
    )


def _start_state(folder, k: int, initial: Callable):
    """The stacked state at the start of block ``k``: the initial one, or block ``k - 1``'s end
    state kept in ``folder``."""
    if k == 0:
        return initial()
    template = initial()
    path = None if folder is None else folder / f"state_{k - 1}.npz"
    if path is None or not path.is_file():
        raise RuntimeError(
            f"block {k} needs the state at the end of block {k - 1}, which is missing ({path}): "
            "remove the run's work directory to start afresh"
        )
    tree, _ = load_checkpoint(path, template)
    return jax.tree_util.tree_map(jnp.asarray, tree)
