"""Curvature range from Hessian-vector products: a few Lanczos steps every k steps.

An alternative to YellowFin's gradient-norm proxy (Zhang & Mitliagkas, arXiv 1706.03471, Sec. 3.2,
which takes h = ||g||^2 over a window). Here h_min and h_max are the extreme Ritz values of m
Lanczos steps (Lanczos 1950; Golub & Van Loan, *Matrix Computations*, 4th ed., Sec. 10.1) on the
Hessian H of the minibatch loss at the current parameters, reached only through products H v =
d/de grad L(x + e v) (``jax.linearize`` of the gradient: forward-over-reverse).

Run every k-th step, warm-started: the start vector is y_max + y_min + 1e-3 r with y_max, y_min
the unit Ritz vectors of the previous run and r a fresh pseudo-random vector of norm about 1 (an
integer hash, one fused pass; the first run starts from r alone; a trace of it keeps
the Krylov space from being stuck in an invariant subspace; a larger weight slows the convergence
at a fixed Hessian: on h = logspace(0, 2, 50) with m = 10, h_min - 1 is 3e-9 after 60 runs
without it, 3e-5 with weight 0.01, 2e-2 with weight 0.5). The recurrence is the three-term one
(alpha_j = <q_j, H q_j - beta_{j-1} q_{j-1}>) without reorthogonalisation: lost orthogonality
produces duplicate copies of converged Ritz values (Paige 1976), not wrong extremes. A breakdown
(beta_j at rounding level: an invariant subspace was found) ends the recurrence; the unused rows
of the tridiagonal matrix T are filled with alpha_0, a value inside the range of the Ritz values,
so that the extremes are those of the active block.

Kaniel-Paige bound (Golub & Van Loan, Thm. 10.1.2): with lambda_1 >= ... >= lambda_n the
eigenvalues, phi_1 the angle between the start vector and the top eigenvector, and
rho_1 = (lambda_1 - lambda_2) / (lambda_2 - lambda_n),
0 <= lambda_1 - theta_max <= (lambda_1 - lambda_n) (tan(phi_1) / T_{m-1}(1 + 2 rho_1))^2,
with T_{m-1} the Chebyshev polynomial; the same holds for theta_min - lambda_n with the roles
reversed.

Cost of one run: one linearisation (a forward and backward pass that keeps its residuals) and m
products (a tangent forward and a tangent backward pass each, about two gradient evaluations' worth
of arithmetic), m + 2 parameter-sized vectors of temporary memory; one parameter-sized vector of
state. Counted in gradient evaluations g: 1 + (1 + 2 m) / k per step with the step's own gradient,
3.1 g at k = m = 10. Measured on a tanh MLP (``benchmarks/_bench_training_step.py``): a
linearisation costs 2-4 g and a product 1.7-3 g on XLA:CPU. Fewer Lanczos steps are cheaper but
h_min, the slow end, converges much more slowly across warm-started runs (relative error of h_min
after 10 / 40 runs on a fixed diagonal Hessian, float64):

    spectrum              m = 4           m = 6           m = 10
    logspace(0, 2, 50)    0.12 / 0.014    0.053 / 1.3e-3  5.8e-3 / 1.7e-6
    1/i, i = 1..128       0.20 / 0.058    0.063 / 0.010   7.7e-3 / 5.9e-4
    1/i, i = 1..1024      0.81 / 0.33     0.36 / 0.12     0.11 / 0.026

(h_max is within 2e-5 of the top eigenvalue after 5 runs for every m >= 4.)
"""

from __future__ import annotations

import math
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
        start: (n,) next start vector y_max + y_min (unit Ritz vectors of the last run),
            over the flattened parameters.
        theta_min, theta_max: extreme Ritz values of the last run (raw, may be negative).
        log_min_avg, log_max_avg: EMAs of log(max(theta, 0) + eps) (as YellowFin's oracles).
        dist_avg: EMA of the distance sample ||g|| / (h_min + eps).
        runs: number of Lanczos runs so far.
    """

    start: jax.Array
    theta_min: jax.Array
    theta_max: jax.Array
    log_min_avg: jax.Array
    log_max_avg: jax.Array
    dist_avg: jax.Array
    runs: jax.Array


def curvature_init(params: Any, dtype: jnp.dtype) -> CurvatureState:
    """Zero statistics; no vectors yet (the first run starts from a random vector)."""
    n = ravel_pytree(jax.tree_util.tree_map(lambda p: jnp.asarray(p, dtype), params))[0].size

    def zero() -> jax.Array:
        return jnp.zeros((), dtype)

    return CurvatureState(
        start=jnp.zeros((n,), dtype),
        theta_min=zero(),
        theta_max=zero(),
        log_min_avg=zero(),
        log_max_avg=zero(),
        dist_avg=zero(),
        runs=jnp.zeros((), jnp.int32),
    )


def lanczos_extremes(
    matvec: Callable[[jax.Array], jax.Array], q0: jax.Array, steps: int, both: bool = True
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array | None]:
    """Extreme Ritz values and unit Ritz vectors of ``steps`` Lanczos steps from ``q0``.

    The loop is unrolled (``steps`` is static and small): on XLA:CPU a ``scan`` carrying
    parameter-sized vectors, a stacked basis, and a (2, m) x (m, n) product each cost more than the
    recurrence itself; unrolled, the basis stays a list and each Ritz vector is one fused pass.

    Args:
        matvec: v -> H v for a symmetric H (flat vectors).
        q0: start vector (any nonzero norm).
        steps: number of Lanczos steps m >= 1 (the size of T).
        both: return both Ritz vectors; if False, only y_min + y_max = Q (s_min + s_max) (the
            next warm start) in place of y_min and None for y_max: one pass over the basis
            instead of two, the most expensive part of a run on a CPU.

    Returns:
        ``(theta_min, theta_max, y_min, y_max)`` (see ``both``).
    """
    dt = q0.dtype
    rel_tol = 100 * jnp.finfo(dt).eps
    q = q0 / jnp.linalg.norm(q0)
    q_prev = jnp.zeros_like(q)
    b_prev = jnp.zeros((), dt)
    active = jnp.ones((), bool)
    basis, alpha, beta, live = [], [], [], []
    for _ in range(steps):
        r = matvec(q) - b_prev * q_prev
        a = jnp.vdot(q, r)
        w = r - a * q
        b = jnp.linalg.norm(w)
        basis.append(q)
        alpha.append(a)
        live.append(active)
        active = active & (b > rel_tol * (jnp.abs(a) + b_prev + b))
        b = jnp.where(active, b, 0)
        beta.append(b)
        q_next = jnp.where(active, w / jnp.where(active, b, 1), 0)
        # Materialise q_{j+1}: XLA would otherwise fuse its whole chain of producers into each
        # consumer (every later step and the Ritz sums), recomputing it (10x slower at m = 10).
        q_prev, q, b_prev = q, jax.lax.optimization_barrier(q_next), b
    alpha_v, beta_v, live_v = jnp.stack(alpha), jnp.stack(beta), jnp.stack(live)
    alpha_v = jnp.where(live_v, alpha_v, alpha_v[0])
    off = jnp.where(live_v[1:], beta_v[:-1], 0)
    t = jnp.diag(alpha_v) + jnp.diag(off, 1) + jnp.diag(off, -1)
    evals, evecs = jnp.linalg.eigh(t)
    # Inactive basis vectors are zero: they do not enter the Ritz vectors.
    tiny = jnp.finfo(dt).tiny
    if not both:
        coef = evecs[:, 0] + evecs[:, steps - 1]
        y = sum(coef[j] * basis[j] for j in range(steps))
        return evals[0], evals[-1], y, None
    ritz = []
    for col in (0, steps - 1):
        y = sum(evecs[j, col] * basis[j] for j in range(steps))
        ritz.append(y / jnp.maximum(jnp.linalg.norm(y), tiny))
    return evals[0], evals[-1], ritz[0], ritz[1]


def _hash_direction(n: int, seed: jax.Array, dtype: jnp.dtype) -> jax.Array:
    """A cheap pseudo-random direction of norm about 1: one fused elementwise pass.

    Entries u_i - 1/2 with u_i uniform on [0, 1) from an integer hash of (i, seed) (the
    ``lowbias32`` mixer: multiply, xor-shift), scaled by sqrt(12 / n) so that the expected squared
    norm is 1 (no reduction pass). Integer arithmetic only: ``sin``-based hashes cost about 40x an
    elementwise pass on XLA:CPU, threefry about 50x.
    """
    x = jnp.arange(n, dtype=jnp.uint32) * jnp.uint32(0x9E3779B9)
    x = x + seed.astype(jnp.uint32) * jnp.uint32(0x85EBCA6B)
    x = (x ^ (x >> 16)) * jnp.uint32(0x7FEB352D)
    x = (x ^ (x >> 15)) * jnp.uint32(0x846CA68B)
    x = x ^ (x >> 16)
    u = (x >> 8).astype(jnp.float32) * jnp.float32(2.0**-24) - 0.5
    return (u * math.sqrt(12.0 / n)).astype(dtype)


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
    # Materialise the linearisation's residuals once: XLA would otherwise fuse their producers
    # (tanh, exp, ...) into every one of the m products and recompute them each time.
    fn, consts = jax.closure_convert(lin, flat)
    consts = jax.lax.optimization_barrier(consts)
    return (lambda v: fn(v, *consts)), flat.size


def curvature_run(
    state: CurvatureState,
    loss_fn: Callable[[Any], jax.Array],
    params: Any,
    due: jax.Array,
    steps: int,
) -> CurvatureState:
    """Run the Lanczos oracle when ``due`` (``lax.cond``: nothing is computed otherwise).

    The EMAs are not touched here (see :func:`curvature_smooth`). A run whose Ritz values are not
    finite leaves the start vector and values unchanged.
    """
    dt = state.theta_min.dtype

    def run(s: CurvatureState) -> CurvatureState:
        matvec, n = hvp_matvec(loss_fn, params, dt)
        r = _hash_direction(n, s.runs, dt)
        q0 = jnp.where(s.runs > 0, s.start + RANDOM_WEIGHT * r, r)
        lo, hi, start, _ = lanczos_extremes(matvec, q0, steps, both=False)
        good = jnp.isfinite(lo) & jnp.isfinite(hi)
        return s._replace(
            start=jnp.where(good, start, s.start),
            theta_min=jnp.where(good, lo, s.theta_min),
            theta_max=jnp.where(good, hi, s.theta_max),
            runs=s.runs + good.astype(jnp.int32),
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
