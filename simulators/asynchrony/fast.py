"""Fast asynchronous simulation: staleness drawn from a law, everything inside JAX.

Each update draws ``tau_n`` i.i.d. from a :class:`StalenessLaw` (geometric ``1/M``, fixed,
uniform, or an empirical histogram of an exact run) and evaluates the gradient at ``w_{n - tau_n}``
from a ring buffer of the last ``law.max_lag + 1`` iterates; versions before the start are ``w_0``.
Laws with infinite support are truncated at ``law.max_lag`` (see
:mod:`simulators.asynchrony.staleness`). Unlike the exact simulator the successive staleness values
are independent; for equal exponential workers both give the same mean dynamics
(arXiv 1605.09774, Theorem 2: heavy ball with momentum ``1 - 1/M`` and step ``alpha/M``).
"""

from __future__ import annotations

from typing import Any

import jax

from simulators.asynchrony._checks import initial_point, make_config
from simulators.asynchrony._core import AsyncTrajectory, run_jit
from simulators.asynchrony.staleness import StalenessLaw


def simulate_async_fast(
    objective: Any,
    optimizer: Any,
    steps: int,
    key: jax.Array,
    law: StalenessLaw,
    *,
    x0: Any = None,
    record_every: int = 1,
    record_coords: Any = None,
    record_grads: bool = False,
    pass_value: bool = True,
    pass_staleness: bool = False,
    stochastic: bool = True,
    blowup: float = 1e10,
) -> AsyncTrajectory:
    """Run ``steps`` asynchronous updates with staleness drawn from ``law`` (jittable, vmappable).

    ``jax.vmap(lambda k: simulate_async_fast(obj, opt, n, k, law))(keys)`` runs many seeds in one
    compiled call (see also :func:`async_ensemble`).

    Args:
        objective: as for :func:`simulate_async_exact`.
        optimizer: any optax transformation.
        steps: number of updates (>= 1).
        key: JAX key; split into the staleness draws and the gradient-noise key.
        law: a :class:`StalenessLaw`.
        x0, record_every, record_coords, record_grads, pass_value, pass_staleness, stochastic,
        blowup: as for :func:`simulate_async_exact`.

    Returns:
        An :class:`AsyncTrajectory` (``worker`` and ``times`` are None).

    Example:
        >>> tr = simulate_async_fast(obj, optax.sgd(0.01), 1000, jax.random.key(0),
        ...                          geometric(8))  # doctest: +SKIP
    """
    if not isinstance(law, StalenessLaw):
        raise ValueError("law must be a StalenessLaw (geometric, fixed, uniform or empirical)")
    cfg = make_config(
        objective,
        optimizer,
        steps,
        law.max_lag + 1,
        record_every=record_every,
        record_coords=record_coords,
        record_grads=record_grads,
        pass_value=pass_value,
        pass_staleness=pass_staleness,
        stochastic=stochastic,
        blowup=blowup,
    )
    start = initial_point(objective, x0)
    k_stale, k_noise = jax.random.split(key)
    staleness = law.sample(k_stale, (cfg.steps,))
    return run_jit(cfg, start, staleness, k_noise)
