"""YellowFin: momentum SGD with lr and momentum re-tuned every step.

Zhang & Mitliagkas, "YellowFin and the Art of Momentum Tuning" (arXiv 1706.03471, SysML 2019),
Algorithm 1 (tuner), Sec. 3.1 (SingleStep), Sec. 3.2 (oracles), following the official PyTorch
implementation as restated in reference/yellowfin.md. The closed loop (Sec. 4) is
``optimizers.closed_loop_yellowfin``: ``optimizers.closed_loop`` around this tuner.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import optax

from optimizers._common import (
    check_int,
    check_scalar,
    guard_scalars,
    masked_updates,
    select_tree,
    stat_dtype,
    tree_sq_norm,
    value_ok,
)
from optimizers._curvature_oracle import curvature_run, curvature_smooth
from optimizers.singlestep_jax import single_step
from optimizers.yellowfin_oracles import (
    debias_factor,
    hold_statistics,
    oracle_init,
    oracle_update,
    proxy_h_max,
)
from optimizers.yellowfin_state import YELLOWFIN_STATIC_ARGS, YellowFinState

__all__ = ["YELLOWFIN_STATIC_ARGS", "YellowFinState", "yellowfin"]

# Official stat_protect_fac: the gradient norm is clipped to sqrt(100 h_max) = 10 sqrt(h_max) before
# it is measured (from the third step on).
STAT_PROTECT_FACTOR = 100.0


def _at(x: Any, count: jax.Array, dt: jnp.dtype) -> jax.Array:
    return jnp.asarray(x(count) if callable(x) else x, dt)


def _clip_factor(norm: jax.Array, limit: jax.Array, active: Any) -> jax.Array:
    """Scale that brings ``norm`` down to ``limit`` when active and exceeded, else 1."""
    over = active & (norm > limit)
    return jnp.where(over, limit / jnp.where(over, norm, 1.0), 1.0)


def yellowfin(
    learning_rate: float | optax.Schedule = 1e-4,
    momentum: float = 0.0,
    *,
    beta: float = 0.999,
    curv_window: int = 20,
    zero_debias: bool = True,
    log_smoothing: bool = True,
    slow_start: bool = True,
    lr_factor: float | optax.Schedule = 1.0,
    update_form: Literal["velocity", "heavy_ball"] = "velocity",
    clip_statistics: bool = True,
    clip_large_grad: bool = True,
    clip_move: bool = True,
    max_move: float = 100.0,
    weight_decay: float = 0.0,
    stats_see_weight_decay: bool = False,
    smoothed_tuning: bool = False,
    tune_momentum: bool = True,
    curvature: Literal["gradient_norm", "hessian"] = "gradient_norm",
    curvature_every: int | None = None,
    lanczos_steps: int | None = None,
    distance: Literal["gradient_norm", "hessian"] = "gradient_norm",
    eps: float = 1e-6,
) -> optax.GradientTransformationExtraArgs:
    """YellowFin (Zhang & Mitliagkas, arXiv 1706.03471, Algorithm 1) as an optax transformation.

    Step t (from 0), on the whole gradient g (one global norm):

    1. ``clip_statistics`` (t >= 2): clip ||g|| to sqrt(100 h_max_{t-1}) (protects the statistics).
    2. Oracles (Sec. 3.2): h_min, h_max, C, D from the clipped g (see ``yellowfin_oracles``).
    3. Tuning from t = 1 (SingleStep, Sec. 3.1): mu_t = max(x^2, ((sqrt(dr)-1)/(sqrt(dr)+1))^2),
       alpha_t = (1 - sqrt(mu_t))^2 / (h_min + eps); slow start alpha_t <- min(alpha_t,
       alpha_t (t+1) / (10 w)). Step 0 uses the constructor's ``learning_rate`` and ``momentum``.
       Applied: mu_t and alpha_t * lr_factor (EMA-smoothed values with ``smoothed_tuning``).
    4. ``clip_move`` (every step): if lr * ||g|| >= ``max_move``, with ||g|| the norm the
       statistics measured (after step 1, before step 5, without hidden weight decay), the
       applied learning rate becomes lr = max_move / sqrt(||g||^2 + eps). As in the official
       PyTorch code (``catastrophic_move_thresh``), this lowers the lr, not g: the velocity
       keeps the unscaled gradient and the whole step lr (mu v + g) shrinks.
    5. ``clip_large_grad`` (t >= 1): if ||g||^2 >= h_max_{t-1}, clip ||g|| to sqrt(h_max_{t-1}).
       Weight decay is added after the measurement (``stats_see_weight_decay=False``, as in the
       official code).
    6. ``update_form="velocity"`` (PyTorch/TF, default): v = mu v + g, x -= lr v.
       ``"heavy_ball"`` (Caffe2/MXNet, lr inside): d = mu d - lr g, x += d; here the move
       clip's lower lr scales only the gradient term, since the lr lives inside the step.

    Closed loop (Sec. 4): ``optimizers.closed_loop_yellowfin``, i.e. ``optimizers.closed_loop``
    around ``yellowfin(tune_momentum=False)`` with ``tuned_momentum`` as the target; the sensor's
    step is ``step_size`` (the applied lr times the gradient clip factors). With the velocity form
    the sensor reads the effective heavy-ball momentum mu_t lr_t / lr_{t-1}
    (reference/heavy_ball.md), which equals mu_t once the tuned learning rate settles.

    SingleStep is solved in-graph by safeguarded Newton iterations (``singlestep_jax``), exact
    to float32 precision for p in [1e-8, 1e12] where the official closed form cancels.

    Curvature from Hessian-vector products (``curvature="hessian"``, beyond the paper): h_min and
    h_max become the extreme Ritz values of ``lanczos_steps`` = m Lanczos steps on the Hessian of
    ``update(..., loss_fn=f)`` (f: params -> minibatch loss, the loss whose gradient is passed),
    run every ``curvature_every`` = k measured steps, warm-started from the previous Ritz vectors,
    and smoothed as the window extremes are (EMA of log(max(theta, 0) + eps), debiased): negative
    curvature counts as zero. See ``optimizers._curvature_oracle``. Cost: one linearisation plus m
    Hessian-vector products every k steps, i.e. about (1 + 2 m) / k gradient evaluations per
    step on top of the one the caller makes (3 for k = m = 10); state: one parameter-sized
    vector. The clipping rules keep the gradient-norm proxy h_max they were designed with.
    ``distance="hessian"`` replaces the distance estimate by the EMA of ||g|| / (h_min + eps) with
    the Hessian h_min (an upper bound of ||x - x*|| on a quadratic).

    A zero gradient (||g||^2 = 0) carries no measurement: the statistics, the step counter of
    the tuner (debias, slow start, Lanczos schedule) and the tuned lr and mu are held, while the
    momentum still carries the parameters. Without this rule a run of zero gradients drives the
    window minimum, hence h_min, to eps, and beta = 0.999 takes thousands of steps to forget it.

    A non-finite gradient, loss (``value=``) or squared gradient norm skips the step: zero
    update, state rolled back, ``skipped`` += 1. Other extra ``update`` arguments are ignored.

    Args:
        learning_rate: step-0 learning rate (> 0; float or schedule evaluated at step 0).
        momentum: step-0 momentum in [0, 1) (every step's with ``tune_momentum=False``).
        beta: EMA constant in [0, 1).
        curv_window: curvature window w >= 1.
        zero_debias: debias the EMAs by 1 - beta^(t+1).
        log_smoothing: smooth log curvature extremes (default) instead of raw ones.
        slow_start: linear learning-rate ramp over 10 w steps.
        lr_factor: multiplier >= 0 of the tuned learning rate (float or schedule, e.g. a decay).
        update_form: ``"velocity"`` or ``"heavy_ball"``.
        clip_statistics, clip_large_grad, clip_move: the official adaptive clipping rules.
        max_move: threshold > 0 on lr * ||g|| of the move clip (official 100).
        weight_decay: coupled L2 coefficient >= 0 (needs ``params``).
        stats_see_weight_decay: measure g + weight_decay * x instead of g.
        smoothed_tuning: apply the EMA-smoothed lr and mu.
        tune_momentum: apply SingleStep's mu (default). False applies ``momentum`` at every step
            (a fixed value, or one set from outside: ``optax.inject_hyperparams`` and
            ``optimizers.closed_loop``, whose target is then the ``tuned_momentum`` recorded in
            the state); the learning rate stays SingleStep's.
        curvature: ``"gradient_norm"`` (official: ||g||^2 over the window) or ``"hessian"``.
        curvature_every: k >= 1, steps between Lanczos runs (default 10; Hessian oracle only).
        lanczos_steps: m >= 1 Lanczos steps per run (default 10; Hessian oracle only).
        distance: ``"gradient_norm"`` (official) or ``"hessian"`` (needs the Hessian oracle).
        eps: numerical guard > 0 (official 1e-6).

    Returns:
        An ``optax.GradientTransformationExtraArgs``; its state is :class:`YellowFinState`.

    Raises:
        ValueError: for any hyper-parameter outside its range (bools are not integers), a
            Hessian-oracle setting without ``curvature="hessian"``; at ``update``: ``loss_fn``
            or ``params`` missing with the Hessian oracle.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> opt = yellowfin()
        >>> x = jnp.array([1.0, -2.0]); state = opt.init(x)
        >>> upd, state = opt.update(x, state, x)  # step 0: lr 1e-4, mu 0
        >>> float(state.learning_rate) == float(jnp.float32(1e-4))
        True
    """
    check_scalar("learning_rate", learning_rate, 0.0, lo_open=True)
    check_scalar("momentum", momentum, 0.0, 1.0, hi_open=True)
    check_scalar("beta", beta, 0.0, 1.0, hi_open=True)
    curv_window = check_int("curv_window", curv_window, 1)
    check_scalar("lr_factor", lr_factor, 0.0)
    if update_form not in ("velocity", "heavy_ball"):
        raise ValueError(f"update_form must be 'velocity' or 'heavy_ball' (got {update_form!r})")
    check_scalar("max_move", max_move, 0.0, lo_open=True)
    check_scalar("weight_decay", weight_decay, 0.0)
    check_scalar("eps", eps, 0.0, 1.0, lo_open=True, hi_open=True)
    if curvature not in ("gradient_norm", "hessian"):
        raise ValueError(f"curvature must be 'gradient_norm' or 'hessian' (got {curvature!r})")
    if distance not in ("gradient_norm", "hessian"):
        raise ValueError(f"distance must be 'gradient_norm' or 'hessian' (got {distance!r})")
    hessian = curvature == "hessian"
    if not hessian:
        unused = [
            name
            for name, v in (
                ("curvature_every", curvature_every),
                ("lanczos_steps", lanczos_steps),
                ("distance", None if distance == "gradient_norm" else distance),
            )
            if v is not None
        ]
        if unused:
            raise ValueError(f"{', '.join(unused)} need curvature='hessian'")
    every = check_int("curvature_every", 10 if curvature_every is None else curvature_every, 1)
    steps = check_int("lanczos_steps", 10 if lanczos_steps is None else lanczos_steps, 1)

    def init_fn(params: Any) -> YellowFinState:
        dt = stat_dtype(params)

        # A fresh array per field: fields sharing one buffer could not be donated together.
        def zero_i() -> jax.Array:
            return jnp.zeros((), jnp.int32)

        def fresh(x: Any) -> jax.Array:
            return jnp.array(x, dt, copy=True)

        lr0 = _at(learning_rate, zero_i(), dt)
        return YellowFinState(
            zero_i(),
            oracle_init(params, curv_window, dt, hessian=hessian),
            jax.tree_util.tree_map(lambda p: jnp.zeros(jnp.shape(p), dt), params),
            fresh(lr0),
            fresh(momentum),
            lr0 * _at(lr_factor, zero_i(), dt),
            fresh(momentum),
            fresh(0.0),
            fresh(0.0),
            fresh(0.0),
            fresh(0.0),
            zero_i(),
            fresh(momentum),
            fresh(lr0 * _at(lr_factor, zero_i(), dt)),
        )

    def update_fn(
        updates: Any,
        state: YellowFinState,
        params: Any = None,
        *,
        value: Any = None,
        loss_fn: Any = None,
        **extra_args: Any,
    ) -> tuple[Any, YellowFinState]:
        del extra_args
        dt = state.h_max.dtype
        t = state.count
        tree = jax.tree_util.tree_map

        def cast(x: jax.Array) -> jax.Array:
            return x if x.dtype == dt else x.astype(dt)

        # Every parameter-sized value below is an elementwise expression of the inputs and the
        # state buffers; XLA fuses them into two reductions (||g||^2, then ||grad_avg||^2) and
        # one pass per written buffer, with the skip folded in as where(ok, new, old).
        grads = tree(cast, updates)
        if not (isinstance(weight_decay, int | float) and weight_decay == 0.0):
            if params is None:
                raise ValueError("yellowfin with weight_decay needs params in update()")
            wd = tree(lambda p: weight_decay * cast(p), params)
        else:
            wd = None
        measured = (
            tree(jnp.add, grads, wd) if (wd is not None and stats_see_weight_decay) else grads
        )

        raw_sq = tree_sq_norm(measured, dt)
        raw_norm = jnp.sqrt(raw_sq)
        # n counts the measured steps: a zero gradient is no measurement (held statistics).
        n = state.oracle.count
        informative = raw_sq > 0
        smooth = dict(beta=beta, zero_debias=zero_debias, log_smoothing=log_smoothing)
        h_max_prev = proxy_h_max(state.oracle, **smooth) if hessian else state.h_max
        s_stat = _clip_factor(
            raw_norm, jnp.sqrt(STAT_PROTECT_FACTOR * h_max_prev) + eps, clip_statistics & (n > 1)
        )
        grad_sq = raw_sq * s_stat**2
        oracle, reading = oracle_update(
            state.oracle, measured, grad_sq, n, **smooth, eps=eps, grad_scale=s_stat
        )
        if hessian:
            if loss_fn is None or params is None:
                raise ValueError(
                    "yellowfin(curvature='hessian') needs update(..., params, loss_fn=f) with f "
                    "the minibatch loss as a function of params (missing: "
                    f"{'loss_fn' if loss_fn is None else 'params'})"
                )
            hess = curvature_run(
                state.oracle.hessian, loss_fn, params, informative & (n % every == 0), steps
            )
            hess, h_lo, h_hi, dist_h = curvature_smooth(
                hess,
                jnp.sqrt(grad_sq),
                debias_factor(n, beta, zero_debias, dt),
                beta=beta,
                log_smoothing=log_smoothing,
                eps=eps,
            )
            oracle = oracle._replace(hessian=hess)
            reading = reading._replace(h_min=h_lo, h_max=h_hi)
            if distance == "hessian":
                reading = reading._replace(dist_to_opt=dist_h)
        oracle = hold_statistics(oracle, state.oracle, informative)
        held = (state.h_min, state.h_max, state.grad_var, state.dist_to_opt)
        reading = type(reading)(
            *(jnp.where(informative, new, old) for new, old in zip(reading, held, strict=True))
        )
        measured = tree(lambda g: g * s_stat, measured)

        mu_tuned, lr_tuned = single_step(
            reading.h_min, reading.h_max, reading.grad_var, reading.dist_to_opt, eps
        )
        if slow_start:
            ramp = (n + 1).astype(dt) / (10.0 * curv_window)
            lr_tuned = jnp.minimum(lr_tuned, lr_tuned * ramp)
        tuning = n > 0
        lr_t = jnp.where(tuning, lr_tuned, _at(learning_rate, t, dt))
        mu_t = jnp.where(tuning, mu_tuned, jnp.asarray(momentum, dt))
        b = jnp.asarray(beta, dt)
        new_smooth = tuning & informative
        lr_smooth = jnp.where(new_smooth, b * state.lr_smooth + (1 - b) * lr_tuned, state.lr_smooth)
        mu_smooth = jnp.where(new_smooth, b * state.mu_smooth + (1 - b) * mu_tuned, state.mu_smooth)
        if smoothed_tuning:
            lr_t, mu_t = jnp.where(tuning, lr_smooth, lr_t), jnp.where(tuning, mu_smooth, mu_t)
        lr = lr_t * _at(lr_factor, t, dt)
        mu = mu_t if tune_momentum else jnp.asarray(momentum, dt)

        norm = jnp.sqrt(grad_sq)
        if clip_move:
            # Move clip on the measured norm (no pass over memory): lower the applied lr.
            cap = jnp.asarray(max_move, dt)
            lr = jnp.where(lr * norm >= cap, cap / jnp.sqrt(grad_sq + eps), lr)
        # Exploding-gradient clip (decided on the measured norm, applied to the step).
        exploding = clip_large_grad & (n >= 1) & (grad_sq >= h_max_prev)
        s_big = _clip_factor(norm, jnp.sqrt(h_max_prev) + eps, exploding)
        applied = tree(lambda g: g * s_big, measured)
        if wd is not None and not stats_see_weight_decay:
            applied = tree(jnp.add, applied, wd)

        ok = jnp.isfinite(raw_sq) & jnp.isfinite(lr) & jnp.isfinite(mu)
        ok = ok & jnp.isfinite(reading.h_min) & jnp.isfinite(reading.h_max)
        ok = ok & jnp.isfinite(reading.grad_var) & jnp.isfinite(reading.dist_to_opt)
        ok = ok & value_ok(value)

        if update_form == "velocity":
            raw_velocity = tree(lambda v, g: mu * v + g, state.velocity, applied)
        else:
            raw_velocity = tree(lambda v, g: mu * v - lr * g, state.velocity, applied)
        velocity = select_tree(ok, raw_velocity, state.velocity)
        oracle = oracle._replace(
            grad_avg=select_tree(ok & informative, oracle.grad_avg, state.oracle.grad_avg)
        )

        new_state = YellowFinState(
            count=t + 1,
            oracle=oracle,
            velocity=velocity,
            lr_smooth=lr_smooth,
            mu_smooth=mu_smooth,
            learning_rate=lr,
            momentum=mu,
            h_min=reading.h_min,
            h_max=reading.h_max,
            grad_var=reading.grad_var,
            dist_to_opt=reading.dist_to_opt,
            skipped=state.skipped,
            tuned_momentum=mu_t,
            step_size=lr * s_stat * s_big,
        )
        if update_form == "velocity":
            new_updates = masked_updates(ok, velocity, updates, scale=-lr)
        else:
            new_updates = masked_updates(ok, velocity, updates)
        # Scalars and small arrays rolled back by select; the big buffers are already guarded
        # (where(ok, new, old) on an unchanged buffer simplifies to the buffer itself).
        guarded = guard_scalars(ok, new_state, state, guarded=("velocity",))
        if hessian:
            # The start vector is only a warm start: kept even on a skipped step (no extra pass).
            hess = guarded.oracle.hessian._replace(start=oracle.hessian.start)
            guarded = guarded._replace(oracle=guarded.oracle._replace(hessian=hess))
        return new_updates, guarded

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
