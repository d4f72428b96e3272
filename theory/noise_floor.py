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

Range: products of the inputs are formed from binary mantissas and exponents, so a result is
``inf`` (or 0) only when it lies itself beyond the float64 range; the transient of an unstable
setting grows to ``+inf`` (``E x v`` to ``+-inf`` with its sign), never to NaN, and nothing here
emits a floating-point warning for accepted input.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from theory._validate import (
    FloatArray,
    as_finite,
    broadcast,
    grid_size,
    momentum,
    nonnegative,
    positive,
    scalar,
)

_MAX_STEPS = 10**6  # second_moment_transient: at most 24 MB of output per broadcast element
_MAX_DIM = 10**7  # nqm_spectrum: at most 80 MB per array
_EXP_CLIP = 1 << 20  # binary exponents are clipped here: far beyond the float64 range

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


def _scaled(*factors: FloatArray) -> tuple[FloatArray, np.ndarray]:
    """Product of non-negative factors as ``(m, e)``, ``m`` in ``[1/2, 1)`` or 0: no overflow."""
    m = np.ones(np.broadcast_shapes(*(np.shape(f) for f in factors)))
    e = np.zeros(m.shape, dtype=np.int64)
    for f in factors:
        mf, ef = np.frexp(f)
        m, em = np.frexp(m * mf)
        e = e + ef + em
    return m, e


def _ldexp(m: FloatArray, e: np.ndarray) -> FloatArray:
    """``m 2^e`` rounded once; ``+-inf`` or 0 beyond the float64 range (no warning)."""
    e = np.clip(e, -4000, 4000)  # far beyond both ends: same result, int32-safe
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(m, e.astype(np.int32))


def _floor_parts(a_: FloatArray, mu_: FloatArray, h_: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(1 + mu) / (1 - mu)`` and ``g = 2 (1 + mu) - alpha h`` in ``(0, 4)`` (a stable point)."""
    with np.errstate(under="ignore"):
        return (1.0 + mu_) / (1.0 - mu_), 2.0 * (1.0 + mu_) - a_ * h_


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
    ratio, g = _floor_parts(a_, mu_, h_)
    m, e = _scaled(ratio, a_, c_, 1.0 / g)
    mh, eh = np.frexp(h_)
    return _ldexp(m / mh, e - eh)


def stationary_loss(alpha: ArrayLike, mu: ArrayLike, h: ArrayLike, c: ArrayLike) -> FloatArray:
    """Stationary expected loss ``(h/2) E x^2 = (1+mu) alpha c / (2 (1-mu) (2(1+mu) - alpha h))``.

    Evaluated in the right-hand form (``h`` cancels), so a variance beyond float64 does not turn
    the loss into ``0 * inf``.

    Example:
        >>> round(float(stationary_loss(0.1, 0.0, 1.0, 1.0)), 12)
        0.026315789474
    """
    a_, mu_, h_ = _stable(alpha, mu, h)
    c_ = nonnegative("c", c)
    a_, mu_, h_, c_ = broadcast(("alpha", "mu", "h", "c"), a_, mu_, h_, c_)
    ratio, g = _floor_parts(a_, mu_, h_)
    m, e = _scaled(ratio, a_, c_, 0.5 / g)
    return _ldexp(m, e)


def second_moment_operator(alpha: ArrayLike, mu: ArrayLike, h: ArrayLike) -> FloatArray:
    """The ``3 x 3`` matrix ``T`` of the second-moment recursion (module docstring).

    Acts on ``p = (E x^2, E v^2, E x v)``; no stability requirement (any real ``mu``,
    ``alpha, h > 0``). Entries beyond the float64 range are ``+-inf``.

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
    return _operator(np.ones_like(a), a, mu_)


def _operator(one: FloatArray, a: FloatArray, mu: FloatArray) -> FloatArray:
    """``T`` from ``(1, a, mu)`` scaled alike (every entry is homogeneous of degree 2 in them).

    Entries beyond float64 are ``+-inf``; a ``mu`` column is exactly 0 where ``mu = 0``, also
    when ``a`` is ``inf`` (no ``0 * inf``).
    """
    with np.errstate(over="ignore", under="ignore"):
        m2 = mu**2
        u = one - a
        no_mu = mu == 0.0
        mu_s = np.where(no_mu, 1.0, mu)  # the mu column is set to 0 there below
        rows = [
            [u**2, m2, np.where(no_mu, 0.0, 2.0 * u * mu_s)],
            [a**2, m2, np.where(no_mu, 0.0, -2.0 * a * mu_s)],
            [-u * a, m2, np.where(no_mu, 0.0, (one - 2.0 * a) * mu_s)],
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

    The iterate is carried as a vector of largest entry in ``[1/2, 1)`` times a power of two, and
    ``T`` is scaled by a power of two when ``alpha h`` or ``|mu|`` exceeds ``2^500``; scaling by
    powers of two is exact, so the values are those of the plain recursion wherever it stays in
    range, and an unstable setting grows to ``+inf`` (``E x v`` to ``+-inf``) instead of NaN.

    Args:
        alpha, mu, h: as in :func:`second_moment_operator` (broadcast together).
        c: noise variance ``>= 0`` (broadcasts with them).
        steps: number of steps, a single integer in ``[0, 10^6]``.
        p0: initial moments, shape ``(..., 3)``; ``E x_0^2, E v_0^2 >= 0``.

    Returns:
        Array of shape ``(..., steps + 1, 3)``.

    Example:
        >>> second_moment_transient(0.5, 0.0, 1.0, 0.0, 2)[:, 0].tolist()
        [1.0, 0.25, 0.0625]
    """
    n = grid_size("steps", steps, 0, _MAX_STEPS)
    alpha_, mu_, h_ = broadcast(
        ("alpha", "mu", "h"), positive("alpha", alpha), as_finite("mu", mu), positive("h", h)
    )
    c_ = nonnegative("c", c)
    p = as_finite("p0", p0)
    if p.shape[-1:] != (3,):
        raise ValueError("p0 must have last dimension 3: (E x^2, E v^2, E x v)")
    nonnegative("p0 (E x^2, E v^2)", p[..., :2])
    alpha_c, c_ = broadcast(("alpha", "c"), positive("alpha", alpha), c_)
    try:
        shape = np.broadcast_shapes(alpha_.shape, c_.shape, p.shape[:-1])
    except ValueError as err:
        raise ValueError(
            "alpha, mu, h, c and p0[..., :] must have broadcastable shapes "
            f"(got {alpha_.shape}, {c_.shape}, {p.shape[:-1]} for (alpha, mu, h), c, p0)"
        ) from err
    # T = T' 2^(2f): (1, a, mu) scaled by 2^-f so that T' is finite (a = alpha h, no overflow)
    ma, ea = _scaled(alpha_, h_)
    mm, em = np.frexp(mu_)
    f = np.maximum(np.maximum(ea, np.where(mu_ == 0.0, 0, em)) - 500, 0)
    T = _operator(_ldexp(np.ones_like(ma), -f), _ldexp(ma, ea - f), _ldexp(mm, em - f))
    T = np.broadcast_to(T, (*shape, 3, 3))
    shift = np.broadcast_to(2 * f, shape)
    mf, ef = _scaled(alpha_c, alpha_c, c_)  # forcing alpha^2 c = mf 2^ef
    mf, ef = np.broadcast_to(mf, shape), np.broadcast_to(ef, shape)
    # p_t = q_t 2^(E_t), q_t of largest entry in [1/2, 1) (or 0)
    q = np.broadcast_to(p, (*shape, 3)).astype(np.float64)
    big = np.max(np.abs(q), axis=-1)
    _, ex = np.frexp(big)
    q = _ldexp(q, -ex[..., None])
    ex = ex.astype(np.int64)
    out = np.empty((*shape, n + 1, 3))
    out[..., 0, :] = np.broadcast_to(p, (*shape, 3))
    for t in range(n):
        ex = ex + shift  # T' q carries 2^(E + 2f)
        with np.errstate(over="ignore", under="ignore"):
            y = np.einsum("...ij,...j->...i", T, q)  # |T'| < 2^1021 and |q| < 1: finite
        y_big = np.max(np.abs(y), axis=-1)
        _, ey = np.frexp(y_big)
        top = np.where(y_big > 0.0, ex + ey, ef)  # common exponent of T' q 2^E and the forcing
        top = np.where(mf > 0.0, np.maximum(top, ef), top)
        q = _ldexp(y, (ex - top)[..., None]) + _ldexp(mf, ef - top)[..., None]
        _, e_new = np.frexp(np.max(np.abs(q), axis=-1))
        q = _ldexp(q, -e_new[..., None])
        ex = np.clip(top + e_new, -_EXP_CLIP, _EXP_CLIP)
        out[..., t + 1, :] = _ldexp(q, ex[..., None])
    return out


def nqm_spectrum(
    dim: int, p: float = 1.0, batch_size: ArrayLike = 1
) -> tuple[FloatArray, FloatArray]:
    """Noisy quadratic model: curvatures ``h_i = i^-p`` and noise ``c_i = h_i / B``, ``i = 1..dim``.

    Zhang et al. (2019), Sec. 3: gradient covariance equal to the Hessian per example, divided by
    the batch size ``B``.

    Args:
        dim: number of directions, a single integer in ``[1, 10^7]``.
        p: decay exponent ``> 0`` (a single number).
        batch_size: ``B > 0`` (a single number).

    Example:
        >>> h, c = nqm_spectrum(3, 1.0, 2)
        >>> c.tolist()
        [0.5, 0.25, 0.16666666666666666]
    """
    d = grid_size("dim", dim, 1, _MAX_DIM)
    p_ = scalar("p", positive("p", p))
    b = scalar("batch_size", positive("batch_size", batch_size))
    with np.errstate(under="ignore", over="ignore"):  # i^-p below 2^-1074 is 0; c beyond is inf
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
    losses = stationary_loss(a_[..., None], mu_[..., None], h_, c_)
    with np.errstate(over="ignore"):  # a sum beyond float64 is inf
        return losses.sum(axis=-1)
