"""A total-momentum observer for any optimizer trained under stale gradients.

Sensor (Zhang & Mitliagkas, arXiv 1706.03471, Sec. 4; stale form of Mitliagkas et al., arXiv
1605.09774, Theorem 2): the gradient ``g`` applied at step ``k`` with step size ``alpha_k`` was
evaluated at ``x_s``, ``s = k - tau_k``; it is paired with the moves around ``x_s``,
``d_{s+1} = x_{s+1} - x_s`` and ``d_s``. In the total convention (numerator step ``alpha_k / M``)
first order predicts ``E[d_{s+1} + (alpha_k / M) g] = mu_T E[d_s]`` with
``mu_T = 1 - (1 - mu_L) / M`` (:func:`theory.total_momentum`). Two readings per step:

- ``total_median``: the median over coordinates of ``(d_{s+1,i} + (alpha_k / M) g_i) / d_{s,i}``
  (:func:`optimizers.momentum_sensor`, the paper's sensor);
- ``total_ls_num``, ``total_ls_den``: the sums ``sum_i (d_{s+1,i} + (alpha_k / M) g_i) d_{s,i}`` and
  ``sum_i d_{s,i}^2``. Their ratio pooled over steps, ``sum num / sum den``, is the
  least-squares slope of the numerator on ``d_s``; minibatch noise in the numerator has mean zero
  given the past and averages out of it, whereas the median of ratios of noisy numbers is biased.

A coordinate whose gradient is zero (an input pixel that is zero in the whole batch, a ReLU unit
silent on the whole batch) moves by ``d_{s+1,i} = mu_L d_{s,i}`` whatever the asynchrony and reads
``mu_L`` exactly: both readings leave such coordinates out (:func:`optimizers.momentum_feedback`'s
own sensor keeps them).

The observer wraps the optimizer and never changes its updates; it keeps ``max_staleness + 2``
past moves of every coordinate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from optimizers import momentum_sensor


class SensorState(NamedTuple):
    """The observer's own state.

    Attributes:
        ring: ``(max_staleness + 2, n)`` past moves; row ``k % rows`` holds the move of step ``k``.
        count: steps observed.
        total_median: this step's median reading (NaN when undefined).
        total_ls_num, total_ls_den: this step's least-squares sums (0 when undefined).
        total_size: coordinates read (nonzero gradient and previous move).
    """

    ring: jax.Array
    count: jax.Array
    total_median: jax.Array
    total_ls_num: jax.Array
    total_ls_den: jax.Array
    total_size: jax.Array

    LOGGED = ("total_median", "total_ls_num", "total_ls_den", "total_size")


class ObservedState(NamedTuple):
    """``(inner optimizer state, sensor state)``."""

    inner: Any
    sensor: SensorState


def find_field(state: Any, name: str) -> jax.Array | None:
    """The first NamedTuple field called ``name`` found depth-first inside ``state`` (None if none).

    Example:
        >>> class S(NamedTuple):
        ...     step_size: float
        >>> find_field(((), S(0.5)), "step_size")
        0.5
    """
    if hasattr(state, "_fields") and name in state._fields:
        return getattr(state, name)
    if isinstance(state, tuple | list):
        for child in state:
            got = find_field(child, name)
            if got is not None:
                return got
    elif isinstance(state, dict):
        for child in state.values():
            got = find_field(child, name)
            if got is not None:
                return got
    return None


def observed(
    inner: optax.GradientTransformation,
    *,
    workers: int,
    max_staleness: int,
    step_size: float | Callable[[Any], jax.Array],
) -> optax.GradientTransformationExtraArgs:
    """``inner`` with the total-momentum readings of the module docstring logged at every step.

    ``update(g, state, params, staleness=tau, **extra)`` passes ``g``, ``params`` and ``extra``
    (``staleness`` included) to ``inner`` unchanged and returns its updates.

    Args:
        inner: the optimizer; its updates are the moves ``d_{k+1}``.
        workers: ``M >= 1``; the numerator's step is ``alpha_k / M``.
        max_staleness: largest staleness paired (larger ones give no reading), ``>= 0``.
        step_size: ``alpha`` (a number ``> 0``), or a function of ``inner``'s state after the update
            returning the factor that multiplied the gradient in the move just made.

    Raises:
        ValueError: for a value outside the ranges above.

    Example:
        >>> opt = observed(optax.sgd(0.1, 0.5), workers=1, max_staleness=0, step_size=0.1)
        >>> state = opt.init(jnp.ones(3))
        >>> d1, state = opt.update(jnp.array([1.0, 2.0, 0.5]), state)
        >>> d2, state = opt.update(jnp.array([0.5, 0.0, 1.0]), state)
        >>> round(float(state.sensor.total_median), 6), int(state.sensor.total_size)
        (0.5, 2)
        >>> round(float(state.sensor.total_ls_num / state.sensor.total_ls_den), 6)
        0.5
    """
    if int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be an integer >= 1 (got {workers!r})")
    if int(max_staleness) != max_staleness or max_staleness < 0:
        raise ValueError(f"max_staleness must be an integer >= 0 (got {max_staleness!r})")
    if not callable(step_size) and not step_size > 0:
        raise ValueError(f"step_size must be > 0 or a function of the state (got {step_size!r})")
    rows = int(max_staleness) + 2
    inner = optax.with_extra_args_support(inner)

    def alpha_of(inner_state: Any) -> jax.Array:
        return jnp.asarray(step_size(inner_state) if callable(step_size) else step_size)

    def init_fn(params: Any) -> ObservedState:
        flat, _ = ravel_pytree(params)
        zero = jnp.zeros((), flat.dtype)
        sensor = SensorState(
            ring=jnp.zeros((rows, flat.size), flat.dtype),
            count=jnp.zeros((), jnp.int32),
            total_median=jnp.asarray(jnp.nan, flat.dtype),
            total_ls_num=zero,
            total_ls_den=zero,
            total_size=jnp.zeros((), jnp.int32),
        )
        return ObservedState(inner.init(params), sensor)

    def update_fn(
        updates: Any, state: ObservedState, params: Any = None, *, staleness: Any = 0, **extra: Any
    ) -> tuple[Any, ObservedState]:
        moves, inner_state = inner.update(
            updates, state.inner, params, staleness=staleness, **extra
        )
        sen = state.sensor
        g, _ = ravel_pytree(updates)
        g = g.astype(sen.ring.dtype)
        k = sen.count
        ring = sen.ring.at[k % rows].set(ravel_pytree(moves)[0].astype(sen.ring.dtype))
        tau = jnp.asarray(staleness, jnp.int32)
        s = k - tau
        d_next, d_prev = ring[s % rows], ring[(s - 1) % rows]
        used = g != 0
        d_prev = jnp.where(used, d_prev, 0.0)  # a zero previous move is left out by the sensor
        a = (alpha_of(inner_state) / workers).astype(sen.ring.dtype)
        mu_hat = momentum_sensor(d_next, d_prev, g, a)
        num = jnp.sum((d_next + a * g) * d_prev)
        den = jnp.sum(d_prev * d_prev)
        valid = (tau >= 0) & (tau <= rows - 2) & (s >= 1) & jnp.isfinite(num) & (den > 0)
        new = SensorState(
            ring=ring,
            count=k + 1,
            total_median=jnp.where(valid & jnp.isfinite(mu_hat), mu_hat, jnp.nan).astype(
                sen.total_median.dtype
            ),
            total_ls_num=jnp.where(valid, num, 0.0).astype(sen.total_ls_num.dtype),
            total_ls_den=jnp.where(valid, den, 0.0).astype(sen.total_ls_den.dtype),
            total_size=jnp.where(valid, jnp.sum(used & (d_prev != 0), dtype=jnp.int32), 0),
        )
        return moves, ObservedState(inner_state, new)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
