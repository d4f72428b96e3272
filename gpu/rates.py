"""Per-variable convergence rates (YellowFin, Zhang & Mitliagkas, arXiv 1706.03471, Sec. 3.1).

In the robust region heavy-ball momentum contracts every direction at rate ``sqrt(mu)``. On a real
network the paper tracks single scalar variables with a fixed ``mu`` and a tuned learning rate and
plots ``|x_{i,t} - x_i^ref| / |x_{i,0} - x_i^ref|`` against ``sqrt(mu)^t``. The measurement here:

1. Sample K scalar coordinates of the parameters (:func:`sample_coordinates`, explicit key) and
   record them every step (``train(..., track=coords)`` gives ``metrics["tracked"]``, ``(T + 1)``
   rows after appending the final parameters).
2. Reference point: the mean of the last ``tail`` recorded values, ``x_i^ref = mean_{t > T - tail}
   x_{i,t}`` (the end of a long run, averaged to damp the final noise).
3. Normalised distance ``r_{i,t} = |x_{i,t} - x_i^ref| / |x_{i,0} - x_i^ref|`` and its upper
   envelope ``e_{i,t} = max_{s >= t} r_{i,s}`` (removes the oscillation of complex eigenvalues;
   for ``r_t = rho^t |cos(theta t + phi)|`` the envelope runs through the peaks, on ``rho^t``).
4. Rate ``rho_i = exp(slope)`` of the least-squares line through ``log e_{i,t}`` for ``t`` in
   ``[0, t_i)``, ``t_i`` the first step with ``e_{i,t} < floor`` or the start of the tail.
5. A variable *follows* ``sqrt(mu)`` when ``|log rho_i - log sqrt(mu)| <= rel_tol |log sqrt(mu)|``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class Coordinates:
    """Scalar coordinates of a parameter pytree: ``leaf[k]`` (flattened) at ``flat[k]``."""

    leaf: tuple[int, ...]
    flat: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.flat)


def sample_coordinates(params: Any, num: int, key: jax.Array) -> Coordinates:
    """Draw ``num`` distinct coordinates uniformly among all scalars of ``params``.

    Raises:
        ValueError: ``num`` outside [1, number of scalars].
    """
    sizes = np.array([np.size(x) for x in jax.tree_util.tree_leaves(params)], dtype=np.int64)
    total = int(sizes.sum())
    if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= total:
        raise ValueError(f"num must be an integer in [1, {total}] (got {num!r})")
    picks = np.sort(np.asarray(jax.random.choice(key, total, (num,), replace=False)))
    edges = np.cumsum(sizes)
    leaf = np.searchsorted(edges, picks, side="right")
    flat = picks - (edges - sizes)[leaf]
    return Coordinates(tuple(int(i) for i in leaf), tuple(int(i) for i in flat))


def gather_coordinates(params: Any, coords: Coordinates) -> jax.Array:
    """The values of ``coords`` in ``params`` as a float32 vector of length K (traceable)."""
    leaves = jax.tree_util.tree_leaves(params)
    return jnp.stack(
        [
            leaves[i].reshape(-1)[j].astype(jnp.float32)
            for i, j in zip(coords.leaf, coords.flat, strict=True)
        ]
    )


@dataclass(frozen=True)
class RateReport:
    """Result of :func:`per_variable_rates`.

    Attributes:
        rates: measured ``rho_i`` per variable (NaN where fewer than ``min_points`` points fit).
        fit_steps: number of steps each fit used.
        reference: ``x_i^ref``.
        normalized: ``r_{i,t}``, shape ``(T + 1, K)``.
        target: ``sqrt(mu)``.
        fraction_following: fraction of variables with a finite rate within ``rel_tol`` of the
            target in log scale.
        fraction_at_least_as_fast: fraction with ``log rho_i <= log target + rel_tol |log target|``.
    """

    rates: np.ndarray
    fit_steps: np.ndarray
    reference: np.ndarray
    normalized: np.ndarray
    target: float
    fraction_following: float
    fraction_at_least_as_fast: float


def per_variable_rates(
    trajectory: np.ndarray,
    momentum: float,
    *,
    tail: int = 10,
    floor: float = 1e-3,
    rel_tol: float = 0.2,
    min_points: int = 5,
) -> RateReport:
    """Measure each tracked variable's linear rate and compare it with ``sqrt(momentum)``.

    Args:
        trajectory: ``(T + 1, K)`` values ``x_{i,t}`` (row 0: start).
        momentum: the fixed momentum ``mu`` in (0, 1).
        tail: number of last rows averaged into the reference point (>= 1, < T).
        floor: envelope level below which the fit stops (noise floor), in (0, 1).
        rel_tol: tolerance on ``log rho`` relative to ``|log sqrt(mu)|``, > 0.
        min_points: fewest points a fit may use (>= 2).

    Raises:
        ValueError: naming the argument out of range.
    """
    x = np.asarray(trajectory, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 3 or x.shape[1] < 1:
        raise ValueError(f"trajectory must have shape (T + 1, K) with T >= 2 (got {x.shape})")
    if not 0.0 < momentum < 1.0:
        raise ValueError(f"momentum must lie in (0, 1) (got {momentum!r})")
    if not isinstance(tail, int) or not 1 <= tail < x.shape[0] - 1:
        raise ValueError(f"tail must be an integer in [1, {x.shape[0] - 2}] (got {tail!r})")
    if not 0.0 < floor < 1.0:
        raise ValueError(f"floor must lie in (0, 1) (got {floor!r})")
    if not rel_tol > 0:
        raise ValueError(f"rel_tol must be > 0 (got {rel_tol!r})")
    if not isinstance(min_points, int) or min_points < 2:
        raise ValueError(f"min_points must be an integer >= 2 (got {min_points!r})")
    ref = x[-tail:].mean(axis=0)
    dist = np.abs(x - ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = dist / dist[0]
    envelope = np.maximum.accumulate(r[::-1], axis=0)[::-1]
    horizon = x.shape[0] - tail
    rates = np.full(x.shape[1], np.nan)
    used = np.zeros(x.shape[1], dtype=np.int64)
    for i in range(x.shape[1]):
        e = envelope[:horizon, i]
        if not np.isfinite(e[0]):
            continue
        below = np.nonzero(e < floor)[0]
        stop = int(below[0]) if below.size else horizon
        if stop < min_points:
            continue
        t = np.arange(stop, dtype=np.float64)
        slope = np.polyfit(t, np.log(e[:stop]), 1)[0]
        rates[i], used[i] = np.exp(slope), stop
    target = float(np.sqrt(momentum))
    log_t = np.log(target)
    ok = np.isfinite(rates)
    with np.errstate(divide="ignore", invalid="ignore"):
        close = ok & (np.abs(np.log(rates) - log_t) <= rel_tol * abs(log_t))
        fast = ok & (np.log(rates) <= log_t * (1.0 - rel_tol))
    k = x.shape[1]
    return RateReport(rates, used, ref, r, target, float(close.sum() / k), float(fast.sum() / k))
