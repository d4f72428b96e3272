"""Noise floor of stochastic heavy ball on a quadratic: second moments, stationary loss, NQM.

Per eigen-direction with curvature ``h`` the stochastic gradient is ``h x + xi`` with i.i.d.
zero-mean noise of variance ``c``. Heavy ball ``x_{t+1} = x_t - alpha (h x_t + xi_t) + mu v_t`` with
``v_t = x_t - x_{t-1}`` gives, with ``a = alpha h``,

    x_{t+1} = (1 - a) x_t + mu v_t - alpha xi_t,     v_{t+1} = -a x_t + mu v_t - alpha xi_t.

Squaring and taking expectations (``xi_t`` independent of ``(x_t, v_t)``), the second moments
``p_t = (E x_t^2, E v_t^2, E x_t v_t)`` follow ``p_{t+1} = T p_t + alpha^2 c (1, 1, 1)`` with

    T = [[(1-a)^2, mu^2, 2 (1-a) mu],
         [a^2,     mu^2, -2 a mu   ],
         [-(1-a) a, mu^2, (1 - 2a) mu]].

The eigenvalues of ``T`` are the pairwise products ``z1^2, z2^2, z1 z2 = mu`` of the deterministic
roots, so ``p_t`` converges iff heavy ball is stable (``|mu| < 1``, ``0 < a < 2 (1 + mu)``), to the
fixed point (derived symbolically in :mod:`theory.symbolic`, entry ``"noise_floor_fixed_point"``)

    E x^2 = (1 + mu) alpha c / ((1 - mu) h (2 (1 + mu) - alpha h)),

whose loss ``(h/2) E x^2`` is the noise floor. The noisy quadratic model (Zhang et al., "Which
algorithmic choices matter at which batch sizes?", arXiv 1907.04164, Sec. 3) takes ``h_i = i^-p``
and per-example gradient covariance equal to the Hessian, so ``c_i = h_i / B`` for batch size ``B``.
YellowFin's surrogate ``alpha^2 C / (1 - mu)`` approximates this floor; it is not the exact value.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from theory._validate import (
    FloatArray,
    as_finite,
    broadcast,
    integer,
    momentum,
    nonnegative,
    positive,
)

__all__ = [
    "nqm_floor",
    "nqm_spectrum",
    "second_moment_operator",
    "second_moment_transient",
    "stationary_loss",
    "stationary_variance",
]


def _stable(alpha: ArrayLike, mu: ArrayLike, h: ArrayLike) -> tuple[FloatArray, ...]:
    a_ = positive("alpha", alpha)
    mu_ = momentum("mu", mu)
    h_ = positive("h", h)
    a_, mu_, h_ = broadcast(("alpha", "mu", "h"), a_, mu_, h_)
    with np.errstate(over="ignore"):
        ah = a_ * h_
    bad = ah >= 2.0 * (1.0 + mu_)
    if np.any(bad):
        shown = float(ah[bad].flat[0])
        raise ValueError(
            f"alpha*h must lie in (0, 2(1+mu)) for a stationary distribution (got {shown:g})"
        )
    return a_, mu_, h_


def stationary_variance(alpha: ArrayLike, mu: ArrayLike, h: ArrayLike, c: ArrayLike) -> FloatArray:
    """Stationary ``E x^2`` of stochastic heavy ball in one direction.

    ``Var = (1 + mu) alpha c / ((1 - mu) h (2 (1 + mu) - alpha h))``: the fixed point of the
    second-moment recursion (see the module docstring; e.g. Goh, "Why momentum really works",
    Distill 2017, and the heavy-ball reference, noise floor). ``mu = 0`` gives
    ``alpha c / (h (2 - alpha h))``.

    Args:
        alpha: learning rate ``> 0``.
        mu: momentum in ``(-1, 1)``.
        h: curvature ``> 0``; ``alpha * h`` must lie in ``(0, 2 (1 + mu))``.
        c: gradient-noise variance ``>= 0``.

    Example:
        >>> round(float(stationary_variance(0.1, 0.0, 1.0, 1.0)), 12)
        0.052631578947
    """
    a_, mu_, h_ = _stable(alpha, mu, h)
    c_ = nonnegative("c", c)
    a_, mu_, h_, c_ = broadcast(("alpha", "mu", "h", "c"), a_, mu_, h_, c_)
    return (1.0 + mu_) * a_ * c_ / ((1.0 - mu_) * h_ * (2.0 * (1.0 + mu_) - a_ * h_))


def stationary_loss(alpha: ArrayLike, mu: ArrayLike, h: ArrayLike, c: ArrayLike) -> FloatArray:
    """Stationary expected loss ``(h/2) E x^2 = (1+mu) alpha c / (2 (1-mu) (2(1+mu) - alpha h))``.

    Example:
        >>> round(float(stationary_loss(0.1, 0.0, 1.0, 1.0)), 12)
        0.026315789474
    """
    return 0.5 * positive("h", h) * stationary_variance(alpha, mu, h, c)


def second_moment_operator(alpha: ArrayLike, mu: ArrayLike, h: ArrayLike) -> FloatArray:
    """The ``3 x 3`` matrix ``T`` of the second-moment recursion (module docstring).

    Acts on ``p = (E x^2, E v^2, E x v)``; no stability requirement (any real ``mu``,
    ``alpha, h > 0``).

    Returns:
        Array of shape ``(..., 3, 3)``.

    Example:
        >>> second_moment_operator(1.0, 0.5, 1.0)[0].tolist()
        [0.0, 0.25, 0.0]
    """
    alpha_, mu_, h_ = broadcast(
        ("alpha", "mu", "h"), positive("alpha", alpha), as_finite("mu", mu), positive("h", h)
    )
    with np.errstate(over="ignore"):
        a = alpha_ * h_
    m2 = mu_**2
    rows = [
        [(1.0 - a) ** 2, m2, 2.0 * (1.0 - a) * mu_],
        [a**2, m2, -2.0 * a * mu_],
        [-(1.0 - a) * a, m2, (1.0 - 2.0 * a) * mu_],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def second_moment_transient(
    alpha: ArrayLike,
    mu: ArrayLike,
    h: ArrayLike,
    c: ArrayLike,
    steps: int,
    p0: ArrayLike = (1.0, 0.0, 0.0),
) -> FloatArray:
    """Second moments ``p_t = (E x_t^2, E v_t^2, E x_t v_t)`` for ``t = 0..steps``.

    Iterates ``p_{t+1} = T p_t + alpha^2 c (1, 1, 1)`` exactly. The default ``p0 = (1, 0, 0)`` is a
    start at rest from ``x_0 = 1`` (heavy ball's zero-velocity start); scale by ``x_0^2`` as needed.

    Args:
        alpha, mu, h: as in :func:`second_moment_operator` (broadcast together).
        c: noise variance ``>= 0`` (broadcasts with them).
        steps: number of steps, integer ``>= 0``.
        p0: initial moments, shape ``(..., 3)``; ``E x_0^2, E v_0^2 >= 0``.

    Returns:
        Array of shape ``(..., steps + 1, 3)``.

    Example:
        >>> second_moment_transient(0.5, 0.0, 1.0, 0.0, 2)[:, 0].tolist()
        [1.0, 0.25, 0.0625]
    """
    n = int(integer("steps", steps, 0))
    T = second_moment_operator(alpha, mu, h)
    c_ = nonnegative("c", c)
    p = as_finite("p0", p0)
    if p.shape[-1:] != (3,):
        raise ValueError("p0 must have last dimension 3: (E x^2, E v^2, E x v)")
    nonnegative("p0 (E x^2, E v^2)", p[..., :2])
    alpha_, c_ = broadcast(("alpha", "c"), positive("alpha", alpha), c_)
    forcing = (alpha_**2 * c_)[..., None] * np.ones(3)
    try:
        shape = np.broadcast_shapes(T.shape[:-2], forcing.shape[:-1], p.shape[:-1])
    except ValueError as err:
        raise ValueError(
            "alpha, mu, h, c and p0[..., :] must have broadcastable shapes "
            f"(got {T.shape[:-2]}, {forcing.shape[:-1]}, {p.shape[:-1]} for (alpha, mu, h), c, p0)"
        ) from err
    T = np.broadcast_to(T, (*shape, 3, 3))
    forcing = np.broadcast_to(forcing, (*shape, 3))
    out = np.empty((*shape, n + 1, 3))
    out[..., 0, :] = np.broadcast_to(p, (*shape, 3))
    for t in range(n):
        out[..., t + 1, :] = np.einsum("...ij,...j->...i", T, out[..., t, :]) + forcing
    return out


def nqm_spectrum(
    dim: int, p: float = 1.0, batch_size: ArrayLike = 1
) -> tuple[FloatArray, FloatArray]:
    """Noisy quadratic model: curvatures ``h_i = i^-p`` and noise ``c_i = h_i / B``, ``i = 1..dim``.

    Zhang et al. (2019), Sec. 3: gradient covariance equal to the Hessian per example, divided by
    the batch size ``B``.

    Args:
        dim: number of directions, integer ``>= 1``.
        p: decay exponent ``> 0``.
        batch_size: ``B > 0``.

    Example:
        >>> h, c = nqm_spectrum(3, 1.0, 2)
        >>> c.tolist()
        [0.5, 0.25, 0.16666666666666666]
    """
    d = int(integer("dim", dim, 1))
    p_ = float(positive("p", p))
    b = float(positive("batch_size", batch_size))
    h = np.arange(1, d + 1, dtype=np.float64) ** -p_
    return h, h / b


def nqm_floor(alpha: ArrayLike, mu: ArrayLike, h: ArrayLike, c: ArrayLike) -> FloatArray:
    """Total stationary loss ``sum_i (1+mu) alpha c_i / (2 (1-mu) (2(1+mu) - alpha h_i))``.

    Args:
        alpha: learning rate(s) ``> 0``, any shape ``S``.
        mu: momentum(s) in ``(-1, 1)``, broadcasting with ``alpha``.
        h: 1-D spectrum of curvatures ``> 0`` (``alpha * max(h) < 2 (1 + mu)``).
        c: 1-D noise variances ``>= 0``, same length as ``h``.

    Returns:
        Array of shape ``broadcast(alpha, mu).shape``.

    Example:
        >>> h, c = nqm_spectrum(10)
        >>> round(float(nqm_floor(0.5, 0.5, h, c)), 6)
        0.806623
    """
    h_ = np.atleast_1d(positive("h", h))
    c_ = np.atleast_1d(nonnegative("c", c))
    if h_.ndim != 1 or h_.shape != c_.shape:
        raise ValueError(
            f"h and c must be 1-D arrays of the same length (got shapes {h_.shape}, {c_.shape})"
        )
    a_, mu_ = broadcast(("alpha", "mu"), positive("alpha", alpha), momentum("mu", mu))
    return stationary_loss(a_[..., None], mu_[..., None], h_, c_).sum(axis=-1)
