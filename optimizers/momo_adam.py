"""MoMo-Adam: Adam with a model-based adaptive step (Schaipp et al., arXiv 2305.07583)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optimizers._common import (
    check_scalar,
    require_params,
    require_value,
    stat_dtype,
)
from optimizers.momo_core import (
    check_common,
    ema_tree,
    keep_if_skipped,
    needs_tracking,
    scalar_step,
    tree_dot,
    wide,
)


class MomoAdamState(NamedTuple):
    """State of :func:`momo_adam`.

    Attributes:
        d: first moment ``d_k`` (EMA of the gradients, started at 0), float32 or wider.
        v: second moment ``v_k`` (EMA of the squared gradients, started at 0).
        fbar: EMA of the batch losses (started at 0).
        u: ``u_k = <d_k, x_k> - gamma_k`` from the cancellation-free recursion.
        du: ``<d_k, x_{k+1} - x_k>`` of the update returned at the last step.
        dx: ``<d_k, x_k>`` (tracked only with weight decay, by the same recursion).
        lower_bound: the lower bound in use (MoMo*'s estimate when adapted).
        learning_rate: ``alpha_k`` of the last step.
        step_size: ``tau_k`` of the last step.
        h: model value ``h_k = fbar_k + u_k`` at the last step (not bias-corrected).
        count: number of accepted steps.
        skipped: steps skipped because the gradient or the loss was not finite.
        prev_params: parameters seen at the last accepted step when tracked (``track_params``),
            else None.
    """

    d: Any
    v: Any
    fbar: jax.Array
    u: jax.Array
    du: jax.Array
    dx: jax.Array
    lower_bound: jax.Array
    learning_rate: jax.Array
    step_size: jax.Array
    h: jax.Array
    count: jax.Array
    skipped: jax.Array
    prev_params: Any = None

    LOGGED = ("learning_rate", "step_size", "lower_bound", "h", "skipped")


def momo_adam(
    learning_rate: float | optax.Schedule = 1e-2,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    lower_bound: float = 0.0,
    *,
    weight_decay: float = 0.0,
    adapt_lower_bound: bool = False,
    guard_estimate: bool = True,
    track_params: bool | None = None,
) -> optax.GradientTransformationExtraArgs:
    """MoMo-Adam: Adam whose step is the proximal step on a truncated momentum model.

    Schaipp et al., "MoMo: Momentum Models for Adaptive Learning Rates", ICML 2024
    (arXiv 2305.07583), Algorithm 2 (MoMo-Adam), Sec. 4 (weight decay), Sec. 5 (MoMo*). Always
    bias-corrected with ``rho_k = 1 - b1^k``; averages start at 0; ``c = 1 + alpha_k lambda``::

        fbar_k, d_k, gamma_k   EMAs (b1) of f_k, g_k, <g_k, x_k>
        v_k     = b2 v_{k-1} + (1 - b2) g_k^2,  D_k = diag(sqrt(v_k / (1 - b2^k)) + eps)
        tau_k   = min{alpha_k / rho_k,
                      [c (fbar_k - rho_k f_*) + <d_k, x_k> - c gamma_k]_+ / <d_k, D_k^{-1} d_k>}
        x_{k+1} = (x_k - tau_k D_k^{-1} d_k) / c

    When the cap is active this is exactly Adam with learning rate ``alpha``. MoMo*
    (``adapt_lower_bound=True``) estimates ``f_*`` online with ``lower_bound`` as a hard floor.
    ``h_k - gamma_k`` is tracked by the cancellation-free recursion described in
    :func:`optimizers.momo`, with increment ``-(alpha lambda <d, x> + tau <d, D^{-1} d>) / c``
    (exact when the returned update is applied as is; ``track_params=True`` measures it from a
    stored copy of the parameters instead; the default None does so for parameters narrower
    than float32, such as bfloat16, whose rounded writes would make ``h_k`` drift).

    Cost: one reduction per step, ``<d_k, D_k^{-1} d_k>``, into which the new moments are fused
    (they are written once, in the update pass); with weight decay also ``<g_k, x_k>``. A
    non-finite gradient or loss skips the step (parameters and state unchanged, ``skipped`` + 1),
    and so does a finite gradient whose square overflows the second moment (``v_k / (1 - b2^k)``
    not finite, e.g. ``|g| > 1.8e19`` in float32), which would otherwise freeze that coordinate.

    Differences from ``optax.contrib.momo_adam``: that version forms ``h_k`` directly (float32
    cancellation), applies weight decay AdamW-style as ``x / c - tau D^{-1} d`` instead of the
    paper's ``(x - tau D^{-1} d) / c``, takes no step when ``<d, D^{-1} d> <= 2.2e-16`` (here: only
    when it is 0) and keeps its statistics in the parameter dtype. Without weight decay both follow
    the same trajectory up to rounding.

    Args:
        learning_rate: ``alpha``, a cap on the step; float >= 0 or schedule of the step count.
        b1: momentum of the first moment and of the loss averages, in [0, 1).
        b2: momentum of the second moment, in [0, 1).
        eps: Adam's ``eps > 0`` added to the root of the second moment.
        lower_bound: ``f_*``, a lower bound of the loss.
        weight_decay: ``lambda >= 0``, applied proximally.
        adapt_lower_bound: MoMo*: estimate ``f_*`` online, never below ``lower_bound``.
        guard_estimate: MoMo*'s two safeguards (default on; they change nothing while the
            estimate stays below the losses and the gradient is non-zero): a zero gradient leaves
            the estimate as it is, and the estimate never exceeds the observed batch loss. Without
            them a plateau of zero gradients at a positive loss raises the estimate to the loss
            and the run stalls for good. False follows the published rule exactly.
        track_params: measure the recursion increment from a stored copy of the parameters.
            None (default): automatically for parameters narrower than float32 (bfloat16,
            float16), whose rounded writes break the closed-form increment; True/False force it.

    Returns:
        An ``optax.GradientTransformationExtraArgs``; call ``update(grads, state, params,
        value=loss)``. Unknown extra keyword arguments are ignored.

    Raises:
        ValueError: for a hyper-parameter out of range; at update time when ``value`` or
            ``params`` is missing.

    Example:
        >>> import jax, jax.numpy as jnp, optax
        >>> from optimizers import momo_adam
        >>> loss = lambda x: jnp.sum((x - 1.0) ** 2)
        >>> opt = momo_adam(learning_rate=1e-2)
        >>> x = jnp.zeros(2)
        >>> state = opt.init(x)
        >>> f, g = jax.value_and_grad(loss)(x)
        >>> upd, state = opt.update(g, state, x, value=f)
        >>> print(optax.apply_updates(x, upd))  # cap active: Adam's first step
        [0.01 0.01]
    """
    check_common(learning_rate, lower_bound, weight_decay, track_params)
    if not isinstance(guard_estimate, bool):
        raise ValueError(f"guard_estimate must be True or False (got {guard_estimate!r})")
    check_scalar("b1", b1, 0.0, 1.0, hi_open=True)
    check_scalar("b2", b2, 0.0, 1.0, hi_open=True)
    check_scalar("eps", eps, 0.0, lo_open=True)

    def init_fn(params: Any) -> MomoAdamState:
        sd = stat_dtype(params)

        # Distinct buffers per field, so that the state can be donated to a jitted step.
        def zero() -> jax.Array:
            return jnp.zeros((), sd)

        def zeros(p: jax.Array) -> jax.Array:
            return jnp.zeros(jnp.shape(p), wide(p.dtype))

        track = needs_tracking(track_params, params)
        prev = jax.tree_util.tree_map(jnp.array, params) if track else None
        return MomoAdamState(
            d=jax.tree_util.tree_map(zeros, params),
            v=jax.tree_util.tree_map(zeros, params),
            fbar=zero(),
            u=zero(),
            du=zero(),
            dx=zero(),
            lower_bound=jnp.asarray(lower_bound, sd),
            learning_rate=zero(),
            step_size=zero(),
            h=zero(),
            count=jnp.zeros((), jnp.int32),
            skipped=jnp.zeros((), jnp.int32),
            prev_params=prev,
        )

    def update_fn(
        updates: Any,
        state: MomoAdamState,
        params: Any = None,
        *,
        value: Any = None,
        **extra: Any,
    ) -> tuple[Any, MomoAdamState]:
        del extra
        params = require_params(params, "momo_adam")
        sd = state.fbar.dtype
        track = state.prev_params is not None  # decided at init (needs_tracking)
        f = require_value(value, "momo_adam").astype(sd)
        count = state.count
        k = (count + 1).astype(sd)
        beta1 = jnp.asarray(b1, sd)
        beta2 = jnp.asarray(b2, sd)
        rho = 1.0 - beta1**k
        bc2 = 1.0 - beta2**k
        alpha = learning_rate(count) if callable(learning_rate) else learning_rate
        alpha = jnp.asarray(alpha, sd)
        epsilon = jnp.asarray(eps, sd)

        inv_bc2 = 1.0 / bc2
        # eps as a value known only at run time (0 * k is not folded for floats): XLA's CPU
        # reduction fusion takes a scalar operand, not a materialised broadcast of a constant.
        eps_runtime = epsilon + 0.0 * k
        zero_runtime = 0.0 * k

        def precondition(m: jax.Array, s: jax.Array) -> jax.Array:
            return m / (jnp.sqrt(s / bc2.astype(s.dtype)) + epsilon.astype(s.dtype))

        def precondition_in_reduction(m: jax.Array, s: jax.Array) -> jax.Array:
            # The same D^{-1} m written with other scalar operands, so that XLA does not share a
            # materialised parameter-sized broadcast of eps or bc2 between this reduction and the
            # update pass (a 40 MB temporary per 1e7 parameters on CPU).
            # A huge but finite gradient (|g| > 1.8e19 in float32) overflows v to inf, and D^{-1} d
            # would be 0 there: a "valid" step after which the coordinate never moves again. The
            # added 0 * v / bc2 is 0 when finite and NaN when inf, so <d, D^{-1} d> is NaN and the
            # step is skipped. Arithmetic rather than a select, with a run-time zero (not a
            # constant), keeps the whole expression fused into the one reduction.
            scaled = s * inv_bc2.astype(s.dtype)
            zero = zero_runtime.astype(s.dtype)
            return m / (jnp.sqrt(scaled) + eps_runtime.astype(s.dtype)) + zero * scaled

        # d_k, v_k and D_k^{-1} d_k enter only the reduction here; the stored moments are recomputed
        # in the guarded update pass below, so no parameter-sized temporary is materialised.
        d = ema_tree(state.d, updates, beta1)
        g_sq = jax.tree_util.tree_map(lambda g: jnp.square(g.astype(wide(g.dtype))), updates)
        v = ema_tree(state.v, g_sq, beta2)
        dd = tree_dot(d, jax.tree_util.tree_map(precondition_in_reduction, d, v), sd)
        step = scalar_step(
            state,
            updates,
            params,
            f=f,
            beta=beta1,
            rho=rho,
            alpha=alpha,
            dd=dd,
            weight_decay=weight_decay,
            lower_bound=lower_bound,
            adapt=adapt_lower_bound,
            guard_estimate=guard_estimate,
            track_params=track,
        )
        ok = step.ok
        # A skipped step (not ok) keeps d and v: the guarded averages below are exactly the old.
        d_kept = ema_tree(state.d, updates, beta1, ok)
        # Squared after the guard's select (not the g^2 above), so that XLA does not materialise
        # one g^2 shared by the reduction and this update.
        g_kept = jax.tree_util.tree_map(
            lambda g: jnp.where(ok, g.astype(wide(g.dtype)), jnp.zeros((), wide(g.dtype))), updates
        )
        v_kept = ema_tree(
            state.v, jax.tree_util.tree_map(jnp.square, g_kept), jnp.where(ok, beta2, 1.0)
        )

        def direction(m: jax.Array, s: jax.Array, x: jax.Array) -> jax.Array:
            return step.direction(precondition(m, s), x)

        new_updates = jax.tree_util.tree_map(direction, d_kept, v_kept, params)
        new_state = MomoAdamState(
            d=d_kept,
            v=v_kept,
            fbar=step.fbar,
            u=step.u,
            du=step.model.increment,
            dx=step.dx,
            lower_bound=step.model.lower_bound_next,
            learning_rate=alpha,
            step_size=step.model.tau,
            h=step.model.h,
            count=count + 1,
            skipped=state.skipped,
            prev_params=params if track else None,
        )
        return new_updates, keep_if_skipped(ok, new_state, state, guarded=("d", "v"))

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
