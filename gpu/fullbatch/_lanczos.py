"""Extreme Hessian eigenvalues from Hessian-vector products, and a Hessian-free Newton polish.

For a network whose Hessian is too large to form, the per-variable rate protocol (YellowFin, Zhang &
Mitliagkas, arXiv 1706.03471, Sec. 3.1) still needs the ends ``h_min``, ``h_max`` of the spectrum at
the minimiser ``w*``:

- :func:`hvp_function`: ``v -> H v = d/de grad f(w + e v)`` at ``e = 0``, forward-over-reverse
  (``jax.jvp`` of ``jax.grad``), float64.
- :func:`lanczos_extremes`: ``m`` Lanczos steps (Lanczos 1950; Golub & Van Loan, *Matrix
  Computations*, 4th ed., Alg. 10.1.1) with full reorthogonalisation (every new vector is projected
  off the whole basis twice, so the tridiagonal ``T_m`` has no spurious copies); the extreme
  eigenvalues ``theta`` of ``T_m`` are the Ritz values, with residual bounds ``|beta_m s_{m,j}|``
  (Golub & Van Loan, Thm. 10.1.4: some eigenvalue of ``H`` lies within the bound of ``theta_j``).
  Ritz values interlace: ``h_min <= theta_min`` and ``theta_max <= h_max``.
- :func:`newton_cg_polish`: L-BFGS, then Newton steps ``w <- w - H^{-1} grad f(w)`` with the linear
  system solved by conjugate gradients on Hessian-vector products.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.sparse.linalg

from gpu.fullbatch._problem import FlatProblem, float64_value_and_grad, lbfgs_float64


@functools.lru_cache(maxsize=8)
def _hvp(loss: Callable[[jax.Array], jax.Array]) -> Callable:
    """One compiled ``(w, v) -> H(w) v`` per objective (a new point does not recompile)."""
    grad = jax.grad(loss)
    return jax.jit(lambda w, v: jax.jvp(grad, (w,), (v,))[1])


def hvp_function(problem: FlatProblem, point: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """``v -> H v`` of ``problem.loss`` at ``point`` in float64 (``jax.jvp`` of ``jax.grad``).

    Example:
        >>> from gpu.data import load_digits
        >>> from gpu.fullbatch import digits_mlp_problem
        >>> p = digits_mlp_problem(load_digits(), hidden=2)
        >>> hvp_function(p, p.init)(np.zeros(p.size)).shape
        (160,)
    """
    fn = _hvp(problem.loss)
    with jax.enable_x64(True):
        w = jnp.asarray(point, jnp.float64)

    def matvec(v: np.ndarray) -> np.ndarray:
        with jax.enable_x64(True):
            return np.asarray(fn(w, jnp.asarray(v, jnp.float64)), np.float64)

    return matvec


@dataclass(frozen=True)
class RitzExtremes:
    """Result of :func:`lanczos_extremes`.

    Attributes:
        h_min, h_max: the smallest and largest Ritz values.
        residual_min, residual_max: their residual bounds ``|beta_m s_{m,j}|``.
        steps: Lanczos steps taken (fewer than asked when an invariant subspace was found).
        ritz_values: every Ritz value, ascending.
    """

    h_min: float
    h_max: float
    residual_min: float
    residual_max: float
    steps: int
    ritz_values: np.ndarray


def lanczos_extremes(
    matvec: Callable[[np.ndarray], np.ndarray],
    size: int,
    steps: int,
    seed: int = 0,
) -> RitzExtremes:
    """Extreme Ritz values of ``steps`` Lanczos steps with full reorthogonalisation (float64).

    ``q_1`` is a Gaussian unit vector from ``np.random.default_rng(seed)``; step ``j`` forms
    ``r = H q_j - beta_{j-1} q_{j-1}``, ``alpha_j = q_j . r``, ``r -= alpha_j q_j``, projects ``r``
    off ``q_1..q_j`` twice, and sets ``beta_j = |r|``, ``q_{j+1} = r / beta_j``.

    Args:
        matvec: ``v -> H v`` for a symmetric ``H`` of order ``size``.
        size: the order ``n >= 1``.
        steps: Lanczos steps ``m`` in [1, n].
        seed: start-vector seed, >= 0.

    Raises:
        ValueError: naming the argument out of range.

    Example:
        >>> h = np.diag(np.arange(1.0, 101.0))
        >>> r = lanczos_extremes(lambda v: h @ v, 100, 40)
        >>> round(r.h_max, 6), r.h_min < 1.1
        (100.0, True)
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be an integer >= 1 (got {size!r})")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= size:
        raise ValueError(f"steps must be an integer in [1, {size}] (got {steps!r})")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0 (got {seed!r})")
    q = np.random.default_rng(seed).standard_normal(size)
    basis = np.zeros((steps + 1, size))
    basis[0] = q / np.linalg.norm(q)
    alpha, beta = [], []
    b_prev = 0.0
    for j in range(steps):
        r = np.asarray(matvec(basis[j]), np.float64)
        if j > 0:
            r = r - b_prev * basis[j - 1]
        a = float(basis[j] @ r)
        r = r - a * basis[j]
        for _ in range(2):  # full reorthogonalisation, twice is enough (Kahan-Parlett)
            r = r - basis[: j + 1].T @ (basis[: j + 1] @ r)
        alpha.append(a)
        b = float(np.linalg.norm(r))
        beta.append(b)
        if b <= 1e3 * np.finfo(np.float64).eps * (abs(a) + b_prev + 1e-300):
            break  # invariant subspace: the Ritz values are eigenvalues
        basis[j + 1] = r / b
        b_prev = b
    m = len(alpha)
    theta, s = scipy.linalg.eigh_tridiagonal(np.array(alpha), np.array(beta[: m - 1]))
    res = np.abs(beta[m - 1] * s[m - 1])
    return RitzExtremes(float(theta[0]), float(theta[-1]), float(res[0]), float(res[-1]), m, theta)


def newton_cg_polish(
    problem: FlatProblem,
    start: np.ndarray,
    *,
    gtol: float = 1e-13,
    max_newton: int = 8,
    cg_rtol: float = 1e-12,
    cg_maxiter: int = 5000,
) -> tuple[np.ndarray, float, float, int, int]:
    """L-BFGS in float64 from ``start``, then Hessian-free Newton steps (CG on ``H s = grad f``).

    The Hessian-free counterpart of :func:`gpu.fullbatch.polish`: Newton steps stop once a step is
    shorter than ``1e-13 |w|`` (the float64 floor) or after ``max_newton`` steps.

    Returns:
        ``(w*, f(w*), |grad f(w*)|, L-BFGS iterations, Newton steps)``.

    Raises:
        ValueError: for ``max_newton < 1``.
    """
    if isinstance(max_newton, bool) or not isinstance(max_newton, int) or max_newton < 1:
        raise ValueError(f"max_newton must be an integer >= 1 (got {max_newton!r})")
    fun = float64_value_and_grad(problem)
    res = lbfgs_float64(fun, start, gtol)
    w, steps = np.asarray(res.x, np.float64), 0
    for _ in range(max_newton):
        g = fun(w)[1]
        op = scipy.sparse.linalg.LinearOperator(
            (w.size, w.size), matvec=hvp_function(problem, w), dtype=np.float64
        )
        step, _ = scipy.sparse.linalg.cg(op, g, rtol=cg_rtol, atol=0.0, maxiter=cg_maxiter)
        if np.linalg.norm(step) <= 1e-13 * max(np.linalg.norm(w), 1.0):
            break
        w, steps = w - step, steps + 1
    v, g = fun(w)
    return w, v, float(np.linalg.norm(g)), int(res.nit), steps
