"""The digits-MLP part of ``total-momentum``: heavy ball with a total-momentum sensor that leaves
out coordinates whose gradient is zero.

Sensor (Zhang & Mitliagkas, arXiv 1706.03471, Sec. 4; stale form of Mitliagkas et al., arXiv
1605.09774): the gradient ``g`` applied at step ``k`` was evaluated at ``x_s``, ``s = k - tau_k``;
it is paired with the moves around ``x_s`` and, in the total convention (step ``alpha / M``),

    mu_hat = median_i (d_{s+1,i} + (alpha / M) g_i) / d_{s,i},   over i with g_i != 0, d_{s,i} != 0.

A coordinate whose gradient is zero (an input pixel that is zero in the whole batch, a ReLU unit
silent on the whole batch) moves by ``d_{s+1,i} = mu_L d_{s,i}`` and reads ``mu_L`` exactly,
whatever the asynchrony: left in, such coordinates pull the median to ``mu_L``. They are left out
here; :func:`optimizers.momentum_feedback`'s sensor keeps them. The sensor sees every coordinate of
the model (4874 for the 64-64-10 MLP).

The learning rate is chosen per ``mu_L`` so that the effective step ``alpha / (1 - mu_L)`` is the
same for every momentum (it is also the effective step of the asynchronous mean dynamics: step
``alpha / M`` over ``1 - mu_T`` with ``1 - mu_T = (1 - mu_L) / M``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

import gpu
from experiments.framework import Check, check
from gpu.data import load_digits
from gpu.models import MLP, init_model
from optimizers import momentum_sensor

#: Cross-entropy of a uniform guess over the ten digit classes, ``ln 10``.
CHANCE_LOSS = float(np.log(10.0))


class SensedHeavyBallState(NamedTuple):
    """State of :func:`sensed_heavy_ball`.

    Attributes:
        delta: previous move ``d_k`` (pytree like the parameters).
        ring: ``(max_staleness + 2, n)`` past moves of all coordinates; row ``k % rows`` holds the
            move of step ``k``.
        count: steps taken.
        mu_hat: this step's reading (NaN when undefined).
        sensor_size: coordinates the reading used (nonzero gradient and previous move).
    """

    delta: Any
    ring: jax.Array
    count: jax.Array
    mu_hat: jax.Array
    sensor_size: jax.Array

    LOGGED = ("mu_hat", "sensor_size")


def sensed_heavy_ball(
    learning_rate: float, momentum: float, *, workers: int = 1, max_staleness: int = 0
) -> optax.GradientTransformationExtraArgs:
    """Heavy ball ``d_{k+1} = mu d_k - alpha g_k`` with the total-momentum sensor of the module
    docstring read at every step (``update(..., staleness=tau)``; 0 = synchronous).

    Synchronously (``workers = 1``) the reading is ``mu`` up to rounding, by the algebra of the
    update.

    Args:
        learning_rate: ``alpha > 0``.
        momentum: ``mu_L`` in ``[0, 1)``.
        workers: ``M >= 1``; the numerator's step is ``alpha / M``.
        max_staleness: largest staleness paired (larger ones give no reading), ``>= 0``.

    Raises:
        ValueError: for a value outside the ranges above.

    Example:
        >>> opt = sensed_heavy_ball(0.1, 0.5)
        >>> state = opt.init(jnp.ones(3))
        >>> d1, state = opt.update(jnp.array([1.0, 2.0, 0.5]), state)
        >>> d2, state = opt.update(jnp.array([0.5, 0.0, 1.0]), state)
        >>> float(state.mu_hat), int(state.sensor_size)
        (0.5, 2)
    """
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0 (got {learning_rate!r})")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1) (got {momentum!r})")
    if int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be an integer >= 1 (got {workers!r})")
    if int(max_staleness) != max_staleness or max_staleness < 0:
        raise ValueError(f"max_staleness must be an integer >= 0 (got {max_staleness!r})")
    rows = int(max_staleness) + 2
    a = learning_rate / workers

    def init_fn(params: Any) -> SensedHeavyBallState:
        flat, _ = ravel_pytree(params)
        return SensedHeavyBallState(
            delta=jax.tree_util.tree_map(jnp.zeros_like, params),
            ring=jnp.zeros((rows, flat.size), flat.dtype),
            count=jnp.zeros((), jnp.int32),
            mu_hat=jnp.asarray(jnp.nan, flat.dtype),
            sensor_size=jnp.zeros((), jnp.int32),
        )

    def update_fn(
        updates: Any, state: SensedHeavyBallState, params: Any = None, *, staleness: Any = 0,
        **extra: Any,
    ) -> tuple[Any, SensedHeavyBallState]:  # fmt: skip
        del params, extra
        delta = jax.tree_util.tree_map(
            lambda g, d: momentum * d - learning_rate * g, updates, state.delta
        )
        g, _ = ravel_pytree(updates)
        k = state.count
        ring = state.ring.at[k % rows].set(ravel_pytree(delta)[0].astype(state.ring.dtype))
        tau = jnp.asarray(staleness, jnp.int32)
        s = k - tau
        d_next, d_prev = ring[s % rows], ring[(s - 1) % rows]
        used = g != 0
        d_prev = jnp.where(used, d_prev, 0.0)  # a zero previous move is left out by the sensor
        mu_hat = momentum_sensor(d_next, d_prev, g, a)
        valid = (tau >= 0) & (tau <= rows - 2) & (s >= 1) & jnp.isfinite(mu_hat)
        new = SensedHeavyBallState(
            delta=delta,
            ring=ring,
            count=k + 1,
            mu_hat=jnp.where(valid, mu_hat, jnp.nan).astype(state.mu_hat.dtype),
            sensor_size=jnp.where(valid, jnp.sum(used & (d_prev != 0), dtype=jnp.int32), 0),
        )
        return delta, new

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def network_run(
    mu: float, workers: int, seed: int, *, effective_step: float, steps: int, batch: int,
    hidden: int, burn_in: int,
) -> dict[str, Any]:  # fmt: skip
    """Train the digits MLP with :func:`sensed_heavy_ball` at ``alpha = effective_step (1 - mu)``
    under geometric staleness of ``workers`` (``gpu.geometric``; none when ``workers = 1``).

    Returns:
        ``per_step`` readings, their ``mean`` after ``burn_in`` and its batch-means ``se``
        (20 batches), the ``loss`` trace, ``late_loss`` (mean of the last tenth), the learning
        rate and the mean number of coordinates read.
    """
    task = gpu.classification_task(load_digits(), batch)
    model = init_model(lambda r: MLP(64, (hidden,), 10, rngs=r), seed)
    law = gpu.geometric(workers) if workers > 1 else None
    lr = effective_step * (1.0 - mu)
    tx = sensed_heavy_ball(lr, mu, workers=workers, max_staleness=law.max_tau if law else 0)
    res = gpu.train(
        model, tx, task, steps=steps, seed=seed, chunk=100, staleness=law,
        pass_staleness=law is not None,
    )  # fmt: skip
    per_step = np.asarray(res.metrics["mu_hat"], np.float64)
    reads = per_step[burn_in:]
    reads = reads[np.isfinite(reads)]
    batches = reads[: reads.size // 20 * 20].reshape(20, -1).mean(axis=1)
    loss = np.asarray(res.metrics["loss"], np.float64)
    return {
        "per_step": per_step,
        "mean": float(reads.mean()),
        "se": float(batches.std(ddof=1) / np.sqrt(20)),
        "loss": loss,
        "late_loss": float(loss[-max(1, loss.size // 10) :].mean()),
        "learning_rate": lr,
        "sensor_size": float(np.mean(np.asarray(res.metrics["sensor_size"])[burn_in:])),
    }


def training_progressed(name: str, late_losses: dict[str, float], threshold: float) -> Check:
    """Precondition: every run's late training loss is below ``threshold`` (a fraction of the
    chance loss ``ln 10``); the sensor of a run that never left chance reads nothing about
    training.

    Args:
        name: the check's name.
        late_losses: ``{run label: mean loss over the last tenth of the run}``.
        threshold: the largest admitted late loss.

    Example:
        >>> training_progressed("trained", {"mu_L=0.9, M=16": 2.30}, 1.0).outcome
        'fail'
    """
    stuck = {k: v for k, v in late_losses.items() if not v < threshold}
    worst = max(late_losses, key=lambda k: late_losses[k])
    note = (
        "every run's late loss is below the threshold"
        if not stuck
        else "training did not progress: late loss "
        + ", ".join(f"{v:.3f} ({k})" for k, v in stuck.items())
        + f" vs chance {CHANCE_LOSS:.3f}"
    )
    return check(
        name,
        "precondition",
        not stuck,
        predicted=f"late loss < {threshold:.3f}",
        measured={"worst": worst, "late_loss": late_losses[worst], "all": late_losses},
        tolerance=threshold,
        note=note,
    )
