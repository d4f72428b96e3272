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
every optimizer is wrapped with ``optax.with_extra_args_support``).
"""

from __future__ import annotations

import functools
import json
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
    save_checkpoint,
    tree_digest,
)
from gpu.rates import Coordinates, gather_coordinates
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
    """

    metrics: dict[str, np.ndarray]
    evals: list[dict[str, float]]
    state: TrainState
    graphdef: Any
    steps_done: int
    stopped: str
    wall_time_s: float
    info: dict = field(default_factory=dict)

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
) -> Callable[[TrainState, Any], tuple[TrainState, dict[str, jax.Array]]]:
    """The pure step ``(state, data) -> (state, metrics)`` described in the module docstring."""

    def step(state: TrainState, data: Any) -> tuple[TrainState, dict[str, jax.Array]]:
        t = state.step
        key = jax.random.wrap_key_data(state.key)
        batch = task.sample(data, jax.random.fold_in(key, 0), t)
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
        grad_fn = jax.value_and_grad(functools.partial(forward_loss, graphdef), has_aux=True)
        (loss, (acc, rest)), grads = grad_fn(at, state.rest, batch)
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


def run_fingerprint(
    state: TrainState,
    task: Task,
    seed: int,
    staleness: _stale.StalenessLaw | None,
    pass_staleness: bool,
    track: Coordinates | None,
    run_config: Mapping[str, Any] | None,
) -> dict[str, str]:
    """What identifies a run for checkpoint resume: every component must match to resume.

    ``optimizer`` digests the initial optimizer state (its NamedTuple types, leaf paths, shapes and
    values): it tells optimizers apart, but not hyper-parameters that live only in the update
    function (``optax.adam(1e-3)`` and ``optax.adam(1e-2)`` start from the same state); name those
    in ``run_config``. ``model`` digests the parameter structure only, not the initial values,
    which the checkpoint replaces.

    Returns:
        ``{component: string}`` for ``seed``, ``task``, ``model``, ``optimizer``, ``staleness``,
        ``pass_staleness``, ``track`` and ``run_config``; stored with
        :func:`gpu.checkpoint.encode_fingerprint` and compared by
        :func:`gpu.checkpoint.check_fingerprint`.

    Example:
        >>> from gpu.data import load_digits
        >>> from gpu.models import MLP
        >>> from gpu.tasks import classification_task
        >>> task = classification_task(load_digits(), 32)
        >>> def fingerprint(tx, seed=0):
        ...     _, state = init_state(MLP(64, (16,), 10, rngs=nnx.Rngs(seed)), tx, seed)
        ...     return run_fingerprint(state, task, seed, None, False, None, {"lr": 0.1})
        >>> fp = fingerprint(optax.sgd(0.1, 0.9))
        >>> fp["seed"], fp["run_config"]
        ('0', '{"lr": 0.1}')
        >>> fp == fingerprint(optax.sgd(0.1, 0.9))  # the same run, rebuilt
        True
        >>> fp["optimizer"] == fingerprint(optax.adam(1e-3))["optimizer"]
        False
        >>> fp["model"] == fingerprint(optax.sgd(0.1, 0.9), seed=1)["model"]  # structure only
        True
    """
    config = (
        None if run_config is None else json.dumps(dict(run_config), sort_keys=True, default=str)
    )
    tracked = None if track is None else tree_digest((track.leaf, track.flat))[:16]
    return {
        "seed": str(seed),
        "task": f"{task.name} checksum {task.checksum[:16]} batch_size {task.batch_size}",
        "model": tree_digest((state.params, state.rest), values=False)[:16],
        "optimizer": tree_digest(state.opt_state)[:16],
        "staleness": repr(staleness),
        "pass_staleness": str(bool(pass_staleness)),
        "track": str(tracked),
        "run_config": str(config),
    }


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
    run = scan_steps(
        make_step(
            graphdef, txe, task, staleness=staleness, pass_staleness=pass_staleness, track=track
        )
    )

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
        state, metrics = run(state, task.train_data, n)
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
        },
    )
