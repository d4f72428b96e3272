"""Closed-loop momentum around any optax optimizer whose momentum is injected.

Zhang & Mitliagkas, "YellowFin and the Art of Momentum Tuning" (arXiv 1706.03471), Sec. 4;
Mitliagkas, Zhang, Hadjis, Re, "Asynchrony begets momentum" (arXiv 1605.09774). The wrapper
measures the momentum of the wrapped optimizer's moves with the sensor of
``optimizers.momentum_sensor`` (paired with the moves around the point where a stale gradient
was evaluated: ``update(..., staleness=tau)``) and steers the injected momentum hyper-parameter
with the feedback law of ``optimizers.feedback_law``:

    mu_hat_k  = median_i (d_{s+1,i} + a_i g_i / M_conv) / d_{s,i},   s = k - tau_k,
    mu_{k+1}  = clip(mu_k + gain * (mu_target - mu_hat_k), lo, hi),

with M_conv = 1 (``"algorithmic"``) or ``effective_workers`` (``"total"``) and a the step that
multiplied the gradient in the move (``optimizers.effective_step``; what each optimizer's
sensor reads synchronously is derived in ``theory.momentum_readings``).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optimizers._common import (
    check_key,
    check_scalar,
    select_tree,
    stat_dtype,
    tree_all_finite,
    value_ok,
)
from optimizers.effective_step import StepSize, default_step_size, find_field
from optimizers.feedback_law import (
    DEFAULT_GAIN,
    MOMENTUM_RANGE,
    SensorConvention,
    check_loop_args,
    feedback_update,
    numerator_scale,
)
from optimizers.momentum_sensor import SensorState, sensor_init, sensor_step
from optimizers.yellowfin import yellowfin
from optimizers.yellowfin_state import YELLOWFIN_STATIC_ARGS

__all__ = [
    "CLOSED_LOOP_STATIC_ARGS",
    "ClosedLoopState",
    "LoopState",
    "closed_loop",
    "closed_loop_yellowfin",
]

# Arguments that size the sensor's ring and sample: static under ``optax.inject_hyperparams``
# (``optax.inject_hyperparams(closed_loop, static_args=CLOSED_LOOP_STATIC_ARGS)(inner, ...)``).
CLOSED_LOOP_STATIC_ARGS = ("sensor_size", "max_staleness", "key")

_INJECT = tuple(
    c
    for c in (
        getattr(optax, "InjectHyperparamsState", None),
        getattr(optax, "InjectStatefulHyperparamsState", None),
    )
    if c is not None
)


class LoopState(NamedTuple):
    """The controller of :func:`closed_loop`.

    Attributes:
        sensor: ring of sampled moves of the momentum sensor.
        mu_algo: the value of the controlled hyper-parameter for the next step.
        mu_hat: last valid sensor reading (the target before the first one).
        mu_target: the set point of the last step.
        skipped: steps skipped for a non-finite gradient or loss (the wrapped optimizer's own
            skips included).
    """

    sensor: SensorState
    mu_algo: jax.Array
    mu_hat: jax.Array
    mu_target: jax.Array
    skipped: jax.Array

    LOGGED = ("mu_hat", "mu_algo", "mu_target", "loop_skipped")

    @property
    def loop_skipped(self) -> jax.Array:
        """``skipped`` under a name that does not clash with the wrapped optimizer's counter."""
        return self.skipped


class ClosedLoopState(NamedTuple):
    """State of :func:`closed_loop`: the wrapped optimizer's state and the controller."""

    inner_state: Any
    loop: LoopState


def _check_hyperparam(inject: Any, hyperparam: str) -> None:
    if not isinstance(inject, _INJECT):
        raise ValueError(
            "closed_loop: the wrapped optimizer must be built with optax.inject_hyperparams "
            f"(its state is {type(inject).__name__}); hyperparam={hyperparam!r} is not injected"
        )
    if hyperparam not in inject.hyperparams:
        raise ValueError(
            f"hyperparam={hyperparam!r} is not an injected hyper-parameter of the wrapped "
            f"optimizer (injected: {sorted(inject.hyperparams)})"
        )
    if hyperparam in getattr(inject, "hyperparams_states", {}):
        raise ValueError(f"hyperparam={hyperparam!r} is a schedule: the loop needs a number")


def closed_loop(
    inner: optax.GradientTransformation,
    *,
    hyperparam: str = "momentum",
    target_momentum: float | str | None = None,
    gain: float = DEFAULT_GAIN,
    sensor_convention: SensorConvention = "algorithmic",
    effective_workers: float = 1.0,
    bounds: tuple[float, float] = MOMENTUM_RANGE,
    step_size: StepSize | None = None,
    sensor_size: int = 4096,
    max_staleness: int = 64,
    min_denominator: float = 1e-6,
    key: int | jax.Array = 0,
) -> optax.GradientTransformationExtraArgs:
    """Steer an injected momentum hyper-parameter so that the measured momentum hits a target.

    YellowFin Sec. 4 (arXiv 1706.03471), generalised: before each step the controlled
    hyper-parameter of ``inner`` is set to mu_algo; after it the sensor reads the momentum mu_hat
    of the move for the gradient of this step (paired with the moves around x_{k - tau},
    ``update(..., staleness=tau)``, 0 = synchronous, at most ``max_staleness``; other values give
    no reading), and mu_algo <- clip(mu_algo + gain * (mu_target - mu_hat), *bounds). Other extra
    arguments (``value=``, ``loss_fn=``, ...) reach ``inner``.

    A non-finite gradient or loss (``value=``), or a step the wrapped optimizer skips itself
    (its ``skipped`` counter grows), leaves the controller unchanged and counts in
    ``loop.skipped``; when the wrapped optimizer has no ``skipped`` counter (optax's own) its
    state is rolled back too and the update is zero. No host syncs: jit, ``optax.chain``,
    float32 and float64 parameters.

    Args:
        inner: the optimizer, built with ``optax.inject_hyperparams`` (``hyperparam`` numeric,
            not a schedule), e.g. ``optax.inject_hyperparams(optax.adam)(1e-3, b1=0.9)``.
        hyperparam: name of the controlled hyper-parameter (``"momentum"`` for optax.sgd,
            heavy_ball and yellowfin, ``"b1"`` for optax.adam and momo_adam, ``"beta"`` for momo).
        target_momentum: the set point: a number in [0, 1), the name of a scalar field of the
            wrapped optimizer's state read after each step (``"tuned_momentum"``: YellowFin's
            SingleStep mu), or None (default) for the hyper-parameter's initial value.
        gain: controller gain in (0, 1] (default 0.02; ``optimizers.feedback_law``).
        sensor_convention: ``"algorithmic"`` (a = the step) or ``"total"`` (a / M).
        effective_workers: M >= 1 of the total convention.
        bounds: (lo, hi) with -1 < lo < hi < 1, the range of the controlled value.
        step_size: the step a as a function of the wrapped optimizer's state after the step
            (scalar or parameter-shaped pytree); default: found from the state's kind
            (``optimizers.effective_step``), ValueError when unknown.
        sensor_size: number of sampled coordinates (all when the model is smaller).
        max_staleness: ring size minus two; staleness beyond it gives no reading.
        min_denominator: relative exclusion threshold of the sensor.
        key: int seed or JAX key of the coordinate sample.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` with state :class:`ClosedLoopState`.

    Raises:
        ValueError: naming the parameter: ``inner`` not injected or without ``hyperparam`` (or
            with it scheduled), a bad gain, bounds, target, convention, size or key, or a step
            size that cannot be found.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> opt = closed_loop(optax.inject_hyperparams(optax.adam)(1e-2, b1=0.9), hyperparam="b1")
        >>> state = opt.init(jnp.ones(3))
        >>> float(state.loop.mu_target) == float(jnp.float32(0.9))
        True
    """
    check_loop_args(
        gain, sensor_convention, effective_workers, sensor_size, max_staleness, min_denominator
    )
    check_key("key", key)
    if not isinstance(hyperparam, str):
        raise ValueError(f"hyperparam must be a name (str) (got {hyperparam!r})")
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError) as err:
        raise ValueError(f"bounds must be two numbers (lo, hi) (got {bounds!r})") from err
    if not -1.0 < lo < hi < 1.0:
        raise ValueError(f"bounds must satisfy -1 < lo < hi < 1 (got {bounds!r})")
    if target_momentum is not None and not isinstance(target_momentum, str):
        check_scalar("target_momentum", target_momentum, 0.0, 1.0, hi_open=True)
    if step_size is not None and not callable(step_size):
        raise ValueError(f"step_size must be None or a function of the state (got {step_size!r})")
    scale = numerator_scale(sensor_convention, effective_workers)
    inner = optax.with_extra_args_support(inner)

    def resolve(inject: Any) -> tuple[StepSize, bool]:
        _check_hyperparam(inject, hyperparam)
        if isinstance(target_momentum, str) and find_field(inject, target_momentum) is None:
            raise ValueError(
                f"target_momentum={target_momentum!r} names no field of the wrapped state"
            )
        rule = step_size if step_size is not None else default_step_size(inject)
        if rule is None:
            raise ValueError(
                "step_size: the wrapped optimizer's step is not known "
                "(optimizers.effective_step); pass step_size=lambda state: ..."
            )
        return rule, find_field(inject.inner_state, "skipped") is not None

    # Construction-time checks on the abstract state of a one-coordinate model (no computation).
    try:
        probe = jax.eval_shape(inner.init, jnp.zeros((1,), jnp.float32))
    except ValueError:  # a bad setting of the wrapped optimizer (injected factories check late)
        raise
    except Exception:  # an init that needs a particular parameter structure: checked at init
        probe = None
    if probe is not None:
        resolve(probe)

    def target_of(inject: Any, dt: jnp.dtype, initial: Any) -> jax.Array:
        if isinstance(target_momentum, str):
            return jnp.asarray(find_field(inject, target_momentum), dt)
        if target_momentum is None:  # the hyper-parameter's value at init, kept in the state
            return jnp.asarray(initial, dt)
        return jnp.asarray(target_momentum, dt)

    def init_fn(params: Any) -> ClosedLoopState:
        inject = inner.init(params)
        resolve(inject)
        dt = stat_dtype(params)
        target = target_of(inject, dt, inject.hyperparams[hyperparam])
        loop = LoopState(
            sensor=sensor_init(params, sensor_size, max_staleness, key),
            mu_algo=jnp.array(inject.hyperparams[hyperparam], dt, copy=True),
            mu_hat=jnp.array(target, dt, copy=True),
            mu_target=jnp.array(target, dt, copy=True),  # no buffer shared with inner's
            skipped=jnp.zeros((), jnp.int32),
        )
        return ClosedLoopState(inject, loop)

    def update_fn(
        updates: Any,
        state: ClosedLoopState,
        params: Any = None,
        *,
        staleness: Any = 0,
        value: Any = None,
        **extra_args: Any,
    ) -> tuple[Any, ClosedLoopState]:
        rule, self_guarded = resolve(state.inner_state)
        loop = state.loop
        dt = loop.mu_algo.dtype
        hps = dict(state.inner_state.hyperparams)
        hps[hyperparam] = loop.mu_algo.astype(jnp.result_type(hps[hyperparam]))
        inject = state.inner_state._replace(hyperparams=hps)
        if value is not None:
            extra_args["value"] = value
        moves, new_inject = inner.update(updates, inject, params, staleness=staleness, **extra_args)
        if self_guarded:
            # The wrapped optimizer skipped (and rolled itself back) when its counter grew; the
            # injection's step count and hyper-parameters are rolled back here (scalars).
            ok = find_field(new_inject.inner_state, "skipped") == find_field(
                inject.inner_state, "skipped"
            )
            old = state.inner_state._replace(inner_state=None)
            kept = select_tree(ok, new_inject._replace(inner_state=None), old)
            new_inject = kept._replace(inner_state=new_inject.inner_state)
        else:
            ok = tree_all_finite(updates) & value_ok(value)
            moves = jax.tree_util.tree_map(
                lambda u: jnp.where(ok, u, jnp.zeros((), u.dtype)), moves
            )
            new_inject = select_tree(ok, new_inject, state.inner_state)
        a = rule(new_inject)
        if not (isinstance(scale, float) and scale == 1.0):  # a traced M when injected
            a = jax.tree_util.tree_map(lambda x: x * scale, a)
        mu_hat, valid, sensor = sensor_step(
            loop.sensor, moves, updates, a, staleness, min_denominator=min_denominator
        )
        target = target_of(new_inject, dt, loop.mu_target)
        new_loop = LoopState(
            sensor=sensor,
            mu_algo=feedback_update(loop.mu_algo, target, mu_hat, valid, gain, (lo, hi)),
            mu_hat=jnp.where(valid, mu_hat, loop.mu_hat),
            mu_target=target,
            skipped=loop.skipped,
        )
        new_loop = select_tree(ok, new_loop, loop)._replace(
            skipped=loop.skipped + jnp.where(ok, 0, 1).astype(jnp.int32)
        )
        return moves, ClosedLoopState(new_inject, new_loop)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def closed_loop_yellowfin(
    *,
    target_momentum: float | None = None,
    gain: float = DEFAULT_GAIN,
    sensor_convention: SensorConvention = "algorithmic",
    effective_workers: float = 1.0,
    sensor_size: int = 4096,
    max_staleness: int = 64,
    min_denominator: float = 1e-6,
    key: int | jax.Array = 0,
    **yellowfin_kwargs: Any,
) -> optax.GradientTransformationExtraArgs:
    """Closed-loop YellowFin (arXiv 1706.03471, Sec. 4): :func:`closed_loop` around YellowFin.

    The composition ``closed_loop(optax.inject_hyperparams(yellowfin, static_args=
    YELLOWFIN_STATIC_ARGS)(tune_momentum=False, **yellowfin_kwargs), hyperparam="momentum",
    target_momentum="tuned_momentum", ...)``: the learning rate stays SingleStep's, the applied
    momentum is the controller's, the set point is SingleStep's momentum of each step (or the
    fixed ``target_momentum``). The sensor's step is YellowFin's applied learning rate times its
    gradient-clip factors (``YellowFinState.step_size``). With ``weight_decay`` the sensor sees
    the gradient without the decay term; chain ``optax.add_decayed_weights`` in front instead to
    include it. The injected hyper-parameters are kept in float32 (float64 with a float64
    parameter), whatever the parameter dtype: ``optax.inject_hyperparams`` would otherwise round
    them to bfloat16 or float16 with such parameters.

    Args:
        target_momentum: fixed set point in [0, 1); default SingleStep's momentum.
        gain, sensor_convention, effective_workers, sensor_size, max_staleness,
            min_denominator, key: as in :func:`closed_loop`.
        **yellowfin_kwargs: the arguments of :func:`optimizers.yellowfin` (``momentum`` is the
            controller's start value).

    Returns:
        The :func:`closed_loop` transformation (state :class:`ClosedLoopState`).
    """
    settings = dict(
        hyperparam="momentum",
        target_momentum="tuned_momentum" if target_momentum is None else target_momentum,
        gain=gain,
        sensor_convention=sensor_convention,
        effective_workers=effective_workers,
        sensor_size=sensor_size,
        max_staleness=max_staleness,
        min_denominator=min_denominator,
        key=key,
    )

    @functools.cache
    def loop(dtype: str) -> optax.GradientTransformationExtraArgs:
        make = optax.inject_hyperparams(
            yellowfin, static_args=YELLOWFIN_STATIC_ARGS, hyperparam_dtype=jnp.dtype(dtype)
        )
        return closed_loop(make(tune_momentum=False, **yellowfin_kwargs), **settings)

    yellowfin(tune_momentum=False, **yellowfin_kwargs)  # checks the Python values (injected: not)
    loop("float32")  # and the loop's settings

    def init_fn(params: Any) -> ClosedLoopState:
        return loop(jnp.dtype(stat_dtype(params)).name).init(params)

    def update_fn(
        updates: Any, state: ClosedLoopState, params: Any = None, **extra_args: Any
    ) -> tuple[Any, ClosedLoopState]:
        return loop(state.loop.mu_algo.dtype.name).update(updates, state, params, **extra_args)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
