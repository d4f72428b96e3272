"""Shared machinery of the optimizers: validation, non-finite guards and logged statistics.

Every optimizer state of this package is a ``NamedTuple`` that carries a ``skipped`` counter and
declares the fields an experiment wants to log in a class attribute ``LOGGED``. :func:`logged_stats`
walks any optax state (``chain``, ``inject_hyperparams``, nested tuples) and collects them.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import optax

STAT_DTYPE = jnp.float32


def stat_dtype(*trees: Any) -> jnp.dtype:
    """Dtype for scalar statistics: float32, or float64 when any leaf of ``trees`` is float64."""
    leaves = [leaf for tree in trees for leaf in jax.tree_util.tree_leaves(tree)]
    if any(jnp.asarray(leaf).dtype == jnp.float64 for leaf in leaves):
        return jnp.float64
    return STAT_DTYPE


def check_scalar(
    name: str,
    value: Any,
    lo: float = -math.inf,
    hi: float = math.inf,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> None:
    """Validate a Python-number hyper-parameter at construction time.

    Schedules (callables) and traced values are accepted unchecked: they are only known per step.
    Booleans are rejected: ``True`` is a Python int, but never a meant value of a real parameter.

    Raises:
        ValueError: naming ``name`` and the valid interval.
    """
    if callable(value) or isinstance(value, jax.core.Tracer):
        return
    if _is_bool(value):
        raise ValueError(f"{name} must be a real number, not a bool (got {value!r})")
    try:
        v = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a real number") from err
    ok = math.isfinite(v)
    ok = ok and (v > lo if lo_open else v >= lo)
    ok = ok and (v < hi if hi_open else v <= hi)
    if not ok:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        raise ValueError(f"{name} must lie in {left}{lo:g}, {hi:g}{right} (got {value!r})")


def _is_bool(value: Any) -> bool:
    """A Python, NumPy or JAX boolean (scalar or array)."""
    return isinstance(value, bool) or getattr(value, "dtype", None) == jnp.bool_


def check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    """Validate an integer hyper-parameter (one that shapes arrays) and return it as ``int``.

    Python and NumPy integers are accepted; bools (``True`` is an ``int``), floats and arrays are
    not.

    Raises:
        ValueError: naming ``name`` and the valid range.
    """
    right = "inf)" if hi is None else f"{hi}]"
    if (
        not isinstance(value, numbers.Integral)
        or isinstance(value, bool)
        or not (lo <= int(value) and (hi is None or int(value) <= hi))
    ):
        raise ValueError(f"{name} must be an integer in [{lo}, {right} (got {value!r})")
    return int(value)


def check_key(name: str, key: Any) -> None:
    """Validate a random seed: a non-negative integer (not a bool) or a JAX key array.

    Raises:
        ValueError: naming ``name``.
    """
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        if key < 0:
            raise ValueError(f"{name} must be an integer >= 0 or a JAX key (got {key!r})")
    elif not isinstance(key, jax.Array) or _is_bool(key):
        raise ValueError(f"{name} must be an integer >= 0 or a JAX key (got {key!r})")


def value_ok(value: Any) -> jax.Array | bool:
    """True when the loss passed as ``update(..., value=loss)`` is finite, or when none is passed.

    Optimizers that do not use the loss still skip a step whose loss is NaN or inf, so that one
    loop can pass ``value=`` to every optimizer with the same semantics. A traced boolean.
    """
    if value is None:
        return True
    return jnp.all(jnp.isfinite(jnp.asarray(value)))


def tree_all_finite(tree: Any) -> jax.Array:
    """True when every leaf of ``tree`` is finite (a traced boolean, no host sync).

    Computed as ``isfinite(sum(x * 2^-100))`` for float32/float64/bfloat16 leaves: the scaling
    is exact (a power of two) and keeps every partial sum below 2^28 * size, far from overflow,
    while inf and NaN propagate, so the sum is finite exactly when every element is; it compiles
    to one plain reduction per leaf, cheaper on CPU than ``all(isfinite)`` over booleans. Other
    dtypes (float16, whose range is too small for the scaling) use ``all(isfinite)``.
    """
    leaves = [jnp.asarray(leaf) for leaf in jax.tree_util.tree_leaves(tree)]
    leaves = [leaf for leaf in leaves if jnp.issubdtype(leaf.dtype, jnp.inexact)]
    if not leaves:
        return jnp.asarray(True)
    flags = []
    for leaf in leaves:
        if jnp.finfo(leaf.dtype).maxexp >= 128:
            flags.append(jnp.isfinite(jnp.sum(leaf * jnp.asarray(2.0**-100, leaf.dtype))))
        else:
            flags.append(jnp.all(jnp.isfinite(leaf)))
    return jnp.all(jnp.stack(flags))


def select_tree(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
    """Elementwise ``where(pred, on_true, on_false)`` over two pytrees of identical structure."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def guard_nonfinite(
    ok: jax.Array,
    new_updates: Any,
    new_state: Any,
    old_state: Any,
    params_like: Any,
) -> tuple[Any, Any]:
    """Skip a step whose inputs were not finite.

    When ``ok`` is False the updates become zeros (parameters unchanged), the state is rolled
    back to ``old_state`` and its ``skipped`` counter is incremented. Every field is selected;
    see :func:`guard_scalars` for states whose large buffers are already guarded.
    """
    # A zero scalar of the parameter dtype: same result as a zeros tree, without materialising it.
    updates = jax.tree_util.tree_map(
        lambda u, p: jnp.where(ok, u, jnp.zeros((), jnp.result_type(p))), new_updates, params_like
    )
    return updates, guard_scalars(ok, new_state, old_state)


def guard_scalars(
    ok: jax.Array, new_state: Any, old_state: Any, guarded: tuple[str, ...] = ()
) -> Any:
    """Roll a ``NamedTuple`` state back to ``old_state`` unless ``ok``; count a skipped step.

    Fields named in ``guarded`` already hold ``where(ok, new, old)`` (computed inside the fused
    elementwise update, so that a skip costs no extra pass over parameter-sized buffers) and are
    passed through; every other field is selected with ``where(ok, new, old)``. ``skipped``
    becomes ``old_state.skipped + (not ok)``.
    """
    fields = {}
    for name in new_state._fields:
        new, old = getattr(new_state, name), getattr(old_state, name)
        fields[name] = new if name in guarded else select_tree(ok, new, old)
    fields["skipped"] = old_state.skipped + jnp.where(ok, 0, 1).astype(jnp.int32)
    return type(new_state)(**fields)


def masked_updates(ok: jax.Array, moves: Any, like: Any, scale: Any = None) -> Any:
    """Updates ``where(ok, scale * move, 0)`` in the dtypes of ``like`` (no copy when equal)."""

    def one(m: jax.Array, u: Any) -> jax.Array:
        m = m if scale is None else scale * m
        m = jnp.where(ok, m, jnp.zeros((), m.dtype))
        dt = jnp.result_type(u)
        return m if m.dtype == dt else m.astype(dt)

    return jax.tree_util.tree_map(one, moves, like)


def require_value(value: Any, name: str) -> jax.Array:
    """Return the loss passed as ``update(..., value=loss)`` or raise a clear error."""
    if value is None:
        raise ValueError(
            f"{name} needs the batch loss: call update(grads, state, params, value=loss)"
        )
    return jnp.asarray(value)


def require_params(params: Any, name: str) -> Any:
    """Return ``params`` or raise: loss-aware optimizers need the current parameters."""
    if params is None:
        raise ValueError(f"{name} needs the parameters: call update(grads, state, params, ...)")
    return params


def tree_vdot(a: Any, b: Any, dtype: jnp.dtype = STAT_DTYPE) -> jax.Array:
    """Inner product of two pytrees, accumulated in ``dtype``."""
    parts = jax.tree_util.tree_map(
        lambda x, y: jnp.vdot(x.astype(dtype).ravel(), y.astype(dtype).ravel()), a, b
    )
    return sum(jax.tree_util.tree_leaves(parts), jnp.zeros((), dtype))


def tree_sq_norm(a: Any, dtype: jnp.dtype = STAT_DTYPE) -> jax.Array:
    """Squared Euclidean norm of a pytree, accumulated in ``dtype``."""
    return tree_vdot(a, a, dtype)


_INJECT_STATES = tuple(
    cls
    for cls in (
        getattr(optax, "InjectHyperparamsState", None),
        getattr(optax, "InjectStatefulHyperparamsState", None),
    )
    if cls is not None
)


def logged_stats(state: Any) -> dict[str, jax.Array]:
    """Collect the logged statistics of every optimizer of this package found inside ``state``.

    Works on bare states, ``optax.chain`` tuples and ``optax.inject_hyperparams`` states (whose
    hyper-parameters are reported too, prefixed ``hp_``). When two of our transformations are
    chained the later one's names are prefixed by its position.

    Example:
        >>> import jax.numpy as jnp
        >>> from optimizers import heavy_ball, logged_stats
        >>> opt = heavy_ball(0.1, 0.9)
        >>> sorted(logged_stats(opt.init(jnp.zeros(3))))
        ['learning_rate', 'momentum', 'skipped']
    """
    out: dict[str, jax.Array] = {}

    def visit(node: Any, prefix: str) -> None:
        if isinstance(node, _INJECT_STATES):
            for k, v in node.hyperparams.items():
                out[f"{prefix}hp_{k}"] = v
            visit(node.inner_state, prefix)
            return
        fields = getattr(type(node), "LOGGED", None)
        if fields is not None:
            for f in fields:
                key = prefix + f
                if key in out:
                    key = f"{prefix}{len(out)}_{f}"
                out[key] = getattr(node, f)
            return
        if isinstance(node, tuple):
            for child in node:
                visit(child, prefix)
        elif isinstance(node, dict):
            for child in node.values():
                visit(child, prefix)

    visit(state, "")
    return out
