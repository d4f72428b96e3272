"""The step that multiplied the gradient in a move: the numerator of the momentum sensor.

The sensor of ``optimizers.momentum_sensor`` reads mu_hat = median_i (d_{k+1,i} + a_i g_i) / d_{k,i}
with d_{k+1} = x_{k+1} - x_k. It reads the algorithmic momentum when a_i is the factor that
multiplied g_i in the move (``theory.momentum_readings`` derives what each optimizer's move then
reads). For an optimizer written as ``u_k = -c_k * m_k / D_k`` with the average
``m_k = b m_{k-1} + (1 - b) g_k`` (Adam, MoMo, MoMo-Adam) the move obeys

    d_{k+1} = b (c_k D_{k-1} / (c_{k-1} D_k)) d_k - c_k (1 - b) / D_k * g_k,

so a_i = c_k (1 - b) / D_{k,i} and the sensor reads b times the ratio of consecutive effective
steps, which is b once the step (and Adam's second moment) settles. Per optimizer, read from the
wrapped state after the step (``inject`` is the ``optax.inject_hyperparams`` state, ``hp`` its
hyper-parameters):

=====================================  ======================================================
wrapped optimizer (state found)        a
=====================================  ======================================================
``optimizers.yellowfin``               ``step_size`` field: applied lr times the clip factors
``heavy_ball``, ``momentum_feedback``  ``learning_rate`` field
``momo`` (beta)                        (1 - hp beta) * ``step_size`` (tau_k)
``momo_adam`` (b1)                     tau_k (1 - hp b1) / (sqrt(v / (1 - b2^k)) + eps)
``optax.adam`` (b1)                    lr (1 - b1) / ((1 - b1^k) (sqrt(nu_hat + eps_root) + eps)),
                                       nu_hat = nu / (1 - b2^k)
``optax.sgd`` (momentum, trace)        hp learning_rate
=====================================  ======================================================

Not covered (the reading then carries a bias): decoupled or coupled weight decay inside the
optimizer (the decay term is not part of the gradient the sensor sees), Nesterov variants.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from optimizers.feedback import MomentumFeedbackState
from optimizers.heavy_ball import HeavyBallState
from optimizers.momo import MomoState
from optimizers.momo_adam import MomoAdamState
from optimizers.yellowfin_state import YellowFinState

__all__ = ["StepSize", "default_step_size", "find_field", "find_state"]

# A function of the wrapped optimizer's state after a step (the inject_hyperparams state): the
# step a, a scalar or a pytree shaped like the parameters.
StepSize = Callable[[Any], Any]


def find_state(tree: Any, kinds: tuple[type, ...]) -> Any:
    """First node of ``tree`` (depth first, through tuples and dicts) of one of ``kinds``."""
    if isinstance(tree, kinds):
        return tree
    children = tree.values() if isinstance(tree, dict) else tree if isinstance(tree, tuple) else ()
    for child in children:
        found = find_state(child, kinds)
        if found is not None:
            return found
    return None


def find_field(tree: Any, name: str) -> Any:
    """Value of the first ``NamedTuple`` field called ``name`` inside ``tree`` (None if absent)."""
    if hasattr(type(tree), "_fields") and name in type(tree)._fields:
        return getattr(tree, name)
    children = tree.values() if isinstance(tree, dict) else tree if isinstance(tree, tuple) else ()
    for child in children:
        found = find_field(child, name)
        if found is not None:
            return found
    return None


def _adam_step(inject: Any) -> Any:
    hp = inject.hyperparams
    st = find_state(inject.inner_state, (optax.ScaleByAdamState,))
    k = st.count.astype(hp["b1"].dtype)  # steps taken, this one included
    c = hp["learning_rate"] * (1 - hp["b1"]) / (1 - hp["b1"] ** k)
    bc2 = 1 - hp["b2"] ** k
    root = hp.get("eps_root", 0.0)
    return jax.tree_util.tree_map(
        lambda nu: c / (jnp.sqrt(nu / bc2 + root) + hp["eps"]).astype(c.dtype), st.nu
    )


def _momo_adam_step(inject: Any) -> Any:
    hp = inject.hyperparams
    st = find_state(inject.inner_state, (MomoAdamState,))
    k = st.count.astype(st.step_size.dtype)
    c = st.step_size * (1 - hp["b1"].astype(k.dtype))
    bc2 = 1 - hp["b2"].astype(k.dtype) ** k
    eps = hp["eps"].astype(k.dtype)
    return jax.tree_util.tree_map(lambda v: c / (jnp.sqrt(v / bc2) + eps).astype(c.dtype), st.v)


def _momo_step(inject: Any) -> Any:
    st = find_state(inject.inner_state, (MomoState,))
    return (1 - inject.hyperparams["beta"].astype(st.step_size.dtype)) * st.step_size


# (state kinds, step function); the first kind found in the wrapped state decides.
_RULES: tuple[tuple[tuple[type, ...], StepSize], ...] = (
    ((YellowFinState,), lambda s: find_field(s.inner_state, "step_size")),
    (
        (HeavyBallState, MomentumFeedbackState),
        lambda s: find_field(s.inner_state, "learning_rate"),
    ),
    ((MomoState,), _momo_step),
    ((MomoAdamState,), _momo_adam_step),
    ((optax.ScaleByAdamState,), _adam_step),
    ((optax.TraceState,), lambda s: s.hyperparams["learning_rate"]),
)


def default_step_size(inject: Any) -> StepSize | None:
    """The step function of the first known optimizer state inside ``inject`` (None: unknown).

    Args:
        inject: an ``optax.inject_hyperparams`` state (or its abstract shape).
    """
    for kinds, rule in _RULES:
        if find_state(inject.inner_state, kinds) is not None:
            needs = {"learning_rate"} if rule is _RULES[-1][1] else set()
            if rule is _adam_step:
                needs = {"learning_rate", "b1", "b2", "eps"}
            if not needs <= set(inject.hyperparams):
                return None
            return rule
    return None
