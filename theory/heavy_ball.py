"""Spectral theory of heavy-ball momentum on one curvature direction and on a spectrum.

Heavy ball (Polyak 1964) ``x_{t+1} = x_t - alpha f'(x_t) + mu (x_t - x_{t-1})`` on a quadratic of
curvature ``h`` moves the error state ``e_t = (x_t - x*, x_{t-1} - x*)`` by

    A = [[1 + mu - alpha h, -mu], [1, 0]],   det(zI - A) = z^2 - b z + mu,   b = 1 + mu - alpha h.

With ``a = alpha h``, ``s = sqrt(mu)`` and the discriminant ``D = b^2 - 4 mu`` the regimes are
(Zhang & Mitliagkas, arXiv 1706.03471, Sec. 2, Lemma 1 and Eq. (5); Goh, Distill 2017):

* robust (complex roots, ``D < 0``): ``mu > 0`` and ``(1 - s)^2 < a < (1 + s)^2``; radius ``s``;
* boundary (``D = 0``, ``mu >= 0``): a double root ``b / 2 = +-s`` (a Jordan block), radius ``s``;
* lazy (``a < (1 - s)^2``) and over-step (``a > (1 + s)^2``): real roots, radius
  ``(|b| + sqrt(D)) / 2``;
* negative momentum (``mu < 0``): always real roots, same formula;
* divergent: radius ``>= 1``, i.e. not (``|mu| < 1`` and ``0 < a < 2 (1 + mu)``).

Numerics: for ``mu >= 0`` the discriminant is evaluated factored,
``D = ((1 - s)^2 - a) ((1 + s)^2 - a)`` with ``1 - s = (1 - mu) / (1 + s)``, so it carries a small
*relative* error in each factor instead of the absolute ``eps b^2`` error of ``b^2 - 4 mu``; for
``mu < 0`` both terms of ``b^2 + 4 |mu|`` are positive. The larger root is
``q = (b + sign(b) sqrt(D)) / 2`` (no cancellation) and the smaller one ``mu / q`` (Vieta).

Range: where ``D`` itself lies beyond float64 (``|b|`` or ``alpha h`` above ``~1e154``) its root
is taken from the factors, ``sqrt|(1 - s)^2 - a| sqrt|(1 + s)^2 - a|`` or
``hypot(b, 2 sqrt|mu|)``, so radii and roots stay finite wherever they are themselves in range
(e.g. ``spectral_radius(0.5, 1e308, 1.0)`` is ``1e308``); a result beyond the range is ``inf``.
No function here emits a floating-point warning or returns NaN for accepted input.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from theory import _validate as v

FloatArray = NDArray[np.float64]

__all__ = [
    "Regime",
    "eigenvalues",
    "is_stable",
    "min_robust_momentum",
    "polyak_tuning",
    "regime",
    "robust_interval",
    "spectral_radius",
    "tolerated_dynamic_range",
    "transition_matrix",
]

# A point counts as the boundary D = 0 when alpha*h is within this many ulps of a region edge.
_BOUNDARY_ULPS = 8.0


class Regime(StrEnum):
    """Dynamical regime of heavy ball on one curvature direction."""

    ROBUST = "robust"
    LAZY = "lazy"
    OVERSTEP = "overstep"
    BOUNDARY = "boundary"
    DIVERGENT = "divergent"
    NEGATIVE_MOMENTUM = "negative_momentum"


def _inputs(alpha: ArrayLike, mu: ArrayLike, h: ArrayLike) -> tuple[FloatArray, ...]:
    alpha = v.positive("alpha", alpha)
    mu = v.as_finite("mu", mu)
    h = v.positive("h", h)
    return v.broadcast(("alpha", "mu", "h"), alpha, mu, h)


def _product(alpha: FloatArray, h: FloatArray) -> FloatArray:
    """``a = alpha h``; a product beyond float64 is ``inf`` (no warning).

    Such a point is divergent (``a >= 2 (1 + mu)``): radius and larger root are ``inf``, the
    correctly rounded values of numbers above the float64 range.
    """
    with np.errstate(over="ignore"):
        return alpha * h


def _one_minus_sqrt(mu: FloatArray) -> FloatArray:
    """``1 - sqrt(mu)`` for ``mu >= 0`` without cancellation near ``mu = 1``."""
    return (1.0 - mu) / (1.0 + np.sqrt(mu))


def _edges(mu: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Edges ``(1 - sqrt(mu))^2`` and ``(1 + sqrt(mu))^2`` of ``alpha*h`` (``mu >= 0``)."""
    m = np.maximum(mu, 0.0)
    return _one_minus_sqrt(m) ** 2, (1.0 + np.sqrt(m)) ** 2


def _discriminant(a: FloatArray, mu: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return ``(b, D)``: ``b = 1 + mu - a``, ``D = b^2 - 4 mu`` (factored for ``mu >= 0``).

    ``D`` beyond float64 is ``+inf`` (its sign is exact); use :func:`_root_disc` for its root.
    """
    with np.errstate(over="ignore"):
        b = 1.0 + mu - a
        lo, hi = _edges(mu)
        d = np.where(mu >= 0.0, (lo - a) * (hi - a), b * b + 4.0 * np.abs(mu))
    return b, d


def _root_disc(a: FloatArray, mu: FloatArray, b: FloatArray, d: FloatArray) -> FloatArray:
    """``sqrt|D|``; where ``D`` overflowed, from its factors (finite whenever the root is)."""
    with np.errstate(over="ignore"):
        lo, hi = _edges(mu)
        split = np.where(
            mu >= 0.0,
            np.sqrt(np.abs(lo - a)) * np.sqrt(np.abs(hi - a)),
            np.hypot(b, 2.0 * np.sqrt(np.abs(mu))),
        )
    return np.where(np.isfinite(d), np.sqrt(np.abs(d)), split)


def transition_matrix(alpha: ArrayLike, mu: ArrayLike, h: ArrayLike) -> FloatArray:
    """Heavy-ball transition matrix ``A = [[1 + mu - alpha h, -mu], [1, 0]]``.

    Acts on ``(x_t - x*, x_{t-1} - x*)``; Zhang & Mitliagkas (arXiv 1706.03471), Eq. (3).

    Args:
        alpha: learning rate, ``> 0``.
        mu: momentum (any finite real).
        h: curvature, ``> 0``.

    Returns:
        Array of shape ``broadcast_shape + (2, 2)``.

    Example:
        >>> transition_matrix(0.5, 0.25, 1.0).tolist()
        [[0.75, -0.25], [1.0, 0.0]]
    """
    alpha, mu, h = _inputs(alpha, mu, h)
    out = np.zeros((*alpha.shape, 2, 2))
    with np.errstate(over="ignore"):  # an entry beyond float64 is -inf (a divergent point)
        out[..., 0, 0] = 1.0 + mu - _product(alpha, h)
    out[..., 0, 1] = -mu
    out[..., 1, 0] = 1.0
    return out


def _roots(a: FloatArray, mu: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Return ``(b, D, z_big, z_small)``: roots of ``z^2 - b z + mu`` for ``D >= 0`` (else NaN)."""
    b, d = _discriminant(a, mu)
    sq = np.where(d >= 0.0, _root_disc(a, mu, b, d), 0.0)
    sign = np.where(b >= 0.0, 1.0, -1.0)
    with np.errstate(over="ignore"):  # halves first: q overflows only if it is beyond float64
        q = 0.5 * b + sign * (0.5 * sq)
    with np.errstate(divide="ignore", invalid="ignore"):
        small = np.where(q != 0.0, mu / np.where(q != 0.0, q, 1.0), 0.0)
    real = d >= 0.0
    return b, d, np.where(real, q, np.nan), np.where(real, small, np.nan)


def eigenvalues(alpha: ArrayLike, mu: ArrayLike, h: ArrayLike) -> NDArray[np.complex128]:
    """Eigenvalues of the heavy-ball operator, ``z = (b +- sqrt(b^2 - 4 mu)) / 2``.

    Real roots are computed as ``q = (b + sign(b) sqrt(D)) / 2`` and ``mu / q``; complex ones as
    ``(b +- i sqrt(-D)) / 2``. Ordered by decreasing modulus (the conjugate with positive imaginary
    part first). Zhang & Mitliagkas (arXiv 1706.03471), Lemma 1.

    Args:
        alpha: learning rate, ``> 0``.
        mu: momentum (any finite real).
        h: curvature, ``> 0``.

    Returns:
        Complex array of shape ``broadcast_shape + (2,)``.

    Example:
        >>> eigenvalues(1.25, 0.25, 1.0).round(12).tolist()  # b = 0
        [0.5j, -0.5j]
    """
    alpha, mu, h = _inputs(alpha, mu, h)
    a = _product(alpha, h)
    b, d, big, small = _roots(a, mu)
    im = 0.5 * np.where(d < 0.0, _root_disc(a, mu, b, d), 0.0)
    complex_ = d < 0.0
    z1 = np.where(complex_, 0.5 * b + 1j * im, big)
    z2 = np.where(complex_, 0.5 * b - 1j * im, small)
    return np.stack([z1, z2], axis=-1).astype(np.complex128)


def spectral_radius(alpha: ArrayLike, mu: ArrayLike, h: ArrayLike) -> FloatArray:
    """Spectral radius of the heavy-ball operator in closed form, for every regime.

    ``rho = sqrt(mu)`` when ``D = b^2 - 4 mu < 0`` (robust region), else
    ``rho = (|b| + sqrt(D)) / 2`` with ``b = 1 + mu - alpha h``.
    Zhang & Mitliagkas (arXiv 1706.03471), Lemma 1 / Eq. (5).

    Args:
        alpha: learning rate, ``> 0``.
        mu: momentum (any finite real).
        h: curvature, ``> 0``.

    Returns:
        Float64 array of the broadcast shape; ``inf`` only where the radius itself exceeds the
        float64 range (e.g. ``alpha h`` beyond it: a divergent point of radius about ``alpha h``).
        A radius that rounds to 1 (``alpha h`` below about ``eps (1 - mu)``, where
        ``x - alpha h x`` rounds to ``x`` in float64) is returned as 1.

    Example:
        >>> float(spectral_radius(1.0, 0.81, 1.0))  # robust: sqrt(mu)
        0.9
    """
    alpha, mu, h = _inputs(alpha, mu, h)
    a = _product(alpha, h)
    b, d = _discriminant(a, mu)
    with np.errstate(over="ignore"):  # halves first: inf only when the radius is beyond float64
        real = 0.5 * np.abs(b) + 0.5 * np.where(d >= 0.0, _root_disc(a, mu, b, d), 0.0)
    return np.where(d < 0.0, np.sqrt(np.maximum(mu, 0.0)), real)


def is_stable(alpha: ArrayLike, mu: ArrayLike, h: ArrayLike) -> NDArray[np.bool_]:
    """Stability (spectral radius ``< 1``): ``|mu| < 1`` and ``0 < alpha h < 2 (1 + mu)``.

    Polyak (1964); Zhang & Mitliagkas (arXiv 1706.03471), Sec. 2. Decided in exact arithmetic
    (``alpha, h > 0`` gives ``alpha h > 0`` even where the float64 product underflows), so it can
    be ``True`` where :func:`spectral_radius` rounds to 1; a float64 rate agrees with
    ``spectral_radius(...) < 1``.

    Args:
        alpha: learning rate, ``> 0``.
        mu: momentum (any finite real).
        h: curvature, ``> 0``.

    Returns:
        Boolean array of the broadcast shape.

    Example:
        >>> bool(is_stable(1.5, 0.0, 1.0)), bool(is_stable(2.5, 0.0, 1.0))
        (True, False)
    """
    alpha, mu, h = _inputs(alpha, mu, h)
    a = _product(alpha, h)
    with np.errstate(over="ignore"):  # 2 (1 + mu) beyond float64 only where |mu| >= 1
        return (np.abs(mu) < 1.0) & (a < 2.0 * (1.0 + mu))


def regime(alpha: ArrayLike, mu: ArrayLike, h: ArrayLike) -> NDArray[np.str_]:
    """Classify each ``(alpha, mu, h)`` into a :class:`Regime` (returned as its string value).

    Order of the tests: divergent (not :func:`is_stable`), negative momentum (``mu < 0``), boundary
    (``alpha h`` within 8 ulps of ``(1 -+ sqrt(mu))^2``), robust (strictly between the edges),
    lazy (below), over-step (above). Gradient descent (``mu = 0``) has one edge, ``alpha h = 1``.

    Args:
        alpha: learning rate, ``> 0``.
        mu: momentum (any finite real).
        h: curvature, ``> 0``.

    Returns:
        Array of strings (values of :class:`Regime`) of the broadcast shape.

    Example:
        >>> regime([0.001, 1.0, 3.615, 5.0], 0.81, 1.0).tolist()
        ['lazy', 'robust', 'overstep', 'divergent']
    """
    alpha, mu, h = _inputs(alpha, mu, h)
    a = _product(alpha, h)
    lo, hi = _edges(mu)
    tol = _BOUNDARY_ULPS * np.finfo(np.float64).eps
    on_lo = np.abs(a - lo) <= tol * np.maximum(a, lo)
    on_hi = np.abs(a - hi) <= tol * np.maximum(a, hi)
    out = np.select(
        [
            ~is_stable(alpha, mu, h),
            mu < 0.0,
            on_lo | on_hi,
            a < lo,
            a > hi,
        ],
        [
            Regime.DIVERGENT.value,
            Regime.NEGATIVE_MOMENTUM.value,
            Regime.BOUNDARY.value,
            Regime.LAZY.value,
            Regime.OVERSTEP.value,
        ],
        default=Regime.ROBUST.value,
    )
    return np.asarray(out, dtype=np.str_)


def robust_interval(
    mu: ArrayLike, h_min: ArrayLike, h_max: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Learning rates that put every curvature of ``[h_min, h_max]`` in the (closed) robust region.

    ``(1 - sqrt(mu))^2 / h_min <= alpha <= (1 + sqrt(mu))^2 / h_max``; empty when ``lo > hi``.
    Zhang & Mitliagkas (arXiv 1706.03471), Eq. (7)-(8).

    Args:
        mu: momentum in ``[0, 1)``.
        h_min: smallest curvature, ``> 0``.
        h_max: largest curvature, ``>= h_min``.

    Returns:
        ``(alpha_lo, alpha_hi)`` arrays of the broadcast shape.

    Example:
        >>> lo, hi = robust_interval(0.81, 1.0, 100.0)
        >>> round(float(lo), 12), round(float(hi), 12)
        (0.01, 0.0361)
    """
    mu = v.in_range("mu", mu, 0.0, 1.0, hi_open=True)
    h_min = v.positive("h_min", h_min)
    h_max = v.positive("h_max", h_max)
    mu, h_min, h_max = v.broadcast(("mu", "h_min", "h_max"), mu, h_min, h_max)
    v.ordered("h_min", h_min, "h_max", h_max)
    lo, hi = _edges(mu)
    with np.errstate(over="ignore"):  # an end beyond float64 (h below ~1e-308) is inf
        return lo / h_min, hi / h_max


def min_robust_momentum(kappa: ArrayLike) -> FloatArray:
    """Smallest momentum whose robust interval is non-empty for condition number ``kappa``.

    ``mu = ((sqrt(kappa) - 1) / (sqrt(kappa) + 1))^2``, evaluated as
    ``((kappa - 1) / (sqrt(kappa) + 1)^2)^2``. Zhang & Mitliagkas (arXiv 1706.03471), Eq. (8).

    This is Polyak's momentum: ``polyak_tuning(h_min, h_max)[1]`` equals
    ``min_robust_momentum(h_max / h_min)`` (divide the numerator and denominator of
    ``(sqrt(h_max) - sqrt(h_min)) / (sqrt(h_max) + sqrt(h_min))`` by ``sqrt(h_min)``), and it is
    the form to use when only the two curvatures are known: it never forms ``kappa``, which may
    lie beyond the float64 range although ``h_min`` and ``h_max`` do not.

    Args:
        kappa: condition number ``h_max / h_min``, ``>= 1``.

    Example:
        >>> round(float(min_robust_momentum(100.0)), 12)  # (9/11)^2
        0.669421487603
    """
    kappa = v.in_range("kappa", kappa, 1.0)
    return ((kappa - 1.0) / (np.sqrt(kappa) + 1.0) ** 2) ** 2


def tolerated_dynamic_range(mu: ArrayLike) -> FloatArray:
    """Largest condition number whose spectrum fits in the robust region at momentum ``mu``.

    ``kappa = ((1 + sqrt(mu)) / (1 - sqrt(mu)))^2`` (inverse of :func:`min_robust_momentum`).
    Zhang & Mitliagkas (arXiv 1706.03471), Sec. 2.2.

    Args:
        mu: momentum in ``[0, 1)``.

    Example:
        >>> round(float(tolerated_dynamic_range(0.81)), 9)  # (1.9 / 0.1)^2
        361.0
    """
    mu = v.in_range("mu", mu, 0.0, 1.0, hi_open=True)
    return ((1.0 + np.sqrt(mu)) / _one_minus_sqrt(mu)) ** 2


def polyak_tuning(h_min: ArrayLike, h_max: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Polyak's optimal heavy-ball tuning for curvatures in ``[h_min, h_max]``.

    ``alpha* = 4 / (sqrt(h_max) + sqrt(h_min))^2`` and
    ``mu* = ((sqrt(h_max) - sqrt(h_min)) / (sqrt(h_max) + sqrt(h_min)))^2``, evaluated as
    ``((h_max - h_min) / (sqrt(h_max) + sqrt(h_min))^2)^2``; the rate is ``sqrt(mu*)`` and both
    extreme curvatures sit on the robust-region boundary. Polyak (1964), Thm. 9. ``mu*`` is the
    minimal robust momentum of ``kappa = h_max / h_min`` (:func:`min_robust_momentum`), computed
    without forming ``kappa``.

    Args:
        h_min: smallest curvature, ``> 0``.
        h_max: largest curvature, ``>= h_min``.

    Returns:
        ``(alpha, mu)`` arrays of the broadcast shape.

    Example:
        >>> alpha, mu = polyak_tuning(1.0, 100.0)
        >>> round(float(alpha), 12), round(float(mu), 12)
        (0.03305785124, 0.669421487603)
    """
    h_min = v.positive("h_min", h_min)
    h_max = v.positive("h_max", h_max)
    h_min, h_max = v.broadcast(("h_min", "h_max"), h_min, h_max)
    v.ordered("h_min", h_min, "h_max", h_max)
    with np.errstate(over="ignore"):  # alpha* beyond float64 (h_max below ~2e-308): inf
        polyak = _polyak(h_min, h_max)
    return polyak.alpha, polyak.sqrt_mu**2


class _Polyak(NamedTuple):
    alpha: FloatArray  # 4 / root_sum^2
    sqrt_mu: FloatArray  # (sqrt(h_max) - sqrt(h_min)) / root_sum
    root_h_min: FloatArray  # sqrt(h_min)
    root_sum: FloatArray  # sqrt(h_max) + sqrt(h_min)


def _polyak(h_min: FloatArray, h_max: FloatArray) -> _Polyak:
    """Polyak's tuning and its parts, for validated ``0 < h_min <= h_max`` (no checks here).

    ``sqrt(mu*) = (h_max - h_min) / root_sum^2`` is formed from the difference ``h_max - h_min``
    (exact to one rounding), not from ``sqrt(h_max) - sqrt(h_min)``, and never from ``kappa``;
    ``root_sum <= 2.7e154``, so ``sqrt(mu*) <= 1`` cannot overflow. ``alpha*`` overflows only
    when ``4 / root_sum^2`` does (``h_max`` below ``~2e-308``): callers that must stay quiet wrap
    the call in ``np.errstate``. Shared by :func:`polyak_tuning` and SingleStep's dynamic-range
    bound (:func:`theory.singlestep.singlestep`).
    """
    root_h_min = np.sqrt(h_min)
    root_sum = np.sqrt(h_max) + root_h_min
    return _Polyak(
        alpha=(2.0 / root_sum) ** 2,
        sqrt_mu=(h_max - h_min) / root_sum / root_sum,
        root_h_min=root_h_min,
        root_sum=root_sum,
    )
