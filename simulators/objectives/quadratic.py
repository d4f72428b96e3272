"""Quadratics with a prescribed spectrum and the noisy quadratic model.

A quadratic ``f(x) = 1/2 (x - x*)^T Q diag(h) Q^T (x - x*)`` is the world in which the heavy-ball
theory is exact: every eigen-direction evolves by its own 2x2 recursion (Polyak 1964; Goh, "Why
Momentum Really Works", Distill 2017).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from simulators.objectives.base import (
    NOISE_KINDS,
    NoiseKind,
    Objective,
    as_vector,
    check_noise,
    check_positive_int,
    check_real,
    info_pairs,
    with_gradient_noise,
)


def random_rotation(dim: int, seed: int) -> np.ndarray:
    """Haar-distributed orthogonal matrix from ``np.random.default_rng(seed)`` (signed QR)."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


def _build(
    h: np.ndarray,
    *,
    rotate: bool,
    seed: int,
    noise_var: np.ndarray,
    noise: str,
    x_star: np.ndarray,
    x0: np.ndarray | None,
    name: str,
    extra: dict[str, Any],
) -> Objective:
    dim = h.size
    q = random_rotation(dim, seed) if rotate else None
    noisy = bool(np.any(noise_var > 0))
    if x0 is None:
        direction = np.ones(dim) / np.sqrt(dim)
        x0 = x_star + (q @ direction if q is not None else direction)
    params: dict[str, Any] = {"h": h, "noise_std": np.sqrt(noise_var)}
    if q is not None:
        params["q"] = q

    def loss_fn(p: dict[str, Any], x: jax.Array, key: jax.Array | None) -> jax.Array:
        # work in the eigen-basis: y = Q^T (x - x*)
        e = x - p["x_star"]
        y = p["q"].T @ e if "q" in p else e
        value = 0.5 * jnp.sum(p["h"] * y * y)
        if key is None:
            return value
        # gradient h*y + noise_std*xi in the eigen-basis: variance noise_std^2 per direction
        return with_gradient_noise(value, y, p["noise_std"], noise, key)

    params["x_star"] = x_star
    return Objective(
        x_star=x_star,
        x0=x0,
        params=params,
        name=name,
        dim=dim,
        f_star=0.0,
        loss_fn=loss_fn,
        noisy=noisy,
        info=info_pairs(
            h_min=float(h.min()),
            h_max=float(h.max()),
            kappa=float(h.max() / h.min()),
            rotated=rotate,
            noise=noise,
            **extra,
        ),
    )


def quadratic(
    spectrum: ArrayLike,
    *,
    rotate: bool = False,
    seed: int = 0,
    noise_std: ArrayLike = 0.0,
    noise: NoiseKind = "gaussian",
    x0: ArrayLike | None = None,
    x_star: ArrayLike | None = None,
) -> Objective:
    """Quadratic ``f(x) = 1/2 (x - x*)^T Q diag(h) Q^T (x - x*)`` with ``f* = 0``.

    With a key, the gradient is ``H (x - x*) + Q (noise_std * xi)`` with i.i.d. zero-mean,
    unit-variance ``xi`` (the stochastic heavy-ball model of the noise-floor analysis: per
    eigen-direction ``i`` the gradient noise has variance ``c_i = noise_std_i^2``).

    Args:
        spectrum: Hessian eigenvalues ``h``, all > 0.
        rotate: rotate the eigen-basis by a random orthogonal ``Q`` drawn from ``seed``.
        seed: seed of the rotation.
        noise_std: gradient-noise standard deviation per eigen-direction (scalar or ``(dim,)``).
        noise: distribution of ``xi``: "gaussian", "rademacher" or "uniform".
        x0: start; default ``x* + Q 1/sqrt(dim)`` (unit distance, equal weight on every direction).
        x_star: minimiser; default the origin.

    Example:
        >>> obj = quadratic([1.0, 10.0])
        >>> float(obj.loss(obj.x_star)), obj.meta("kappa")
        (0.0, 10.0)
    """
    h = as_vector("spectrum", spectrum)
    if not np.all(h > 0):
        raise ValueError("spectrum must be positive: every eigenvalue in (0, inf)")
    dim = h.size
    seed = check_positive_int("seed", seed, minimum=0)
    std = check_noise(noise_std, noise, dim)
    xs = np.zeros(dim) if x_star is None else as_vector("x_star", x_star, dim)
    start = None if x0 is None else as_vector("x0", x0, dim)
    return _build(
        h,
        rotate=bool(rotate),
        seed=seed,
        noise_var=std**2,
        noise=noise,
        x_star=xs,
        x0=start,
        name="quadratic",
        extra={},
    )


def noisy_quadratic_model(
    dim: int,
    p: float = 1.0,
    batch_size: int = 1,
    noise: NoiseKind = "gaussian",
    seed: int = 0,
    *,
    rotate: bool = False,
    x0: ArrayLike | None = None,
) -> Objective:
    """Noisy quadratic model (Zhang et al. 2019, arXiv 1907.04164, Sec. 3).

    Curvatures ``h_i = i^-p`` (``i = 1..dim``) and per-example gradient covariance equal to the
    Hessian, so a batch of ``B`` gives gradient-noise variance ``c_i = h_i / B`` per direction.

    Args:
        dim: number of directions, >= 1.
        p: decay exponent of the spectrum, > 0.
        batch_size: ``B``, >= 1.
        noise: distribution of the unit noise ("gaussian", "rademacher", "uniform").
        seed: seed of the optional rotation.
        rotate: rotate the eigen-basis randomly.
        x0: start; default as in :func:`quadratic`.

    Example:
        >>> obj = noisy_quadratic_model(4, batch_size=2)
        >>> [round(float(c), 3) for c in obj.params["noise_std"] ** 2]
        [0.5, 0.25, 0.167, 0.125]
    """
    dim = check_positive_int("dim", dim)
    p = check_real("p", p, 0.0, np.inf, lo_open=True)
    batch_size = check_positive_int("batch_size", batch_size)
    seed = check_positive_int("seed", seed, minimum=0)
    if noise not in NOISE_KINDS:
        raise ValueError(f"noise must be one of {NOISE_KINDS} (got {noise!r})")
    h = np.arange(1, dim + 1, dtype=np.float64) ** (-p)
    start = None if x0 is None else as_vector("x0", x0, dim)
    return _build(
        h,
        rotate=bool(rotate),
        seed=seed,
        noise_var=h / batch_size,
        noise=noise,
        x_star=np.zeros(dim),
        x0=start,
        name="noisy_quadratic_model",
        extra={"p": p, "batch_size": batch_size},
    )
