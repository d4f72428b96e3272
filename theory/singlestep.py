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

Scaling. :func:`singlestep` never forms ``D^2 h_min^2`` or ``(1 - x)^2`` in floating point: ``p``
is kept as a mantissa and a binary exponent (``p = m 2^e`` from ``frexp`` of ``C``, ``D``,
``h_min``), so ``p`` may lie far outside the float64 range. For ``p < 2^-600`` the root is
``1 - x = p^(1/3)`` (the next term, ``p^(2/3) / 3``, is below ``2^-400`` relative) taken as a cube
root of the mantissa times ``2^(e/3)``; for ``p > 2^600`` it is ``x = 1/p`` (next term ``3/p^2``).
``alpha = (1 - x)^2 / h_min`` is assembled the same way with ``ldexp``, so it is exact to a few
ulps whenever it is itself a normal float64, e.g. ``singlestep(1, 1, 1e-200, 1e-200)`` gives
``alpha = 2^(-2/3) 1e-200^(1/3) = 1.36e-67`` where ``(1 - x)^2`` alone would underflow. Whether
the dynamic-range bound is active (``x < sqrt(mu_lb)``) is decided on the complements
``1 - x`` and ``1 - sqrt(mu_lb) = 2 sqrt(h_min) / (sqrt(h_max) + sqrt(h_min))`` when both roots
are near 1, where ``x`` and ``sqrt(mu_lb)`` may round to the same float.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from theory import _validate as v
from theory.heavy_ball import _polyak

FloatArray = NDArray[np.float64]

__all__ = ["singlestep", "singlestep_objective", "singlestep_p", "singlestep_root"]

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

    Zhang & Mitliagkas (arXiv 1706.03471), Eq. (15). A term beyond float64 is ``inf``; a term
    with a zero factor is 0 (never ``0 * inf``).

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
    with np.errstate(over="ignore", under="ignore"):  # terms beyond float64 are inf
        alpha = ((1.0 - mu) / (1.0 + np.sqrt(mu))) ** 2 / h_min
        no_dist = (mu == 0.0) | (dist_to_opt == 0.0)
        no_noise = (alpha == 0.0) | (grad_var == 0.0)
        dist_term = np.where(no_dist, 0.0, mu * np.where(no_dist, 1.0, dist_to_opt) ** 2)
        noise_term = np.where(no_noise, 0.0, np.where(no_noise, 1.0, alpha) ** 2 * grad_var)
        return dist_term + noise_term


def _scaled_p(
    grad_var: FloatArray, dist_to_opt: FloatArray, h_min: FloatArray
) -> tuple[FloatArray, NDArray[np.int64]]:
    """``p = D^2 h_min^2 / (2 C) = m 2^e`` with ``m`` in ``[1/2, 1)`` (``m = 0`` when ``D = 0``)."""
    md, ed = np.frexp(dist_to_opt)
    mh, eh = np.frexp(h_min)
    mc, ec = np.frexp(grad_var)
    m, em = np.frexp((md * mh) ** 2 / (2.0 * mc))  # (md mh)^2 in [1/16, 1), 2 mc in [1, 2)
    e = 2 * ed.astype(np.int64) + 2 * eh - ec + em
    return m, e


def _ldexp(m: FloatArray, e: NDArray[np.int64]) -> FloatArray:
    """``m 2^e`` rounded once; ``inf`` or ``0`` beyond the float64 range (no warning)."""
    e = np.clip(e, -4000, 4000)  # far beyond both ends of the range: same result, int32-safe
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(m, e.astype(np.int32))


_SCALED_EXP = 600  # |log2 p| beyond which the one-term asymptotics are exact in float64


def _p_value(m: FloatArray, e: NDArray[np.int64], no_noise: NDArray[np.bool_]) -> FloatArray:
    """``p = m 2^e`` as a float64 (``inf`` or ``0`` beyond the range); ``inf`` where ``C = 0``."""
    return np.where(no_noise, np.inf, _ldexp(m, e))


def singlestep_p(grad_var: ArrayLike, dist_to_opt: ArrayLike, h_min: ArrayLike) -> FloatArray:
    """SingleStep's cubic parameter ``p = D^2 h_min^2 / (2 C)``, without spurious over/underflow.

    Computed from the binary mantissas and exponents of the inputs, so it is ``inf`` (or ``0``)
    only when ``p`` itself lies beyond the float64 range, not when ``D h_min`` does. ``C = 0``
    gives ``inf``. Zhang & Mitliagkas (arXiv 1706.03471), Sec. 3.1.

    Args:
        grad_var: gradient variance ``C``, ``>= 0``.
        dist_to_opt: distance to the optimum ``D``, ``>= 0``.
        h_min: smallest curvature, ``> 0``.

    Returns:
        Float64 array of the broadcast shape.

    Example:
        >>> f"{float(singlestep_p(5e-301, 1e-100, 1e-100)):.12g}"  # (D h_min)^2 alone underflows
        '1e-100'
    """
    grad_var = v.nonnegative("grad_var", grad_var)
    dist_to_opt = v.nonnegative("dist_to_opt", dist_to_opt)
    h_min = v.positive("h_min", h_min)
    grad_var, dist_to_opt, h_min = v.broadcast(
        ("grad_var", "dist_to_opt", "h_min"), grad_var, dist_to_opt, h_min
    )
    no_noise = grad_var == 0.0
    m, e = _scaled_p(np.where(no_noise, 1.0, grad_var), dist_to_opt, h_min)
    return _p_value(m, e, no_noise)


def _root_scaled(
    m: FloatArray, e: NDArray[np.int64]
) -> tuple[FloatArray, FloatArray, NDArray[np.int64]]:
    """``x`` and ``1 - x = um 2^ue`` (``um`` in ``[1/2, 1)`` or 0) for ``p = m 2^e``, any range."""
    zero = m == 0.0
    small = ~zero & (e < -_SCALED_EXP)
    large = ~zero & (e > _SCALED_EXP)
    mid = ~(small | large)
    # middle: p is a normal float64 (or 0) and _root_pair is accurate to a few ulps
    x, u = _root_pair(np.where(mid, _ldexp(m, e), 1.0))
    um, ue = np.frexp(u)
    ue = ue.astype(np.int64)
    # small p: 1 - x = p^(1/3) = (m 2^r)^(1/3) 2^k with e = 3k + r, r in {0, 1, 2}
    k, r = np.divmod(e, 3)
    ums, ues = np.frexp(np.cbrt(m * 2.0**r))
    um = np.where(small, ums, um)
    ue = np.where(small, ues + k, ue)
    x = np.where(small, 1.0, x)
    # large p: x = 1/p = (1/m) 2^-e and 1 - x = 1 (= 0.5 * 2^1)
    x = np.where(large, _ldexp(1.0 / np.where(zero, 1.0, m), -e), x)
    um = np.where(large, 0.5, um)
    ue = np.where(large, 1, ue)
    return x, um, ue


def _below_bound(
    x: FloatArray,
    um: FloatArray,
    ue: NDArray[np.int64],
    s_lb: FloatArray,
    root_h: FloatArray,
    root_sum: FloatArray,
) -> NDArray[np.bool_]:
    """Whether ``x < s_lb``, decided on whichever side keeps full relative accuracy.

    Below ``1/2`` ``x`` and ``s_lb`` themselves are accurate; above, both may round to 1, so the
    complements ``1 - x = um 2^ue`` and ``1 - s_lb = 2 sqrt(h_min) / root_sum`` (scaled, it can
    lie below the float64 range) are compared instead: ``x < s_lb`` iff ``1 - x > 1 - s_lb``.
    """
    ms, es = np.frexp(root_h)
    mr, er = np.frexp(root_sum)
    ml, el = np.frexp(2.0 * ms / mr)
    el = el.astype(np.int64) + es - er
    u_above = (um > 0.0) & ((ue > el) | ((ue == el) & (um > ml)))
    near_one = (x >= 0.5) & (s_lb >= 0.5)
    return np.where(near_one, u_above, x < s_lb)


class _Parts(NamedTuple):
    """SingleStep's result with the intermediate quantities it is decided by."""

    mu: FloatArray  # max(root^2, mu_lb)
    alpha: FloatArray  # (1 - sqrt(mu))^2 / h_min
    p: FloatArray  # D^2 h_min^2 / (2 C) as float64: inf when C = 0 or beyond the range
    root: FloatArray  # x = sqrt(mu) of the cubic alone, before the dynamic-range bound
    mu_lb: FloatArray  # the bound: Polyak's mu, the minimal robust momentum of h_max / h_min
    bound_active: NDArray[np.bool_]  # x < sqrt(mu_lb): mu = mu_lb and Polyak's alpha


def _singlestep_parts(
    grad_var: ArrayLike, dist_to_opt: ArrayLike, h_min: ArrayLike, h_max: ArrayLike
) -> _Parts:
    """:func:`singlestep` with its parts: ``p``, the root ``x``, ``mu_lb`` and whether it binds.

    Validates like :func:`singlestep`; every part comes from the one scaled computation, so the
    parts are consistent with ``(mu, alpha)`` even where ``p`` or ``x`` is not a normal float64
    (``x`` below ``2^-1074`` is 0 and ``p`` beyond ``1.8e308`` is ``inf``; the decisions use the
    mantissa-exponent forms). Private: the theory CLI shows these parts.
    """
    grad_var = v.nonnegative("grad_var", grad_var)
    dist_to_opt = v.nonnegative("dist_to_opt", dist_to_opt)
    h_min = v.positive("h_min", h_min)
    h_max = v.positive("h_max", h_max)
    grad_var, dist_to_opt, h_min, h_max = v.broadcast(
        ("grad_var", "dist_to_opt", "h_min", "h_max"), grad_var, dist_to_opt, h_min, h_max
    )
    v.ordered("h_min", h_min, "h_max", h_max)
    if np.any((grad_var == 0.0) & (dist_to_opt == 0.0)):
        raise ValueError(
            "grad_var and dist_to_opt must not both be 0: need grad_var > 0 or dist_to_opt > 0 "
            "(the objective is flat)"
        )
    no_noise = grad_var == 0.0
    m, e = _scaled_p(np.where(no_noise, 1.0, grad_var), dist_to_opt, h_min)
    x, um, ue = _root_scaled(m, e)
    # C = 0: p = inf, x = 0 and 1 - x = 1
    x = np.where(no_noise, 0.0, x)
    um, ue = np.where(no_noise, 0.5, um), np.where(no_noise, 1, ue)
    with np.errstate(under="ignore", over="ignore"):  # results beyond float64: 0 or inf
        # sqrt(mu_lb) from h_max - h_min (kappa is never formed) and Polyak's alpha
        polyak = _polyak(h_min, h_max)
        bound = _below_bound(x, um, ue, polyak.sqrt_mu, polyak.root_h_min, polyak.root_sum)
        mu_lb = polyak.sqrt_mu * polyak.sqrt_mu
        mu = np.where(bound, mu_lb, x * x)
    mh, eh = np.frexp(h_min)
    alpha_root = _ldexp(um * um / mh, 2 * ue - eh)  # (1 - x)^2 / h_min, um^2 / mh in [1/8, 2)
    alpha = np.where(bound, polyak.alpha, alpha_root)
    return _Parts(
        mu=np.asarray(mu),
        alpha=np.asarray(alpha),
        p=np.asarray(_p_value(m, e, no_noise)),
        root=np.asarray(x),
        mu_lb=np.asarray(mu_lb),
        bound_active=np.asarray(bound),
    )


def singlestep(
    grad_var: ArrayLike, dist_to_opt: ArrayLike, h_min: ArrayLike, h_max: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """SingleStep's momentum and learning rate.

    ``x`` solves ``(1 - x)^3 = p x`` with ``p = D^2 h_min^2 / (2 C)`` (``x = 0`` when ``C = 0``);
    ``mu = max(x^2, mu_lb)`` with the dynamic-range bound
    ``mu_lb = ((sqrt(h_max) - sqrt(h_min)) / (sqrt(h_max) + sqrt(h_min)))^2`` (the minimal robust
    momentum of ``kappa = h_max / h_min``), and ``alpha = (1 - sqrt(mu))^2 / h_min``. When the
    bound is active, ``alpha`` equals Polyak's ``4 / (sqrt(h_max) + sqrt(h_min))^2``.
    Zhang & Mitliagkas (arXiv 1706.03471), Eq. (15)-(16).

    ``p`` and ``1 - x`` are carried as mantissa and exponent (module docstring), so nothing under-
    or overflows before ``mu`` and ``alpha`` themselves do; ``kappa`` is never formed, so
    ``h_max / h_min`` may exceed the float64 range.

    ``D = 0`` (with ``C > 0``) gives ``mu = 1, alpha = 0``: the objective ``alpha^2 C`` is then
    minimised by ``alpha = 0`` for any ``mu``, and ``mu = 1`` is the limit ``p -> 0`` of the
    solution (``1 - sqrt(mu) = p^(1/3) + O(p^(2/3))``), so the map is continuous there.

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
    parts = _singlestep_parts(grad_var, dist_to_opt, h_min, h_max)
    return parts.mu, parts.alpha
