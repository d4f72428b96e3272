"""YellowFin's SingleStep tuning rule solved inside a jitted step without float32 cancellation.

Zhang & Mitliagkas, "YellowFin and the Art of Momentum Tuning" (arXiv 1706.03471), Sec. 3.1,
design principle 2 (SingleStep):

    minimise_{mu, alpha}  mu * D^2 + alpha^2 * C
    s.t. sqrt(mu) >= (sqrt(dr) - 1) / (sqrt(dr) + 1),  alpha = (1 - sqrt(mu))^2 / h_min.

With x = sqrt(mu) the stationary point solves (1 - x)^3 = p x, p = D^2 h_min^2 / (2 C). The official
code evaluates Vieta's closed form, where x = y + 1 cancels catastrophically in float32 once p is
above ~1e7. Here the root is found by safeguarded Newton iterations on a monotone convex function,
in whichever unknown is small, so both x and 1 - x come out with full relative precision:

* p >= 1/4 (root x <= 1/2): g(x) = (1 - x)^3 - p x, decreasing and convex on [0, 1]; Newton from
  x = 0 (where g > 0) climbs monotonically to the root.
* p < 1/4 (root x > 1/2): solve for y = 1 - x, h(y) = y^3 + p y - p, increasing and convex; Newton
  from y = p^(1/3) (h >= 0 there since y^3 <= p at the root) descends monotonically.

Each iterate is additionally kept inside the current bracket (bisection when Newton would leave it),
so a fixed number of iterations is safe for any finite p >= 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Newton from the start points above converges quadratically after at most a few linear steps for
# p in [0, 1e30]; 16 iterations leave a margin (the tests check 1e-6 relative accuracy).
NEWTON_ITERATIONS = 16
# Above this p the root is below 1e-30 and mu = x^2 underflows in float32 anyway.
P_MAX = 1e30


def _safeguarded_newton(f, fprime, start, lo, hi, iterations: int):
    """Newton on a monotone function with a bisection fallback inside the bracket [lo, hi]."""

    def body(_, carry):
        x, lo, hi = carry
        fx = f(x)
        increasing = fprime(x) > 0
        # Shrink the bracket with the sign of f (works for either monotonicity).
        right_of_root = jnp.where(increasing, fx > 0, fx < 0)
        hi = jnp.where(right_of_root, x, hi)
        lo = jnp.where(right_of_root, lo, x)
        step = fx / fprime(x)
        x_new = x - step
        inside = (x_new >= lo) & (x_new <= hi) & jnp.isfinite(x_new)
        x_new = jnp.where(inside, x_new, 0.5 * (lo + hi))
        return x_new, lo, hi

    x, _, _ = jax.lax.fori_loop(0, iterations, body, (start, lo, hi))
    return x


def cubic_root(p: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Root x in [0, 1] of (1 - x)^3 = p x, returned as ``(x, 1 - x)`` both to full precision.

    Args:
        p: scalar >= 0 (float32 or float64); clamped to [0, 1e30].

    Returns:
        ``(x, one_minus_x)``; p = 0 gives (1, 0).

    Example:
        >>> import jax.numpy as jnp
        >>> x, y = cubic_root(jnp.float32(1e12))
        >>> bool(abs(float(x) * 1e12 - 1.0) < 1e-5)
        True
    """
    p = jnp.clip(jnp.asarray(p), 0.0, P_MAX)
    dt = p.dtype
    one = jnp.ones((), dt)
    zero = jnp.zeros((), dt)
    x_small = _safeguarded_newton(
        lambda x: (1 - x) ** 3 - p * x,
        lambda x: -3 * (1 - x) ** 2 - p,
        zero,
        zero,
        jnp.asarray(0.5, dt),
        NEWTON_ITERATIONS,
    )
    y_start = jnp.minimum(jnp.cbrt(p), jnp.asarray(0.5, dt))
    y_small = _safeguarded_newton(
        lambda y: y**3 + p * y - p,
        lambda y: 3 * y**2 + p + jnp.asarray(1e-30, dt),
        y_start,
        zero,
        jnp.asarray(0.5, dt),
        NEWTON_ITERATIONS,
    )
    big = p >= 0.25
    x = jnp.where(big, x_small, one - y_small)
    one_minus_x = jnp.where(big, one - x_small, y_small)
    return x, one_minus_x


def single_step(
    h_min: jax.Array,
    h_max: jax.Array,
    grad_var: jax.Array,
    dist_to_opt: jax.Array,
    eps: float = 1e-6,
) -> tuple[jax.Array, jax.Array]:
    """SingleStep momentum and learning rate (YellowFin, Sec. 3.1, eq. SingleStep).

    With the official eps guards: p = (D + eps)^2 (h_min + eps)^2 / (2 (C + eps)),
    dr = max((h_max + eps) / (h_min + eps), 1 + eps),
    sqrt(mu) = max(x, (sqrt(dr) - 1) / (sqrt(dr) + 1)),
    alpha = (1 - sqrt(mu))^2 / (h_min + eps). ``1 - sqrt(mu)`` is taken from the solver (or as
    2 / (sqrt(dr) + 1) on the robust-region bound), never by subtraction near 1.

    Args:
        h_min, h_max: curvature range estimates (scalars >= 0).
        grad_var: gradient variance estimate C.
        dist_to_opt: distance-to-optimum estimate D.
        eps: the official 1e-6 guard.

    Returns:
        ``(mu, alpha)`` as scalars of the inputs' dtype.
    """
    p = (dist_to_opt + eps) ** 2 * (h_min + eps) ** 2 / (2 * (grad_var + eps))
    x, one_minus_x = cubic_root(p)
    dr = jnp.maximum((h_max + eps) / (h_min + eps), 1 + eps)
    sdr = jnp.sqrt(dr)
    bound = (sdr - 1) / (sdr + 1)
    use_root = x >= bound
    sqrt_mu = jnp.where(use_root, x, bound)
    one_minus_sqrt_mu = jnp.where(use_root, one_minus_x, 2 / (sdr + 1))
    mu = sqrt_mu**2
    alpha = one_minus_sqrt_mu**2 / (h_min + eps)
    return mu, alpha
