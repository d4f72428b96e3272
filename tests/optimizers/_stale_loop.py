"""A stale-gradient loop on a diagonal quadratic, shared by the closed-loop tests.

Step k applies the gradient evaluated at x_{k - tau_k} (plus Gaussian noise of standard
deviation ``noise``) and passes ``staleness=tau_k`` (and ``value=`` the loss at that point) to the
optimizer, as the simulators and ``gpu.train`` do.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optimizers import logged_stats

HISTORY = 65  # iterates kept (staleness capped at 64)


def geometric_staleness(workers: int, steps: int, seed: int = 1) -> np.ndarray:
    """P(tau = l) = (1 - q) q^l, q = 1 - 1/M (asynchrony reference, queueing model)."""
    rng = np.random.default_rng(seed)
    return np.minimum(rng.geometric(1.0 / workers, steps) - 1, HISTORY - 1)


def run_stale(
    opt: Any,
    taus: np.ndarray,
    curvatures: np.ndarray,
    *,
    noise: float = 0.0,
    seed: int = 0,
    dtype: Any = jnp.float32,
    keep_states: bool = False,
) -> dict[str, np.ndarray]:
    """Run ``opt`` for ``len(taus)`` steps; returns the updates ("updates"), the iterates
    ("x", before each step) and the logged statistics of every step (and the states when asked).
    """
    rng = np.random.default_rng(seed)
    h = jnp.asarray(curvatures, dtype)
    dim = h.shape[0]
    x0 = jnp.asarray(rng.standard_normal(dim), dtype)

    def step(carry, inp):
        x, hist, state, k = carry
        tau, key = inp
        hist = hist.at[k % HISTORY].set(x)
        tau = jnp.minimum(tau, k)
        x_read = hist[(k - tau) % HISTORY]
        g = h * x_read + noise * jax.random.normal(key, (dim,), dtype)
        loss = 0.5 * jnp.sum(h * x_read * x_read)
        u, state = opt.update(g, state, x, staleness=tau, value=loss)
        out = {"updates": u, "x": x, "grads": g, **logged_stats(state)}
        if keep_states:
            out["state"] = state
        return (x + u, hist, state, k + 1), out

    carry = (x0, jnp.zeros((HISTORY, dim), dtype), opt.init(x0), 0)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(taus))
    scan = jax.jit(lambda c, t: jax.lax.scan(step, c, t))
    _, out = scan(carry, (jnp.asarray(taus, jnp.int32), keys))
    return jax.tree_util.tree_map(np.asarray, out)
