"""Total-momentum sensor: the median ratio of consecutive moves, under (possibly stale) gradients.

Zhang & Mitliagkas, "YellowFin and the Art of Momentum Tuning" (arXiv 1706.03471), Sec. 4;
Mitliagkas, Zhang, Hadjis, Re, "Asynchrony begets momentum" (arXiv 1605.09774): asynchrony adds
implicit momentum, so the total momentum exceeds the algorithmic one.

Reading (per coordinate i, median over coordinates), for the gradient g evaluated at x_s:

    mu_hat = median_i (x_{s+1,i} - x_{s,i} + a_i * g_i) / (x_{s,i} - x_{s-1,i}).

Under staleness tau the gradient applied at step k was evaluated at x_s with s = k - tau (the
paper's stale form): it is paired with the moves around x_s, kept in a short ring of past moves on
a fixed random sample of coordinates. Two numerator conventions:

* ``"algorithmic"`` (the paper's convention): a = the step size that multiplied this gradient.
  Synchronously this reads the algorithmic momentum exactly; under staleness it reads it up to a
  bias of order a*h*tau, which vanishes with the step.
* ``"total"``: a = step size / ``effective_workers`` (M). For M workers with geometric staleness
  the mean dynamics are E d_{s+1} = (1 - 1/M) E d_s - (a/M) grad f(x_s) (asynchrony paper,
  Sec. 3), so this reads the total momentum, about 1 - (1 - mu_algo)/M. With M = 1 both coincide.

The step a may differ per coordinate (Adam, MoMo-Adam): see ``optimizers.effective_step`` and
``theory.momentum_readings`` for what the sensor reads on optimizers whose momentum is an
averaging weight.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optimizers._common import stat_dtype

__all__ = [
    "SensorState",
    "momentum_sensor",
    "sample_coordinates",
    "sensor_init",
    "sensor_step",
]


def momentum_sensor(
    delta_next: jax.Array,
    delta_prev: jax.Array,
    grad: jax.Array,
    step_size: jax.Array | float,
    *,
    min_denominator: float = 1e-6,
) -> jax.Array:
    """Median over coordinates of (delta_next + step_size * grad) / delta_prev.

    YellowFin (arXiv 1706.03471), Sec. 4, total-momentum estimate. Coordinates whose
    |delta_prev| is at most ``min_denominator`` times the largest |delta_prev| (or zero) are
    excluded; NaN when none is left. A pure jnp function (jit/vmap friendly).

    Args:
        delta_next: x_{s+1} - x_s, one-dimensional.
        delta_prev: x_s - x_{s-1}, same shape.
        grad: gradient evaluated at x_s, same shape.
        step_size: the numerator's step size, scalar or one per coordinate (see the module
            docstring for the conventions).
        min_denominator: relative threshold in [0, 1).

    Returns:
        The median ratio (scalar, float32 or wider).

    Example:
        >>> import jax.numpy as jnp
        >>> d_prev = jnp.array([1.0, -2.0, 0.5]); g = jnp.array([0.3, 0.1, -0.2])
        >>> d_next = 0.7 * d_prev - 0.1 * g
        >>> round(float(momentum_sensor(d_next, d_prev, g, 0.1)), 5)
        0.7
    """
    dt = jnp.promote_types(jnp.result_type(delta_prev), jnp.float32)
    dn, dp, g = (jnp.ravel(jnp.asarray(a, dt)) for a in (delta_next, delta_prev, grad))
    scale = jnp.max(jnp.where(jnp.isfinite(dp), jnp.abs(dp), 0.0))
    ok = (jnp.abs(dp) > min_denominator * scale) & (jnp.abs(dp) > 0) & jnp.isfinite(dp)
    ratio = (dn + jnp.asarray(step_size, dt) * g) / jnp.where(ok, dp, 1.0)
    ok = ok & jnp.isfinite(ratio)
    return _median_of_finite(ratio, ok)


def _median_of_finite(x: jax.Array, mask: jax.Array) -> jax.Array:
    """``jnp.nanmedian(where(mask, x, nan))`` for finite ``x``, by selection instead of a sort.

    The two middle order statistics are found by bisection on the integer keys of the values
    (an order-preserving map of the IEEE bit patterns), one pass over the sample per bit: exact,
    and much cheaper than XLA's sort on CPU. The result combines them with the weights of
    ``jnp.nanmedian``'s linear interpolation (1 and 0, or 1/2 and 1/2), so the value is the same;
    NaN when the mask is empty.
    """
    bits = 32 if x.dtype.itemsize == 4 else 64
    ity = jnp.int32 if bits == 32 else jnp.int64
    low_mask = jnp.asarray(2 ** (bits - 1) - 1, ity)
    raw = jax.lax.bitcast_convert_type(x, ity)
    keys = jnp.where(raw < 0, raw ^ low_mask, raw)  # monotone in the float value
    count = jnp.sum(mask, dtype=ity)
    q = 0.5 * (count - 1).astype(x.dtype)
    lo_rank = jnp.clip(jnp.floor(q), 0, jnp.maximum(count - 1, 0)).astype(ity)
    hi_rank = jnp.clip(jnp.ceil(q), 0, jnp.maximum(count - 1, 0)).astype(ity)
    ranks = jnp.stack([lo_rank, hi_rank])
    big = jnp.iinfo(ity)
    lo = jnp.full((2,), jnp.min(jnp.where(mask, keys, big.max)), ity)
    hi = jnp.full((2,), jnp.max(jnp.where(mask, keys, big.min)), ity)

    def body(_: int, bounds: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        # Invariant: the wanted statistic's key lies in [lo, hi]; mid = floor((lo + hi) / 2)
        # without overflow.
        lo, hi = bounds
        mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)
        below = jnp.sum(mask[None, :] & (keys[None, :] <= mid[:, None]), axis=1, dtype=ity)
        enough = below > ranks
        return jnp.where(enough, lo, mid + 1), jnp.where(enough, mid, hi)

    lo, _ = jax.lax.fori_loop(0, bits + 1, body, (lo, hi))
    vals = jax.lax.bitcast_convert_type(jnp.where(lo < 0, lo ^ low_mask, lo), x.dtype)
    high_weight = q - jnp.floor(q)
    out = vals[0] * (1 - high_weight) + vals[1] * high_weight
    return jnp.where(count > 0, out, jnp.nan).astype(x.dtype)


class SensorState(NamedTuple):
    """Ring of the last moves on a fixed sample of coordinates.

    Attributes:
        indices: per parameter leaf, the sampled flat indices (int32).
        ring: (max_staleness + 2, n_sampled) past moves; row k % rows holds the move of step k.
        count: steps recorded.
    """

    indices: tuple
    ring: jax.Array
    count: jax.Array


def sensor_init(params: Any, sensor_size: int, max_staleness: int, key: Any) -> SensorState:
    """Sample ``sensor_size`` coordinates (all when fewer), proportionally to the leaf sizes."""
    leaves = jax.tree_util.tree_leaves(params)
    sizes = [int(np.prod(np.shape(leaf))) for leaf in leaves]
    total = sum(sizes)
    key = jax.random.PRNGKey(key) if isinstance(key, int) else key
    if total <= sensor_size:
        indices = tuple(jnp.arange(n, dtype=jnp.int32) for n in sizes)
    else:
        # Largest-remainder allocation of the sample over leaves (static, from the shapes).
        share = np.array(sizes, dtype=np.float64) * sensor_size / total
        counts = np.floor(share).astype(int)
        for i in np.argsort(-(share - counts))[: sensor_size - counts.sum()]:
            counts[i] += 1
        keys = jax.random.split(key, len(sizes))
        indices = tuple(
            jnp.sort(jax.random.randint(k, (int(c),), 0, n, dtype=jnp.int32))
            for k, c, n in zip(keys, counts, sizes, strict=True)
        )
    n = sum(int(ix.shape[0]) for ix in indices)
    dt = stat_dtype(params)
    return SensorState(indices, jnp.zeros((max_staleness + 2, n), dt), jnp.zeros((), jnp.int32))


def sample_coordinates(tree: Any, indices: tuple, dtype: jnp.dtype) -> jax.Array:
    """Gather the sampled coordinates of a pytree shaped like the parameters."""
    leaves = jax.tree_util.tree_leaves(tree)
    parts = [jnp.ravel(leaf)[ix].astype(dtype) for leaf, ix in zip(leaves, indices, strict=True)]
    return jnp.concatenate(parts) if parts else jnp.zeros((0,), dtype)


def sensor_step(
    state: SensorState,
    move: Any,
    grad: Any,
    step_size: Any,
    staleness: Any,
    *,
    min_denominator: float,
) -> tuple[jax.Array, jax.Array, SensorState]:
    """Record this step's move and read the sensor for the gradient applied in it.

    The gradient of step k was evaluated at x_s, s = k - staleness; it is paired with the moves
    d_{s+1} = x_{s+1} - x_s (row s) and d_s (row s - 1). The reading is valid when
    0 <= staleness <= max_staleness, s >= 1 and the median is finite. ``step_size`` is a scalar
    or a pytree shaped like the parameters (one step per coordinate, e.g. Adam's
    lr (1 - b1) / sqrt(v)); only the sampled coordinates are read.

    Returns:
        ``(mu_hat, valid, new_state)``.
    """
    rows = state.ring.shape[0]
    dt = state.ring.dtype
    k = state.count
    ring = state.ring.at[k % rows].set(sample_coordinates(move, state.indices, dt))
    tau = jnp.asarray(staleness, jnp.int32)
    s = k - tau
    d_next = ring[s % rows]
    d_prev = ring[(s - 1) % rows]
    g = sample_coordinates(grad, state.indices, dt)
    if not _is_scalar(step_size):
        step_size = sample_coordinates(step_size, state.indices, dt)  # one step per coordinate
    mu_hat = momentum_sensor(d_next, d_prev, g, step_size, min_denominator=min_denominator)
    valid = (tau >= 0) & (tau <= rows - 2) & (s >= 1) & jnp.isfinite(mu_hat)
    return mu_hat, valid, SensorState(state.indices, ring, k + 1)


def _is_scalar(x: Any) -> bool:
    """A single zero-dimensional leaf (a scalar step), as opposed to a parameter-shaped tree."""
    leaves = jax.tree_util.tree_leaves(x)
    return len(leaves) == 1 and jnp.ndim(leaves[0]) == 0 and not isinstance(x, list | tuple | dict)
