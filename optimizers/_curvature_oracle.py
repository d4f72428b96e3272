"""Curvature range from Hessian-vector products: a few Lanczos steps every k steps.

An alternative to YellowFin's gradient-norm proxy (Zhang & Mitliagkas, arXiv 1706.03471, Sec. 3.2,
which takes h = ||g||^2 over a window). Here h_min and h_max are the extreme Ritz values of m
Lanczos steps (Lanczos 1950; Golub & Van Loan, *Matrix Computations*, 4th ed., Sec. 10.1) on the
Hessian H of the minibatch loss at the current parameters, reached only through products H v =
d/de grad L(x + e v) (``jax.linearize`` of the gradient: forward-over-reverse).

Run every k-th step, warm-started: the start vector is y_max + y_min + 1e-3 r with y_max, y_min
the unit Ritz vectors of the previous run and r a fresh random unit vector (a trace of it keeps
the Krylov space from being stuck in an invariant subspace; a larger weight slows the convergence
at a fixed Hessian: on h = logspace(0, 2, 50) with m = 10, h_min - 1 is 3e-9 after 60 runs
without it, 3e-5 with weight 0.01, 2e-2 with weight 0.5). The recurrence is the three-term one
with local reorthogonalisation against the last two vectors; without full reorthogonalisation,
lost orthogonality produces duplicate copies of converged Ritz values (Paige 1976), not wrong
extremes. A breakdown (beta_j at rounding level: an invariant subspace was found) ends the
recurrence; the unused rows of the tridiagonal matrix T are filled with alpha_0, a value inside
the range of the Ritz values, so that the extremes are those of the active block.

Kaniel-Paige bound (Golub & Van Loan, Thm. 10.1.2): with lambda_1 >= ... >= lambda_n the
eigenvalues, phi_1 the angle between the start vector and the top eigenvector, and
rho_1 = (lambda_1 - lambda_2) / (lambda_2 - lambda_n),
0 <= lambda_1 - theta_max <= (lambda_1 - lambda_n) (tan(phi_1) / T_{m-1}(1 + 2 rho_1))^2,
with T_{m-1} the Chebyshev polynomial; the same holds for theta_min - lambda_n with the roles
reversed.

Cost of one run: one linearisation (about one gradient evaluation) and m products (each about two
gradient evaluations' worth of arithmetic), m + 2 parameter-sized vectors of temporary memory; two
parameter-sized vectors of state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

# Weight of the fresh random direction in the warm start (the Ritz vectors have weight 1 each).
RANDOM_WEIGHT = 1e-3


class CurvatureState(NamedTuple):
    """State of the Hessian-vector curvature oracle.

    Attributes:
        vectors: (2, n) unit Ritz vectors of the last run (largest, smallest), flattened params.
        theta_min, theta_max: extreme Ritz values of the last run (raw, may be negative).
        log_min_avg, log_max_avg: EMAs of log(max(theta, 0) + eps) (as YellowFin's oracles).
        dist_avg: EMA of the distance sample ||g|| / (h_min + eps).
        runs: number of Lanczos runs so far.
        key: random key of the warm-start perturbation.
    """

    vectors: jax.Array
    theta_min: jax.Array
    theta_max: jax.Array
    log_min_avg: jax.Array
    log_max_avg: jax.Array
    dist_avg: jax.Array
    runs: jax.Array
    key: jax.Array


def curvature_init(params: Any, dtype: jnp.dtype, seed: int = 0) -> CurvatureState:
    """Zero statistics; no vectors yet (the first run starts from a random vector)."""
    n = ravel_pytree(jax.tree_util.tree_map(lambda p: jnp.asarray(p, dtype), params))[0].size

    def zero() -> jax.Array:
        return jnp.zeros((), dtype)

    return CurvatureState(
        vectors=jnp.zeros((2, n), dtype),
        theta_min=zero(),
        theta_max=zero(),
        log_min_avg=zero(),
        log_max_avg=zero(),
        dist_avg=zero(),
        runs=jnp.zeros((), jnp.int32),
        key=jax.random.PRNGKey(seed),
    )


def lanczos_extremes(
    matvec: Callable[[jax.Array], jax.Array], q0: jax.Array, steps: int
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Extreme Ritz values and unit Ritz vectors of ``steps`` Lanczos steps from ``q0``.

    Args:
        matvec: v -> H v for a symmetric H (flat vectors).
        q0: start vector (any nonzero norm).
        steps: number of Lanczos steps m >= 1 (the size of T).

    Returns:
        ``(theta_min, theta_max, y_min, y_max)``.
    """
    dt = q0.dtype
    q0 = q0 / jnp.linalg.norm(q0)
    rel_tol = 100 * jnp.finfo(dt).eps

    def body(carry: tuple, _: Any) -> tuple[tuple, tuple]:
        q_prev, q, b_prev, active = carry
        w = matvec(q) - b_prev * q_prev
        a = jnp.vdot(q, w)
        w = w - a * q
        # Local reorthogonalisation: one more Gram-Schmidt pass against q and q_prev.
        w = w - jnp.vdot(q, w) * q - jnp.vdot(q_prev, w) * q_prev
        b = jnp.linalg.norm(w)
        cont = active & (b > rel_tol * (jnp.abs(a) + b_prev + b))
        q_next = jnp.where(cont, w / jnp.where(cont, b, 1), 0)
        return (q, q_next, jnp.where(cont, b, 0), cont), (q, a, jnp.where(cont, b, 0), active)

    init = (jnp.zeros_like(q0), q0, jnp.zeros((), dt), jnp.ones((), bool))
    _, (basis, alpha, beta, active) = jax.lax.scan(body, init, None, length=steps)
    alpha = jnp.where(active, alpha, alpha[0])
    off = jnp.where(active[1:], beta[:-1], 0)
    t = jnp.diag(alpha) + jnp.diag(off, 1) + jnp.diag(off, -1)
    evals, evecs = jnp.linalg.eigh(t)
    # Inactive rows of the basis are zero: they do not enter the Ritz vectors.
    y = evecs[:, jnp.array([0, steps - 1])].T @ basis
    y = y / jnp.maximum(jnp.linalg.norm(y, axis=1, keepdims=True), jnp.finfo(dt).tiny)
    return evals[0], evals[-1], y[0], y[1]


def hvp_matvec(loss_fn: Callable[[Any], jax.Array], params: Any, dtype: jnp.dtype) -> tuple:
    """Flat Hessian-vector product of ``loss_fn`` at ``params`` (linearised once).

    Returns:
        ``(matvec, n)`` with matvec: flat v (``dtype``) -> flat H v (``dtype``).
    """
    leaves = jax.tree_util.tree_map(lambda p: jnp.asarray(p, dtype), params)
    flat, unravel = ravel_pytree(leaves)

    def grad_flat(x: jax.Array) -> jax.Array:
        tree = jax.tree_util.tree_map(
            lambda u, p: u.astype(jnp.asarray(p).dtype), unravel(x), params
        )
        g = jax.grad(loss_fn)(tree)
        return ravel_pytree(jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype), g))[0]

    _, lin = jax.linearize(grad_flat, flat)
    return lin, flat.size


def curvature_run(
    state: CurvatureState,
    loss_fn: Callable[[Any], jax.Array],
    params: Any,
    due: jax.Array,
    steps: int,
) -> CurvatureState:
    """Run the Lanczos oracle when ``due`` (``lax.cond``: nothing is computed otherwise).

    The EMAs are not touched here (see :func:`curvature_smooth`). A run whose Ritz values are not
    finite leaves the vectors and values unchanged.
    """
    dt = state.theta_min.dtype

    def run(s: CurvatureState) -> CurvatureState:
        matvec, n = hvp_matvec(loss_fn, params, dt)
        key, sub = jax.random.split(s.key)
        r = jax.random.normal(sub, (n,), dt)
        r = r / jnp.linalg.norm(r)
        q0 = s.vectors[0] + s.vectors[1] + RANDOM_WEIGHT * r
        q0 = jnp.where(s.runs > 0, q0, r)
        lo, hi, y_min, y_max = lanczos_extremes(matvec, q0, steps)
        good = jnp.isfinite(lo) & jnp.isfinite(hi)
        vectors = jnp.where(good, jnp.stack([y_max, y_min]), s.vectors)
        return s._replace(
            vectors=vectors,
            theta_min=jnp.where(good, lo, s.theta_min),
            theta_max=jnp.where(good, hi, s.theta_max),
            runs=s.runs + good.astype(jnp.int32),
            key=key,
        )

    return jax.lax.cond(due, run, lambda s: s, state)


def curvature_smooth(
    state: CurvatureState,
    grad_norm: jax.Array,
    debias: jax.Array,
    *,
    beta: float,
    log_smoothing: bool,
    eps: float,
) -> tuple[CurvatureState, jax.Array, jax.Array, jax.Array]:
    """One EMA step on the held Ritz values, as YellowFin smooths its window extremes.

    h_min = exp(EMA(log(max(theta_min, 0) + eps)) / d_t) (negative curvature counts as zero),
    h_max likewise; without ``log_smoothing`` the raw clamped values are averaged. The distance
    sample ||g|| / (h_min + eps) bounds ||H^{-1} g|| = ||x - x*|| on a quadratic from above.

    Returns:
        ``(new_state, h_min, h_max, dist_to_opt)``.
    """
    dt = state.theta_min.dtype
    b = jnp.asarray(beta, dt)
    one_minus_b = 1 - b

    def ema(avg: jax.Array, x: jax.Array) -> jax.Array:
        return b * avg + one_minus_b * x

    lo = jnp.maximum(state.theta_min, 0)
    hi = jnp.maximum(state.theta_max, 0)
    if log_smoothing:
        log_min_avg = ema(state.log_min_avg, jnp.log(lo + eps))
        log_max_avg = ema(state.log_max_avg, jnp.log(hi + eps))
        h_min, h_max = jnp.exp(log_min_avg / debias), jnp.exp(log_max_avg / debias)
    else:
        log_min_avg = ema(state.log_min_avg, lo)
        log_max_avg = ema(state.log_max_avg, hi)
        h_min, h_max = log_min_avg / debias, log_max_avg / debias
    dist_avg = ema(state.dist_avg, grad_norm / (h_min + eps))
    new = state._replace(log_min_avg=log_min_avg, log_max_avg=log_max_avg, dist_avg=dist_avg)
    return new, h_min, h_max, dist_avg / debias
