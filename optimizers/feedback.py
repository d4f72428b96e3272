"""Total-momentum sensor and closed-loop momentum control under (possibly stale) gradients.

Zhang & Mitliagkas, "YellowFin and the Art of Momentum Tuning" (arXiv 1706.03471), Sec. 4
(closed-loop YellowFin); Mitliagkas, Zhang, Hadjis, Ré, "Asynchrony begets momentum"
(arXiv 1605.09774): asynchrony adds implicit momentum, so the total momentum exceeds the
algorithmic one.

Sensor (per coordinate i, median over coordinates), for the gradient g evaluated at x_s:

    mu_hat = median_i (x_{s+1,i} - x_{s,i} + a * g_i) / (x_{s,i} - x_{s-1,i}).

Under staleness tau the gradient applied at step k was evaluated at x_s with s = k - tau (the
paper's stale form): it is paired with the moves around x_s, kept in a short ring of past moves on
a fixed random sample of coordinates. Two numerator conventions:

* ``"algorithmic"`` (the default; the paper's convention): a = the step size that multiplied this
  gradient. Synchronously this reads the algorithmic momentum exactly; under staleness it reads it
  up to a bias of order a*h*tau, which vanishes with the step, so the loop's set point is an
  algorithmic momentum and every target in [0, 1) is reachable (to first order in the step).
* ``"total"``: a = step size / ``effective_workers`` (M). For M workers with geometric staleness
  the mean dynamics are E d_{s+1} = (1 - 1/M) E d_s - (a/M) grad f(x_s) (asynchrony paper, Sec. 3),
  so this reads the total momentum, about 1 - (1 - mu_algo)/M (1 - 1/M at mu_algo = 0). With M = 1
  both conventions coincide. Reachability: with mu_algo clipped to [-0.9, 0.999] the reachable
  total momentum is, to first order, [1 - 1.9/M, 1 - 0.001/M] (0.881 to 0.99994 for M = 16). A
  target below 1 - 1.9/M (e.g. SingleStep's momentum early in training, often 0 to 0.3) cannot be
  reached: the controller then sits on its floor mu_algo = -0.9. Use it with a fixed
  ``target_momentum`` inside that range, or with few workers.

Feedback (YellowFin Sec. 4): mu_algo <- clip(mu_algo + gain * (mu_target - mu_hat), lo, hi).

Choice of the default gain (0.02). Near the set point the sensor reads mu_hat_k = s * mu_algo_{k-d}
+ b, with b the implicit momentum (slowly varying), s = d mu_hat / d mu_algo (1 for the algorithmic
convention, about 1/M for the total one) and d the sensor delay (the staleness). The error
e = mu_target - mu_hat then obeys e_{k+1} = e_k - gain * s * e_{k-d}: without delay
e_{k+1} = (1 - gain*s) e_k, monotone for gain*s < 1; with delay d this is the fixed-delay recursion
of the asynchrony reference, stable iff gain*s < 2 sin(pi / (2 (2d + 1))). With gain = 0.02 the
loop is stable for every delay d <= 78 steps (far beyond the staleness of 16-32 workers), and the
noise of the median sensor is averaged over a time constant of 1/(gain*s) steps (50 with the
algorithmic convention, 50*M with the total one), short next to a training run of thousands of
steps. Gains near 0.1 lose stability at d ~ 15 (16 workers);
gains near 0.005 track a moving target too slowly. The tests check convergence and stability.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optimizers._common import (
    check_int,
    check_key,
    check_scalar,
    guard_scalars,
    masked_updates,
    stat_dtype,
    tree_all_finite,
    value_ok,
)

SensorConvention = Literal["algorithmic", "total"]
DEFAULT_GAIN = 0.02
# Safe range of the algorithmic momentum: negative values compensate implicit momentum; the upper
# end keeps the heavy-ball recursion strictly stable (|mu| < 1).
MOMENTUM_RANGE = (-0.9, 0.999)
# Arguments of :func:`momentum_feedback` that shape arrays or seed the coordinate sample: they
# must stay Python values, so ``optax.inject_hyperparams`` has to treat them as static:
# ``optax.inject_hyperparams(momentum_feedback, static_args=MOMENTUM_FEEDBACK_STATIC_ARGS)``.
MOMENTUM_FEEDBACK_STATIC_ARGS = ("sensor_size", "max_staleness", "key")


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
        step_size: the numerator's step size (see the module docstring for the conventions).
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
    step_size: jax.Array,
    staleness: Any,
    *,
    min_denominator: float,
) -> tuple[jax.Array, jax.Array, SensorState]:
    """Record this step's move and read the sensor for the gradient applied in it.

    The gradient of step k was evaluated at x_s, s = k - staleness; it is paired with the moves
    d_{s+1} = x_{s+1} - x_s (row s) and d_s (row s - 1). The reading is valid when
    0 <= staleness <= max_staleness, s >= 1 and the median is finite.

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
    mu_hat = momentum_sensor(d_next, d_prev, g, step_size, min_denominator=min_denominator)
    valid = (tau >= 0) & (tau <= rows - 2) & (s >= 1) & jnp.isfinite(mu_hat)
    return mu_hat, valid, SensorState(state.indices, ring, k + 1)


def feedback_update(
    mu_algo: jax.Array,
    mu_target: jax.Array,
    mu_hat: jax.Array,
    valid: jax.Array,
    gain: float,
    momentum_range: tuple[float, float] = MOMENTUM_RANGE,
) -> jax.Array:
    """mu_algo + gain * (mu_target - mu_hat), clipped; held when the reading is not valid."""
    step = jnp.where(valid, gain * (mu_target - jnp.where(valid, mu_hat, mu_target)), 0.0)
    return jnp.clip(mu_algo + step, momentum_range[0], momentum_range[1])


def check_loop_args(
    gain: float,
    sensor_convention: str,
    effective_workers: float,
    sensor_size: int,
    max_staleness: int,
    min_denominator: float,
    gain_name: str = "gain",
) -> None:
    """Validate the closed-loop hyper-parameters (ValueError naming the parameter)."""
    check_scalar(gain_name, gain, 0.0, 1.0, lo_open=True)
    if sensor_convention not in ("algorithmic", "total"):
        raise ValueError(
            f"sensor_convention must be 'algorithmic' or 'total' (got {sensor_convention!r})"
        )
    check_scalar("effective_workers", effective_workers, 1.0)
    check_int("sensor_size", sensor_size, 1)
    check_int("max_staleness", max_staleness, 0, 4096)
    check_scalar("min_denominator", min_denominator, 0.0, 1.0, hi_open=True)


def numerator_scale(sensor_convention: str, effective_workers: float) -> float:
    """Factor applied to the step size in the sensor's numerator."""
    return 1.0 if sensor_convention == "algorithmic" else 1.0 / effective_workers


class MomentumFeedbackState(NamedTuple):
    """State of :func:`momentum_feedback`.

    Attributes:
        delta: previous move (float32 or wider).
        sensor: the sampled ring of moves.
        count: accepted steps.
        learning_rate: alpha applied at the last step.
        momentum: algorithmic momentum applied at the last step.
        mu_algo: algorithmic momentum for the next step.
        mu_hat: last valid sensor reading (the target before the first one).
        mu_target: the set point.
        skipped: steps skipped for a non-finite gradient or loss (``value=``).
    """

    delta: Any
    sensor: SensorState
    count: jax.Array
    learning_rate: jax.Array
    momentum: jax.Array
    mu_algo: jax.Array
    mu_hat: jax.Array
    mu_target: jax.Array
    skipped: jax.Array

    LOGGED = (
        "learning_rate",
        "momentum",
        "mu_hat",
        "mu_algo",
        "mu_target",
        "skipped",
    )


def momentum_feedback(
    learning_rate: float | optax.Schedule,
    target_momentum: float,
    *,
    gain: float = DEFAULT_GAIN,
    initial_momentum: float | None = None,
    sensor_convention: SensorConvention = "algorithmic",
    effective_workers: float = 1.0,
    sensor_size: int = 4096,
    max_staleness: int = 64,
    min_denominator: float = 1e-6,
    key: int | jax.Array = 0,
) -> optax.GradientTransformationExtraArgs:
    """Heavy ball whose algorithmic momentum is steered so the measured momentum hits a target.

    Step (Polyak form, lr inside): d_{k+1} = mu_algo_k * d_k - alpha_k * g_k. Then the sensor
    reads mu_hat for the gradient of this step (paired with the moves around the point where it
    was evaluated, ``update(..., staleness=tau)``, 0 = synchronous, at most ``max_staleness``;
    larger or negative values leave the controller unchanged) and
    mu_algo <- clip(mu_algo + gain * (target_momentum - mu_hat), -0.9, 0.999). See the module
    docstring for the conventions and the choice of the default gain. A non-finite gradient, or a
    non-finite loss passed as ``value=`` (optional), skips the step and counts in ``skipped``.

    Dtypes: the move, the sensor and the controller are kept in float32 (float64 when a parameter
    is float64); parameters may be float64, float32, bfloat16 or float16. With bfloat16 or
    float16 parameters a move that is finite in float32 but overflows the parameter dtype
    (float16 tops out at 65504) is skipped like a non-finite gradient: parameters and state
    unchanged, ``skipped`` incremented (one more reduction, only for those dtypes).

    With ``optax.inject_hyperparams`` the arguments named in ``MOMENTUM_FEEDBACK_STATIC_ARGS``
    (``sensor_size``, ``max_staleness``, ``key``: they size the sensor's ring and sample) must be
    static: ``optax.inject_hyperparams(momentum_feedback,
    static_args=MOMENTUM_FEEDBACK_STATIC_ARGS)(0.1, 0.9)``. Every other numeric argument may be
    injected; ``learning_rate``, ``target_momentum``, ``gain`` and ``effective_workers`` are read
    at every step, ``initial_momentum`` only at ``init``.

    Args:
        learning_rate: alpha >= 0 (float or optax schedule).
        target_momentum: set point in [0, 1).
        gain: controller gain in (0, 1]; default 0.02 (stability argument in the module doc).
        initial_momentum: starting mu_algo in [-0.9, 0.999]; default the target.
        sensor_convention: ``"algorithmic"`` (default: the applied step size; the paper's
            convention) or ``"total"`` (step size / effective_workers; a target below
            1 - 1.9/M is unreachable, see the module docstring).
        effective_workers: M >= 1 for the total convention (ignored by the algorithmic one).
        sensor_size: number of sampled coordinates (all when the model is smaller).
        max_staleness: ring size minus two; staleness beyond it gives no reading.
        min_denominator: relative exclusion threshold of the sensor.
        key: int seed or JAX key for the coordinate sample.

    Raises:
        ValueError: for any hyper-parameter outside its range.

    Example:
        >>> import jax.numpy as jnp
        >>> opt = momentum_feedback(0.1, 0.5)
        >>> state = opt.init(jnp.ones(3))
        >>> float(state.mu_algo)
        0.5
    """
    check_scalar("learning_rate", learning_rate, 0.0)
    check_scalar("target_momentum", target_momentum, 0.0, 1.0, hi_open=True)
    if initial_momentum is not None:
        check_scalar("initial_momentum", initial_momentum, *MOMENTUM_RANGE)
    check_loop_args(
        gain, sensor_convention, effective_workers, sensor_size, max_staleness, min_denominator
    )
    check_key("key", key)
    scale = numerator_scale(sensor_convention, effective_workers)
    mu0 = target_momentum if initial_momentum is None else initial_momentum

    def lr_at(count: jax.Array, dt: jnp.dtype) -> jax.Array:
        return jnp.asarray(learning_rate(count) if callable(learning_rate) else learning_rate, dt)

    def init_fn(params: Any) -> MomentumFeedbackState:
        dt = stat_dtype(params)
        # One array per field (no shared buffers), so that the state can be donated.
        return MomentumFeedbackState(
            delta=jax.tree_util.tree_map(lambda p: jnp.zeros(jnp.shape(p), dt), params),
            sensor=sensor_init(params, sensor_size, max_staleness, key),
            count=jnp.zeros((), jnp.int32),
            learning_rate=lr_at(jnp.zeros((), jnp.int32), dt),
            momentum=jnp.asarray(mu0, dt),
            mu_algo=jnp.asarray(mu0, dt),
            mu_hat=jnp.asarray(target_momentum, dt),
            mu_target=jnp.asarray(target_momentum, dt),
            skipped=jnp.zeros((), jnp.int32),
        )

    def update_fn(
        updates: Any,
        state: MomentumFeedbackState,
        params: Any = None,
        *,
        staleness: Any = 0,
        value: Any = None,
        **extra_args: Any,
    ) -> tuple[Any, MomentumFeedbackState]:
        del params, extra_args
        dt = state.mu_algo.dtype
        alpha = lr_at(state.count, dt)
        mu = state.mu_algo
        # The set point is read here, not from the state, so that an injected target applies.
        mu_target = jnp.asarray(target_momentum, dt)
        grads = jax.tree_util.tree_map(lambda g: g if g.dtype == dt else g.astype(dt), updates)
        # The skip is folded into the one pass that writes the move (see heavy_ball).
        ok = tree_all_finite(grads) & jnp.isfinite(alpha) & value_ok(value)
        delta = jax.tree_util.tree_map(
            lambda g, d: jnp.where(ok, mu * d - alpha * g, d), grads, state.delta
        )
        if any(jnp.result_type(u) != dt for u in jax.tree_util.tree_leaves(updates)):
            # Parameters narrower than the statistics (float16, bfloat16): a finite move can
            # overflow when it is written in the parameter dtype (float16 tops out at 65504).
            # Such a step is skipped like a non-finite gradient (as in heavy_ball), before the
            # sensor records it. Decided at trace time: float32 parameters pay nothing.
            fits = tree_all_finite(
                jax.tree_util.tree_map(lambda d, u: d.astype(jnp.result_type(u)), delta, updates)
            )
            delta = jax.tree_util.tree_map(
                lambda new, old: jnp.where(fits, new, old), delta, state.delta
            )
            ok = ok & fits
        mu_hat, valid, sensor = sensor_step(
            state.sensor, delta, grads, alpha * scale, staleness, min_denominator=min_denominator
        )
        new_state = MomentumFeedbackState(
            delta=delta,
            sensor=sensor,
            count=state.count + 1,
            learning_rate=alpha,
            momentum=mu,
            mu_algo=feedback_update(mu, mu_target, mu_hat, valid, gain),
            mu_hat=jnp.where(valid, mu_hat, state.mu_hat),
            mu_target=mu_target,
            skipped=state.skipped,
        )
        return masked_updates(ok, delta, updates), guard_scalars(
            ok, new_state, state, guarded=("delta",)
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
