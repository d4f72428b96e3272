"""Total-momentum sensor applied to a recorded trajectory.

YellowFin (Zhang & Mitliagkas, arXiv 1706.03471, Sec. 4) measures the momentum the dynamics actually
have, per coordinate ``i``,

    mu_hat_i = (x_{s+1,i} - x_{s,i} + a * g_i) / (x_{s,i} - x_{s-1,i}),

and takes the median over coordinates (``optimizers.momentum_sensor``). Here it is read on every
step of a recorded trajectory. Which gradient and which step size ``a`` enter the numerator
decides what is measured:

* the gradient applied at step ``s`` with the algorithm's step size: reads the algorithmic momentum
  (exactly, up to rounding, for heavy ball / SGD with momentum, synchronous or not);
* the exact gradient at ``x_s`` (``AsyncTrajectory.fresh_grads``) with ``a = alpha / M``: reads the
  total momentum of the mean dynamics, about ``1 - (1 - mu_L)/M`` for ``M`` workers with geometric
  staleness (Mitliagkas et al., arXiv 1605.09774, Theorem 2); the bias is of order
  ``alpha * h * E[tau]``, small when the step is small;
* a stale gradient, evaluated at ``x_s`` with ``s = t - tau_t`` but applied at step ``t`` (pass
  ``staleness``): the paper's stale form, pairing the gradient with the moves around ``x_s``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optimizers import momentum_sensor


class SensorReading(NamedTuple):
    """Sensor read on a trajectory.

    Attributes:
        per_step: shape ``(T,)``, the reading paired with ``x_s`` at index ``s`` (NaN where
            undefined, always at ``s = 0``), float64.
        median: median of the finite readings after ``burn_in``.
        mean: mean of the finite readings after ``burn_in``.
        stderr: standard error of ``mean`` by batch means (20 batches), robust to autocorrelation.
        n_valid: number of finite readings used.
    """

    per_step: np.ndarray
    median: float
    mean: float
    stderr: float
    n_valid: int


def _batch_means_stderr(values: np.ndarray, n_batches: int = 20) -> float:
    n = values.size
    if n < 2 * n_batches:
        return float(np.std(values, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    size = n // n_batches
    means = values[: size * n_batches].reshape(n_batches, size).mean(axis=1)
    return float(np.std(means, ddof=1) / np.sqrt(n_batches))


def total_momentum_from_trajectory(
    iterates: Any,
    grads: Any,
    step_size: float | Any,
    *,
    staleness: Any = None,
    burn_in: int = 0,
    min_denominator: float = 1e-6,
) -> SensorReading:
    """Read the momentum sensor on every step of a full-resolution trajectory.

    Args:
        iterates: ``x_0..x_T``, shape ``(T + 1, d)`` (record every step, all coordinates).
        grads: shape ``(T, d)``. Without ``staleness``, ``grads[s]`` is the gradient paired with the
            moves around ``x_s`` (the one applied in step ``s -> s+1``, or the exact gradient at
            ``x_s``). With ``staleness``, ``grads[t]`` is the gradient applied in step ``t`` and
            evaluated at ``x_{t - staleness[t]}``; it is paired with the moves around that point.
        step_size: ``a`` in the numerator, a scalar or one value per row of ``grads``.
        staleness: optional int array ``(T,)`` (the stale form).
        burn_in: readings at ``s < burn_in`` are left out of the summaries.
        min_denominator: relative threshold below which a coordinate's denominator is ignored.

    Returns:
        A :class:`SensorReading`.

    Example:
        >>> x = np.array([[1.0, 2.0], [0.5, 1.0], [0.29, 0.58]])
        >>> g = np.array([[0.5, 1.0], [0.05, 0.1]])  # step 1: d_next = 0.4 d_prev - 0.2 g
        >>> round(total_momentum_from_trajectory(x, g, 0.2).median, 6)
        0.4
    """
    x = jnp.asarray(iterates)
    g = jnp.asarray(grads)
    if x.ndim != 2 or x.shape[0] < 3:
        raise ValueError(f"iterates must have shape (T + 1, d) with T >= 2 (got {x.shape})")
    t_steps = x.shape[0] - 1
    if g.shape != (t_steps, x.shape[1]):
        raise ValueError(f"grads must have shape {(t_steps, x.shape[1])} (got {g.shape})")
    a = np.asarray(step_size, dtype=np.float64)
    if a.ndim not in (0, 1) or (a.ndim == 1 and a.shape != (t_steps,)):
        raise ValueError(f"step_size must be a scalar or have shape ({t_steps},)")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError("step_size must be finite and >= 0")
    if not isinstance(burn_in, (int, np.integer)) or not 0 <= burn_in < t_steps:
        raise ValueError(f"burn_in must be an integer in [0, {t_steps - 1}] (got {burn_in!r})")
    a = np.broadcast_to(a, (t_steps,))
    deltas = x[1:] - x[:-1]  # deltas[s] = x_{s+1} - x_s
    if staleness is None:
        s = np.arange(1, t_steps)
        g_used, a_used = g[1:], a[1:]
    else:
        tau = np.asarray(staleness)
        if tau.shape != (t_steps,) or not np.issubdtype(tau.dtype, np.integer) or np.any(tau < 0):
            raise ValueError(f"staleness must be a non-negative int array of shape ({t_steps},)")
        t = np.arange(t_steps)
        s_all = t - tau
        keep = s_all >= 1
        s, g_used, a_used = s_all[keep], g[np.flatnonzero(keep)], a[keep]
    read = jax.vmap(
        lambda dn, dp, gg, aa: momentum_sensor(dn, dp, gg, aa, min_denominator=min_denominator)
    )(deltas[s], deltas[s - 1], g_used, jnp.asarray(a_used, g.dtype))
    per_step = np.full(t_steps, np.nan)
    # With staleness several gradients can pair with the same point; keep the latest reading.
    per_step[s] = np.asarray(read, dtype=np.float64)
    use = per_step[burn_in:]
    use = use[np.isfinite(use)]
    if use.size == 0:
        return SensorReading(per_step, float("nan"), float("nan"), float("nan"), 0)
    return SensorReading(
        per_step, float(np.median(use)), float(np.mean(use)), _batch_means_stderr(use), use.size
    )
