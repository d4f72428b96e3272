"""The training loop: a pure, jitted step for any optax optimizer, scanned over chunks of steps.

Functional core: the model is split once into ``graphdef`` and a :class:`TrainState` (parameters,
BatchNorm statistics, optimizer state, step, key, optional ring buffer); one step is

    batch  = task.sample(data, fold_in(key, 0), t)
    w_eval = w_t                      (synchronous)   or   w_{t - tau_t}   (stale, see gpu.stale)
    loss, g = value_and_grad(loss)(w_eval, batch)
    u, s   = tx.update(g, s, w_t, value=loss[, staleness=tau_t])
    w_{t+1} = w_t + u

``K`` steps run in one ``lax.scan`` per host call (``jit`` with the state donated), so the host
synchronises once per chunk, for metrics, evaluation, checkpoints, budgets and the ``progress``
callback. The loss is always passed as ``value=`` (optimizers that do not use it ignore it:
every optimizer is wrapped with ``optax.with_extra_args_support``). The jitted chunk is cached
(:func:`chunk_runner`) and measured (:mod:`gpu.resources`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from gpu import stale as _stale
from gpu.checkpoint import (
    FINGERPRINT,
    check_fingerprint,
    encode_fingerprint,
    load_checkpoint,
    run_fingerprint,
    save_checkpoint,
)
from gpu.rates import Coordinates, gather_coordinates
from gpu.resources import ResourceMeter, RunResources
from gpu.tasks import Task, eval_graphdef, evaluate, forward_loss
from optimizers import logged_stats

CHECKPOINT_NAME = "checkpoint.npz"


class TrainState(NamedTuple):
    """Everything a run carries from step to step (a pytree of arrays)."""

    params: Any
    rest: Any
    opt_state: Any
    step: jax.Array
    key: jax.Array  # raw uint32 key data: checkpointable
    buffer: Any  # ring buffer of parameter snapshots (stale emulation) or ()


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes:
        metrics: per-step arrays (leading axis: step): ``loss`` and ``accuracy`` of the batch at the
            parameters the gradient was taken at, ``tau`` (stale runs), the optimizer's scalar
            statistics from ``optimizers.logged_stats`` and ``tracked`` (``(steps, K)``) when asked.
        evals: one dict per evaluation: ``step``, ``test_loss``, ``test_accuracy``.
        state: the final :class:`TrainState`.
        graphdef: the model graph (``nnx.merge(graphdef, state.params, state.rest)``).
        steps_done: steps completed so far (over every resumed call).
        stopped: ``"done"``, ``"step_budget"``, ``"time_budget"`` or ``"nonfinite"``.
        wall_time_s: wall time of this call.
        info: task name, data checksum, seed, device, and ``resources`` (``resources.as_dict()``).
        resources: steps per second (compilation excluded) and peak memory of this call
            (:class:`gpu.resources.RunResources`).
    """

    metrics: dict[str, np.ndarray]
    evals: list[dict[str, float]]
    state: TrainState
    graphdef: Any
    steps_done: int
    stopped: str
    wall_time_s: float
    info: dict = field(default_factory=dict)
    resources: RunResources | None = None

    def model(self) -> nnx.Module:
        """The trained model as an nnx module."""
        return nnx.merge(self.graphdef, self.state.params, self.state.rest)


def as_extra_args(tx: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """``tx`` accepting (and ignoring where it does not use them) ``value=`` and ``staleness=``."""
    return optax.with_extra_args_support(tx)


def init_state(
    model: nnx.Module,
    tx: optax.GradientTransformation,
    seed: int,
    staleness: _stale.StalenessLaw | None = None,
) -> tuple[Any, TrainState]:
    """Split ``model`` and build the initial state (arrays are copied: the model stays usable)."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    opt_state = tx.init(params)
    key = jax.random.key_data(jax.random.key(seed))
    buffer = () if staleness is None else _stale.init_buffer(params, staleness)
    state = TrainState(params, rest, opt_state, jnp.zeros((), jnp.int32), key, buffer)
    # fresh buffers for every leaf: the state is donated, and initialisers may share constants
    return graphdef, jax.tree_util.tree_map(lambda a: jnp.array(a, copy=True), state)


def make_step(
    graphdef: Any,
    tx: optax.GradientTransformationExtraArgs,
    task: Task,
    *,
    staleness: _stale.StalenessLaw | None = None,
    pass_staleness: bool = False,
    track: Coordinates | None = None,
    pass_loss_fn: bool = False,
) -> Callable[[TrainState, Any], tuple[TrainState, dict[str, jax.Array]]]:
    """The pure step ``(state, data) -> (state, metrics)`` described in the module docstring.

    ``pass_loss_fn`` also passes ``loss_fn=f`` to the optimizer, ``f(p)`` the loss of the step's
    minibatch at parameters ``p`` (BatchNorm statistics of the step), for optimizers that measure
    curvature with Hessian-vector products (``yellowfin(curvature="hessian")``).
    """
    return _step_fn(graphdef, tx, task.sample, staleness, pass_staleness, track, pass_loss_fn)


def _step_fn(graphdef, tx, sample, staleness, pass_staleness, track, pass_loss_fn) -> Callable:
    """:func:`make_step` from the sampler alone (the data set's arrays are the step's argument)."""

    def step(state: TrainState, data: Any) -> tuple[TrainState, dict[str, jax.Array]]:
        t = state.step
        key = jax.random.wrap_key_data(state.key)
        batch = sample(data, jax.random.fold_in(key, 0), t)
        metrics: dict[str, jax.Array] = {}
        extra: dict[str, Any] = {}
        buffer = state.buffer
        if staleness is None:
            at = state.params
        else:
            tau = staleness.sample(jax.random.fold_in(jax.random.fold_in(key, 1), t))
            buffer, at, tau = _stale.push_and_read(
                buffer, state.params, t, tau, staleness.buffer_size
            )
            metrics["tau"] = tau
            if pass_staleness:
                extra["staleness"] = tau
        if track is not None:
            metrics["tracked"] = gather_coordinates(state.params, track)
        loss_of = functools.partial(forward_loss, graphdef)
        if pass_loss_fn:
            extra["loss_fn"] = lambda p: loss_of(p, state.rest, batch)[0]
        (loss, (acc, rest)), grads = jax.value_and_grad(loss_of, has_aux=True)(
            at, state.rest, batch
        )
        updates, opt_state = tx.update(grads, state.opt_state, state.params, value=loss, **extra)
        params = optax.apply_updates(state.params, updates)
        metrics["loss"], metrics["accuracy"] = loss, acc
        for name, v in logged_stats(opt_state).items():
            if jnp.ndim(v) == 0:
                metrics[name] = jnp.asarray(v)
        return TrainState(params, rest, opt_state, t + 1, state.key, buffer), metrics

    return step


def scan_steps(step: Callable) -> Callable:
    """``jit(run)`` with ``run(state, data, length) -> (state, stacked metrics)``: ``length`` steps
    in one ``lax.scan`` (``length`` static, the state donated)."""

    def run(state: TrainState, data: Any, length: int):
        return jax.lax.scan(lambda s, _: step(s, data), state, None, length=length)

    return jax.jit(run, static_argnums=2, donate_argnums=0)


@functools.lru_cache(maxsize=32)
def _cached_runner(graphdef, tx, sample, staleness, pass_staleness, track, pass_loss_fn):
    step = _step_fn(
        graphdef, as_extra_args(tx), sample, staleness, pass_staleness, track, pass_loss_fn
    )
    return scan_steps(step)


def chunk_runner(
    graphdef: Any,
    tx: optax.GradientTransformation,
    task: Task,
    *,
    staleness: _stale.StalenessLaw | None = None,
    pass_staleness: bool = False,
    track: Coordinates | None = None,
    pass_loss_fn: bool = False,
) -> Callable:
    """``scan_steps(make_step(graphdef, as_extra_args(tx), task, ...))``, cached.

    The jitted runner is kept (32 most recent) per model graph (equal for models of the same
    structure), optimizer object ``tx``, sampler ``task.sample`` (one per task object), staleness
    law, tracked coordinates and ``pass_loss_fn``; ``jax.jit`` then keeps one program per chunk
    length and argument shapes. So repeated :func:`train` runs of the same model structure,
    optimizer object and task reuse the compiled chunks instead of tracing them again. A new
    optimizer object (``optax.adam(1e-3)`` called again) is a new key: its hyper-parameters are
    constants of the program. Unhashable arguments build an uncached runner.
    """
    key = (graphdef, tx, task.sample, staleness, bool(pass_staleness), track, bool(pass_loss_fn))
    try:
        hash(key)
    except TypeError:
        return _cached_runner.__wrapped__(*key)
    return _cached_runner(*key)


def _check(name: str, value: Any, lo: float, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo:g} (got {value!r})")


def train(
    model: nnx.Module,
    tx: optax.GradientTransformation,
    task: Task,
    *,
    steps: int,
    seed: int = 0,
    chunk: int = 50,
    eval_every: int | None = None,
    eval_batch_stats: bool = False,
    staleness: _stale.StalenessLaw | None = None,
    pass_staleness: bool = False,
    track: Coordinates | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    step_budget: int | None = None,
    time_budget_s: float | None = None,
    stop_on_nonfinite: bool = True,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
    run_config: Mapping[str, Any] | None = None,
    pass_loss_fn: bool = False,
) -> TrainResult:
    """Train ``model`` with ``tx`` on ``task`` for ``steps`` steps (or until a budget runs out).

    Args:
        model: a flax nnx module mapping inputs to logits (not modified).
        tx: any optax transformation; it receives ``value=loss`` (and ``staleness=tau`` with
            ``pass_staleness``).
        task: data and sampler (:func:`gpu.tasks.classification_task`, ``language_model_task``).
        steps: total number of steps of the run.
        seed: seed of the batch (and staleness) key; the model's initialisation is the caller's.
        chunk: steps per jitted ``lax.scan`` call (one host sync per chunk).
        eval_every: evaluate on the test split every this many steps and at the end
            (None: at the end only).
        eval_batch_stats: evaluate BatchNorm with batch statistics instead of running averages.
        staleness: emulate asynchronous workers with this delay law (see :mod:`gpu.stale`).
        pass_staleness: also pass ``staleness=tau`` to the optimizer.
        track: coordinates whose values are recorded every step (see :mod:`gpu.rates`).
        checkpoint_dir: resume from ``checkpoint_dir/checkpoint.npz`` when present; write it every
            ``checkpoint_every`` steps (default: every chunk) and when stopping. The checkpoint
            stores a fingerprint of the run (:func:`run_fingerprint`: seed, task, model structure,
            optimizer, staleness, tracking, ``run_config``); resuming from one whose fingerprint
            differs raises ``ValueError`` naming the differing components.
        step_budget: at most this many steps in this call (the run can be resumed).
        time_budget_s: stop after the chunk during which this many seconds have passed.
        stop_on_nonfinite: stop at the end of a chunk whose last loss is not finite.
        progress: called after every chunk as ``progress(step, steps, last_metrics)``.
        run_config: JSON-able description of the run (e.g. the optimizer's name and
            hyper-parameters) added to the checkpoint fingerprint; it must match to resume.
        pass_loss_fn: also pass the minibatch loss function as ``loss_fn=`` (see
            :func:`make_step`).

    The compiled chunks are cached (:func:`chunk_runner`), and every chunk goes through a
    :class:`gpu.resources.ResourceMeter`: ``result.resources`` holds the steps per second
    (compilation excluded) and the peak memory of the call.

    Returns:
        A :class:`TrainResult`; deterministic for a given seed on the CPU, also across resumes.

    Raises:
        ValueError: on a bad count or budget, or a checkpoint written by a different run or that
            does not fit the run.
    """
    _check("steps", steps, 1)
    _check("chunk", chunk, 1)
    _check("eval_every", eval_every, 1, allow_none=True)
    _check("checkpoint_every", checkpoint_every, 1, allow_none=True)
    _check("step_budget", step_budget, 1, allow_none=True)
    if time_budget_s is not None and not time_budget_s > 0:
        raise ValueError(f"time_budget_s must be > 0 or None (got {time_budget_s!r})")
    t0 = time.perf_counter()
    txe = as_extra_args(tx)
    graphdef, state = init_state(model, txe, seed, staleness)
    history: dict[str, list[np.ndarray]] = {}
    evals: list[dict[str, float]] = []
    ckpt = None if checkpoint_dir is None else Path(checkpoint_dir) / CHECKPOINT_NAME
    fingerprint = (
        None
        if ckpt is None
        else run_fingerprint(state, task, seed, staleness, pass_staleness, track, run_config)
    )
    if ckpt is not None and ckpt.is_file():
        check_fingerprint(ckpt, fingerprint)
        state, extra = load_checkpoint(ckpt, state)
        state = jax.tree_util.tree_map(jnp.asarray, state)
        history = {k[2:]: [v] for k, v in extra.items() if k.startswith("m_")}
        if "evals" in extra:
            evals = [
                dict(zip(("step", "test_loss", "test_accuracy"), map(float, r), strict=True))
                for r in extra["evals"]
            ]
            for e in evals:
                e["step"] = int(e["step"])
    egraph = graphdef if eval_batch_stats else eval_graphdef(graphdef, state.params, state.rest)
    run = chunk_runner(
        graphdef,
        tx,
        task,
        staleness=staleness,
        pass_staleness=pass_staleness,
        track=track,
        pass_loss_fn=pass_loss_fn,
    )
    meter = ResourceMeter()

    def save() -> None:
        if ckpt is None:
            return
        extra = {f"m_{k}": np.concatenate(v) for k, v in history.items()}
        extra["evals"] = np.array(
            [[e["step"], e["test_loss"], e["test_accuracy"]] for e in evals]
        ).reshape(-1, 3)
        extra[FINGERPRINT] = encode_fingerprint(fingerprint)
        save_checkpoint(ckpt, state, extra)

    def do_eval(at: int) -> None:
        res = evaluate(egraph, state.params, state.rest, task.x_test, task.y_test)
        evals.append({"step": at, "test_loss": res["loss"], "test_accuracy": res["accuracy"]})

    done = int(state.step)
    start = done
    stopped = "done"
    while done < steps:
        if step_budget is not None and done - start >= step_budget:
            stopped = "step_budget"
            break
        if time_budget_s is not None and time.perf_counter() - t0 >= time_budget_s:
            stopped = "time_budget"
            break
        bounds = [steps, (done // chunk + 1) * chunk]
        if eval_every:
            bounds.append((done // eval_every + 1) * eval_every)
        if checkpoint_every and ckpt is not None:
            bounds.append((done // checkpoint_every + 1) * checkpoint_every)
        if step_budget is not None:
            bounds.append(start + step_budget)
        n = min(bounds) - done
        state, metrics = meter.run_chunk(run, state, task.train_data, n)
        for k, v in jax.device_get(metrics).items():
            history.setdefault(k, []).append(np.asarray(v))
        done += n
        if eval_every and done % eval_every == 0 and done < steps:
            do_eval(done)
        if ckpt is not None and (checkpoint_every is None or done % checkpoint_every == 0):
            save()
        last = {k: float(v[-1][-1]) for k, v in history.items() if np.ndim(v[-1]) == 1}
        if progress is not None:
            progress(done, steps, last)
        if stop_on_nonfinite and not np.isfinite(last.get("loss", 0.0)):
            stopped = "nonfinite"
            break
    if done >= steps and stopped == "done" and (not evals or evals[-1]["step"] != done):
        do_eval(done)
    save()
    metrics_out = {k: np.concatenate(v) for k, v in history.items()}
    resources = meter.finish()
    return TrainResult(
        metrics_out,
        evals,
        state,
        graphdef,
        done,
        stopped,
        time.perf_counter() - t0,
        {
            "task": task.name,
            "data_checksum": task.checksum,
            "seed": seed,
            "device": str(jax.devices()[0]),
            "resources": resources.as_dict(),
        },
        resources,
    )
