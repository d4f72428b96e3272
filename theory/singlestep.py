"""YellowFin's SingleStep tuning rule in closed form, without catastrophic cancellation.

SingleStep (Zhang & Mitliagkas, arXiv 1706.03471, Sec. 3.1, Eq. (15)) minimises the one-step
surrogate ``mu D^2 + alpha^2 C`` subject to the robust-region constraints
``sqrt(mu) >= (sqrt(kappa) - 1) / (sqrt(kappa) + 1)``, ``kappa = h_max / h_min``, and
``alpha = (1 - sqrt(mu))^2 / h_min``. With ``x = sqrt(mu)`` the objective
``F(x) = x^2 D^2 + (1 - x)^4 C / h_min^2`` is convex on ``[0, 1]`` and its stationary point solves

    (1 - x)^3 = p x,   p = D^2 h_min^2 / (2 C),

i.e. ``y^3 + p y + p = 0`` with ``y = x - 1``, which has one real root, in ``(-1, 0)`` for
``p > 0``.

Numerics. Vieta's substitution ``w^3 = (-p - sqrt(p^2 + 4 p^3 / 27)) / 2``, ``y = w - p / (3 w)`` is
accurate to a few ulps for ``p <= 1`` (measured against a 60-digit reference), and it returns
``1 - x = -y`` directly, which matters when ``x -> 1`` (``p -> 0``). For large ``p`` the two terms
of ``y`` cancel (``x ~ 1 / p``: float64 Vieta loses all digits by ``p ~ 1e11``), so for ``p > 1``
the root is found by Newton's method on ``g(x) = (1 - x)^3 - p x`` from ``x_0 = 1 / (p + 3)``:
``g`` is decreasing and convex on ``[0, 1]`` and ``g(x_0) (p + 3)^3 = 3 p + 8 > 0``, so the
iterates increase monotonically to the root; they are kept inside the bracket ``[x_0, 1]``
(bisection otherwise). The Vieta formula is also written with ``p`` factored out of the square
root, ``w^3 = -p (1 + sqrt(1 + 4 p / 27)) / 2``, so that ``p^2`` cannot underflow.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from theory import _validate as v
from theory.heavy_ball import min_robust_momentum

FloatArray = NDArray[np.float64]

__all__ = ["singlestep", "singlestep_objective", "singlestep_root"]

_VIETA_MAX_P = 1.0
_NEWTON_ITERS = 60


def _vieta(p: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(x, 1 - x)`` by Vieta's substitution (accurate for ``0 <= p <= 1``)."""
    w3 = -0.5 * p * (1.0 + np.sqrt(1.0 + 4.0 * p / 27.0))  # p factored out: no underflow
    w = np.cbrt(w3)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(w != 0.0, w - p / (3.0 * np.where(w != 0.0, w, 1.0)), 0.0)
    return 1.0 + y, -y


def _newton(p: FloatArray) -> FloatArray:
    """Root of ``(1 - x)^3 = p x`` by bracketed Newton from the left (for ``p > 1``)."""
    x = 1.0 / (p + 3.0)
    lo, hi = x.copy(), np.ones_like(x)
    for _ in range(_NEWTON_ITERS):
        u = 1.0 - x
        g = u**3 - p * x
        lo = np.where(g > 0.0, x, lo)
        hi = np.where(g < 0.0, x, hi)
        step = g / (3.0 * u * u + p)  # -g / g'(x)
        new = x + step
        new = np.where((new > lo) & (new < hi) | (g == 0.0), new, 0.5 * (lo + hi))
        done = np.abs(new - x) <= 2.0 * np.finfo(np.float64).eps * np.abs(new)
        x = new
        if np.all(done):
            break
    return x


def _root_pair(p: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(x, 1 - x)`` for ``p >= 0``, each to full relative accuracy."""
    xv, uv = _vieta(np.minimum(p, _VIETA_MAX_P))
    big = p > _VIETA_MAX_P
    xn = _newton(np.where(big, p, 2.0))
    return np.where(big, xn, xv), np.where(big, 1.0 - xn, uv)


def singlestep_root(p: ArrayLike) -> FloatArray:
    """The root ``x = sqrt(mu)`` in ``[0, 1]`` of ``(1 - x)^3 = p x``.

    Zhang & Mitliagkas (arXiv 1706.03471), Sec. 3.1 (the cubic of SingleStep); Vieta for ``p <= 1``,
    bracketed Newton above (module docstring). ``p = 0`` gives ``x = 1``.

    Args:
        p: ``D^2 h_min^2 / (2 C)``, ``>= 0``.

    Returns:
        Float64 array shaped like ``p``.

    Example:
        >>> x = float(singlestep_root(1e12))  # x ~ 1 / (p + 3)
        >>> abs(x * 1e12 - 1.0) < 1e-11
        True
    """
    p = v.nonnegative("p", p)
    return _root_pair(p)[0]


def singlestep_objective(
    mu: ArrayLike, grad_var: ArrayLike, dist_to_opt: ArrayLike, h_min: ArrayLike
) -> FloatArray:
    """SingleStep surrogate ``mu D^2 + alpha^2 C`` with ``alpha = (1 - sqrt(mu))^2 / h_min``.

    Zhang & Mitliagkas (arXiv 1706.03471), Eq. (15).

    Args:
        mu: momentum in ``[0, 1]``.
        grad_var: gradient variance ``C``, ``>= 0``.
        dist_to_opt: distance to the optimum ``D``, ``>= 0``.
        h_min: smallest curvature, ``> 0``.

    Example:
        >>> float(singlestep_objective(0.25, 4.0, 2.0, 1.0))  # 0.25 * 4 + 0.0625 * 4
        1.25
    """
    mu = v.in_range("mu", mu, 0.0, 1.0)
    grad_var = v.nonnegative("grad_var", grad_var)
    dist_to_opt = v.nonnegative("dist_to_opt", dist_to_opt)
    h_min = v.positive("h_min", h_min)
    alpha = ((1.0 - mu) / (1.0 + np.sqrt(mu))) ** 2 / h_min
    return mu * dist_to_opt**2 + alpha**2 * grad_var


def singlestep(
    grad_var: ArrayLike, dist_to_opt: ArrayLike, h_min: ArrayLike, h_max: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """SingleStep's momentum and learning rate.

    ``x`` solves ``(1 - x)^3 = p x`` with ``p = D^2 h_min^2 / (2 C)`` (``x = 0`` when ``C = 0``);
    ``mu = max(x^2, ((sqrt(kappa) - 1) / (sqrt(kappa) + 1))^2)`` with ``kappa = h_max / h_min``, and
    ``alpha = (1 - sqrt(mu))^2 / h_min``. When the dynamic-range bound is active, ``alpha`` equals
    Polyak's ``4 / (sqrt(h_max) + sqrt(h_min))^2``.
    Zhang & Mitliagkas (arXiv 1706.03471), Eq. (15)-(16).

    Args:
        grad_var: gradient variance ``C``, ``>= 0``.
        dist_to_opt: distance to the optimum ``D``, ``>= 0`` (not both zero).
        h_min: smallest curvature, ``> 0``.
        h_max: largest curvature, ``>= h_min``.

    Returns:
        ``(mu, alpha)`` arrays of the broadcast shape.

    Example:
        >>> mu, alpha = singlestep(1.0, 1.0, 1.0, 1.0)  # p = 1/2, no dynamic-range bound
        >>> round(float(mu), 9), round(float(alpha), 9)
        (0.16830136, 0.347810385)
    """
    grad_var = v.nonnegative("grad_var", grad_var)
    dist_to_opt = v.nonnegative("dist_to_opt", dist_to_opt)
    h_min = v.positive("h_min", h_min)
    h_max = v.positive("h_max", h_max)
    v.ordered("h_min", h_min, "h_max", h_max)
    if np.any((grad_var == 0.0) & (dist_to_opt == 0.0)):
        raise ValueError("grad_var and dist_to_opt must not both be 0 (the objective is flat)")
    grad_var, dist_to_opt, h_min, h_max = np.broadcast_arrays(grad_var, dist_to_opt, h_min, h_max)
    no_noise = grad_var == 0.0
    with np.errstate(divide="ignore", over="ignore"):
        p = (dist_to_opt * h_min) ** 2 / (2.0 * np.where(no_noise, 1.0, grad_var))
    # p overflowing to inf means x below the float64 range, i.e. x = 0 like C = 0
    no_noise = no_noise | ~np.isfinite(p)
    x, u = _root_pair(np.where(no_noise, 0.0, p))
    x, u = np.where(no_noise, 0.0, x), np.where(no_noise, 1.0, u)
    kappa = h_max / h_min
    mu_lb = min_robust_momentum(kappa)
    bound = x * x < mu_lb
    mu = np.where(bound, mu_lb, x * x)
    u_lb = 2.0 / (np.sqrt(kappa) + 1.0)  # 1 - sqrt(mu_lb)
    alpha = np.where(bound, u_lb, u) ** 2 / h_min
    return np.asarray(mu), np.asarray(alpha)
