"""MoMo: SGD with momentum and a model-based adaptive step (Schaipp et al., arXiv 2305.07583)."""

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


class MomoState(NamedTuple):
    """State of :func:`momo`.

    Attributes:
        d: momentum ``d_k`` (EMA of the gradients), float32 or wider.
        fbar: EMA of the batch losses ``fbar_k``.
        u: ``u_k = <d_k, x_k> - gamma_k`` from the cancellation-free recursion.
        du: ``<d_k, x_{k+1} - x_k>`` of the update returned at the last step (the next increment).
        dx: ``<d_k, x_k>`` (tracked only with weight decay, by the same recursion).
        lower_bound: the lower bound in use (MoMo*'s estimate when adapted).
        learning_rate: ``alpha_k`` of the last step (the cap on the step).
        step_size: ``tau_k`` of the last step.
        h: model value ``h_k = fbar_k + u_k`` at the last step.
        count: number of accepted steps.
        skipped: steps skipped because the gradient or the loss was not finite.
        prev_params: parameters seen at the last accepted step when tracked (``track_params``),
            else None.
    """

    d: Any
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


def momo(
    learning_rate: float | optax.Schedule = 1.0,
    beta: float = 0.9,
    lower_bound: float = 0.0,
    *,
    weight_decay: float = 0.0,
    bias_correction: bool = False,
    adapt_lower_bound: bool = False,
    guard_estimate: bool = True,
    track_params: bool | None = None,
) -> optax.GradientTransformationExtraArgs:
    """MoMo: momentum SGD whose step is the proximal step on a truncated momentum model.

    Schaipp, Ohana, Eickenberg, Defazio, Gower, "MoMo: Momentum Models for Adaptive Learning Rates",
    ICML 2024 (arXiv 2305.07583), Algorithm 1 (MoMo), Sec. 4 (weight decay), Sec. 5 (MoMo*).
    With batch loss ``f_k``, gradient ``g_k`` at ``x_k`` and ``c = 1 + alpha_k lambda``::

        fbar_k  = beta fbar_{k-1} + (1 - beta) f_k
        d_k     = beta d_{k-1}    + (1 - beta) g_k
        gamma_k = beta gamma_{k-1} + (1 - beta) <g_k, x_k>
        h_k     = fbar_k + <d_k, x_k> - gamma_k
        tau_k   = min{alpha_k, [c (fbar_k - f_*) + <d_k, x_k> - c gamma_k]_+ / ||d_k||^2}
        x_{k+1} = (x_k - tau_k d_k) / c

    Averages start at the first sample (``fbar_1 = f_1``, ``d_1 = g_1``); with
    ``bias_correction=True`` they start at 0 and ``f_*``, ``alpha_k`` are replaced by
    ``rho_k f_*``, ``alpha_k / rho_k`` with ``rho_k = 1 - beta^k``. With ``beta = 0`` this is the
    Polyak step SPS_max. MoMo* (``adapt_lower_bound=True``) estimates ``f_*`` online, with the
    user's ``lower_bound`` as a hard floor (reference/momo.md).

    Numerics: ``h_k`` is never formed as the difference ``<d_k, x_k> - gamma_k`` of two large
    numbers. ``u_k = <d_k, x_k> - gamma_k`` obeys
    ``u_k = beta (u_{k-1} + <d_{k-1}, x_k - x_{k-1}>)``, ``u_1 = 0``, and the increment is known
    in closed form from the step this transformation returned:
    ``-(alpha lambda <d, x> + tau ||d||^2) / c``. That is exact when the returned update is added
    to the parameters as is (``optax.apply_updates``, MoMo last in an ``optax.chain``). With
    ``track_params=True`` the increment is measured from the parameters actually seen
    (``<d_{k-1}, x_k - x_{k-1}>`` against a stored copy), which stays exact when something else
    moves the parameters (a transformation chained after MoMo, projections, rounding of the
    parameter write) at the price of one parameter-sized buffer (in the parameter dtype) and one
    more reduction. The default ``track_params=None`` turns it on when a parameter leaf is
    narrower than float32: a bfloat16 write rounds each coordinate to 2^-8 relative, and the
    closed-form ``h_k`` then drifts from the exact one by 10% (MoMo) to 90% (MoMo-Adam) of
    ``h_k`` within 60 steps of a least-squares problem with parameters near 10, against about
    1e-5 when tracked (tests/optimizers/test_robustness_momo.py).

    Cost: one reduction per step, ``||d_k||^2`` (the new ``d_k`` is fused into it, never stored
    twice); with weight decay also ``<g_k, x_k>``, since ``<d_k, x_k>`` follows the same
    recursion as ``u_k``. A non-finite gradient or loss is detected through ``||d_k||^2`` and
    ``f_k`` (a gradient so large that ``||d_k||^2`` overflows is skipped too); a skipped step
    leaves the parameters and the state as they were and counts in ``skipped``.

    Differences from ``optax.contrib.momo``: that version forms ``h_k`` directly (float32
    cancellation), applies weight decay as ``x / c - tau d`` instead of the paper's
    ``(x - tau d) / c``, takes no step when ``||d||^2 <= 2.2e-16`` (here: only when it is 0), keeps
    its statistics in the parameter dtype and has no bias-correction option. Without weight decay
    and bias correction both follow the same trajectory up to rounding.

    Args:
        learning_rate: ``alpha``, a cap on the step (not the step); float >= 0 or schedule of the
            step count. MoMo's scale is that of EMA momentum: about 10x SGD(momentum=0.9)'s lr.
        beta: momentum of the averages, in [0, 1).
        lower_bound: ``f_*``, a lower bound of the loss (0 for most losses).
        weight_decay: ``lambda >= 0``, applied proximally.
        bias_correction: start the averages at 0 and correct with ``rho_k = 1 - beta^k``.
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
        >>> from optimizers import momo
        >>> loss = lambda x: jnp.sum((x - 1.0) ** 2)
        >>> opt = momo(learning_rate=1.0, beta=0.0)
        >>> x = jnp.zeros(2)
        >>> state = opt.init(x)
        >>> f, g = jax.value_and_grad(loss)(x)
        >>> upd, state = opt.update(g, state, x, value=f)
        >>> print(optax.apply_updates(x, upd))
        [0.5 0.5]
    """
    check_common(learning_rate, lower_bound, weight_decay, track_params)
    if not isinstance(guard_estimate, bool):
        raise ValueError(f"guard_estimate must be True or False (got {guard_estimate!r})")
    check_scalar("beta", beta, 0.0, 1.0, hi_open=True)

    def init_fn(params: Any) -> MomoState:
        sd = stat_dtype(params)

        # Distinct buffers per field, so that the state can be donated to a jitted step.
        def zero() -> jax.Array:
            return jnp.zeros((), sd)

        d = jax.tree_util.tree_map(lambda p: jnp.zeros(jnp.shape(p), wide(p.dtype)), params)
        track = needs_tracking(track_params, params)
        prev = jax.tree_util.tree_map(jnp.array, params) if track else None
        lb = jnp.asarray(lower_bound, sd)
        return MomoState(
            d=d,
            fbar=zero(),
            u=zero(),
            du=zero(),
            dx=zero(),
            lower_bound=lb,
            learning_rate=zero(),
            step_size=zero(),
            h=zero(),
            count=jnp.zeros((), jnp.int32),
            skipped=jnp.zeros((), jnp.int32),
            prev_params=prev,
        )

    def update_fn(
        updates: Any, state: MomoState, params: Any = None, *, value: Any = None, **extra: Any
    ) -> tuple[Any, MomoState]:
        del extra
        params = require_params(params, "momo")
        sd = state.fbar.dtype
        track = state.prev_params is not None  # decided at init (needs_tracking)
        f = require_value(value, "momo").astype(sd)
        count = state.count
        b = jnp.asarray(beta, sd)
        if bias_correction:
            rho = 1.0 - b ** (count + 1).astype(sd)
        else:
            b = jnp.where(count == 0, jnp.zeros_like(b), b)
            rho = jnp.ones((), sd)
        alpha = learning_rate(count) if callable(learning_rate) else learning_rate
        alpha = jnp.asarray(alpha, sd)

        # d_k enters only the reductions here; the stored d_k is recomputed in the guarded update
        # pass below, so no parameter-sized temporary is materialised.
        d = ema_tree(state.d, updates, b)
        dd = tree_dot(d, d, sd)
        step = scalar_step(
            state,
            updates,
            params,
            f=f,
            beta=b,
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
        # A skipped step (not ok) keeps d: the guarded average below is exactly state.d.
        d_kept = ema_tree(state.d, updates, b, ok)
        new_updates = jax.tree_util.tree_map(step.direction, d_kept, params)
        new_state = MomoState(
            d=d_kept,
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
        return new_updates, keep_if_skipped(ok, new_state, state, guarded=("d",))

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
