"""Long heavy-ball runs that keep only some coordinates, in compiled chunks.

A network too large to keep every iterate of every parameter (the character LSTM: thousands of
parameters over tens of thousands of steps) records ``K`` tracked coordinates per step. The run is
cut into chunks of a fixed number of steps, compiled once per objective and chunk length (the
learning rate and momentum are arguments, not constants), so a caller can report progress and a
new learning rate does not recompile.

Update (``optax.sgd(alpha, momentum=mu)``, heavy ball with ``alpha = lr``):
``v_{t+1} = g_t + mu v_t``, ``w_{t+1} = w_t - alpha v_{t+1}``, ``v_0 = 0``, where ``g_t`` is the
full-batch gradient, or with ``batch_size`` set the gradient of ``problem.batch_loss`` over
``batch_size`` examples drawn without replacement at every step from ``jax.random.key(seed)``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gpu.fullbatch._problem import FlatProblem
from gpu.resources import ResourceMeter


@functools.lru_cache(maxsize=16)
def _chunk_fn(loss: Callable, batch_loss: Callable | None, n: int, batch: int, length: int):
    def grad_at(w, key, t):
        if batch_loss is None or batch == 0:
            return jax.grad(loss)(w)
        rows = jax.random.choice(jax.random.fold_in(key, t), n, (batch,), replace=False)
        return jax.grad(batch_loss)(w, rows)

    def run(w, v, alpha, mu, coords, key, t0):
        def step(carry, i):
            w, v = carry
            v = grad_at(w, key, t0 + i) + mu * v
            w = w - alpha * v
            return (w, v), w[coords]

        (w, v), rows = jax.lax.scan(step, (w, v), jnp.arange(length))
        return w, v, rows

    return jax.jit(run)


def heavy_ball_tracked(
    problem: FlatProblem,
    learning_rate: float,
    momentum: float,
    steps: int,
    coords: np.ndarray,
    *,
    chunk: int = 500,
    batch_size: int | None = None,
    seed: int = 0,
    on_chunk: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Heavy ball from ``problem.init`` for ``ceil(steps / chunk) chunk`` steps (module docstring).

    Args:
        problem: the objective.
        learning_rate: ``alpha > 0``.
        momentum: ``mu`` in [0, 1).
        steps: at least this many steps, >= 1.
        coords: indices of the tracked coordinates, in [0, size).
        chunk: steps per compiled chunk, >= 1.
        batch_size: examples per minibatch gradient (None: full batch), in [1, num_examples].
        seed: minibatch sampling seed, >= 0.
        on_chunk: called with ``(steps done, steps in all)`` after every chunk.

    Returns:
        ``(tracked, w_end)``: ``(T + 1, K)`` tracked values (row 0 the start) and the last iterate.

    Raises:
        ValueError: naming the argument out of range.

    Example:
        >>> from gpu.data import load_digits
        >>> from gpu.fullbatch import digits_mlp_problem
        >>> p = digits_mlp_problem(load_digits(), hidden=2)
        >>> heavy_ball_tracked(p, 0.5, 0.9, 3, np.array([0, 5]), chunk=2)[0].shape
        (5, 2)
    """
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0 (got {learning_rate!r})")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must lie in [0, 1) (got {momentum!r})")
    for name, value in (("steps", steps), ("chunk", chunk), ("seed", seed + 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= {1 if name != 'seed' else 0}")
    idx = np.asarray(coords, np.int64)
    if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= problem.size:
        raise ValueError(f"coords must be a non-empty 1-d array of indices in [0, {problem.size})")
    batch = 0
    if batch_size is not None:
        if problem.batch_loss is None:
            raise ValueError("batch_size needs a problem with a batch_loss")
        if not 1 <= batch_size <= problem.num_examples:
            raise ValueError(
                f"batch_size must lie in [1, {problem.num_examples}] (got {batch_size!r})"
            )
        batch = int(batch_size)
    run = _chunk_fn(problem.loss, problem.batch_loss, problem.num_examples, batch, int(chunk))
    chunks = math.ceil(steps / chunk)
    out = [problem.init[idx][None]]
    with jax.enable_x64(True):
        w = jnp.asarray(problem.init, jnp.float64)
        v = jnp.zeros_like(w)
        key = jax.random.key(seed)
        c = jnp.asarray(idx)
        meter = ResourceMeter()  # steps/s and memory, seen by gpu.collect_resources
        lr, mu = float(learning_rate), float(momentum)
        for i in range(chunks):
            w, v, rows = meter.measure(run, w, v, lr, mu, c, key, i * chunk, steps=int(chunk))
            out.append(np.asarray(rows, np.float64))
            if on_chunk is not None:
                on_chunk((i + 1) * chunk, chunks * chunk)
        meter.finish()
        w_end = np.asarray(w, np.float64)
    return np.concatenate(out), w_end
