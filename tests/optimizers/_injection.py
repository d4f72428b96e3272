"""Plain vs ``optax.inject_hyperparams`` runs of one optimizer, compared step by step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax

# float32 tolerance for the comparison: the injected hyper-parameters arrive as float32 arrays
# instead of Python floats (e.g. 1/M is a float32 division instead of a float64 one rounded to
# float32), and XLA may fuse the two step functions differently, so a step may differ by a few
# ulp (2^-23 ~ 1.2e-7 relative) per operation; over tens of contracting steps that stays below
# 1e-6 relative. ATOL covers entries that pass through zero.
RTOL, ATOL = 1e-6, 1e-7


def assert_injection_transparent(
    plain: optax.GradientTransformationExtraArgs,
    injected: optax.GradientTransformationExtraArgs,
    x0: Any,
    grad_fn: Callable[[Any], Any],
    steps: int,
    **extra_args: Any,
) -> Any:
    """Run both from ``x0`` and assert equal updates and states (field by field) at every step.

    Integer fields (counters, sampled indices) must match exactly, floating ones within
    ``RTOL``/``ATOL``. Returns the injected optimizer's last state.
    """
    runs = []
    for opt in (plain, injected):
        step = jax.jit(lambda x, s, opt=opt: opt.update(grad_fn(x), s, x, **extra_args))
        x, state, trace = x0, opt.init(x0), []
        for _ in range(steps):
            upd, state = step(x, state)
            x = optax.apply_updates(x, upd)
            trace.append((upd, state))
        runs.append(trace)
    for k, ((u_p, s_p), (u_i, s_i)) in enumerate(zip(*runs, strict=True)):
        np.testing.assert_allclose(
            np.asarray(u_i), np.asarray(u_p), rtol=RTOL, atol=ATOL, err_msg=f"update {k}"
        )
        inner = s_i.inner_state
        assert type(inner) is type(s_p)
        for field in s_p._fields:
            got = jax.tree_util.tree_leaves(getattr(inner, field))
            want = jax.tree_util.tree_leaves(getattr(s_p, field))
            assert len(got) == len(want), field
            for g, w in zip(got, want, strict=True):
                g, w = np.asarray(g), np.asarray(w)
                assert g.dtype == w.dtype and g.shape == w.shape, (field, k)
                if np.issubdtype(w.dtype, np.inexact):
                    np.testing.assert_allclose(
                        g, w, rtol=RTOL, atol=ATOL, err_msg=f"{field} at step {k}"
                    )
                else:
                    np.testing.assert_array_equal(g, w, err_msg=f"{field} at step {k}")
    return runs[1][-1][1]
