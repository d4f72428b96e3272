"""Finite sums that interpolate: every per-sample loss reaches ``f*`` at the same point.

These are the worlds of MoMo's guarantees (Schaipp et al., arXiv 2305.07583): with the lower bound
``lb = f*`` and convex per-sample losses minimised by a common ``x*``, the distance to ``x*`` never
increases. Minibatches are drawn uniformly with replacement from a key.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from simulators.objectives.base import (
    Objective,
    as_vector,
    check_positive_int,
    check_real,
    info_pairs,
    minibatch_mean,
)


def _finite_sum(
    name: str,
    sample_loss_fn: Any,
    params: dict[str, Any],
    *,
    n: int,
    dim: int,
    batch_size: int,
    x_star: np.ndarray,
    x0: np.ndarray,
    info: dict[str, Any],
) -> Objective:
    def loss_fn(p: dict[str, Any], x: jax.Array, key: jax.Array | None) -> jax.Array:
        if key is None:
            return jnp.mean(jax.vmap(lambda i: sample_loss_fn(p, x, i))(jnp.arange(n)))
        return minibatch_mean(sample_loss_fn, p, x, key, n, batch_size)

    return Objective(
        x_star=x_star,
        x0=x0,
        params=params,
        name=name,
        dim=dim,
        f_star=0.0,
        loss_fn=loss_fn,
        noisy=True,
        sample_loss_fn=sample_loss_fn,
        n_samples=n,
        info=info_pairs(batch_size=batch_size, **info),
    )


def interpolating_least_squares(
    n: int, dim: int, seed: int = 0, *, batch_size: int = 1, x0: ArrayLike | None = None
) -> Objective:
    """Consistent least squares ``f(x) = (1/n) sum_i 1/2 (a_i^T x - b_i)^2`` with ``b = A x*``.

    ``A`` has i.i.d. standard normal entries and ``x*`` is standard normal, both from
    ``np.random.default_rng(seed)``; ``n >= dim`` makes ``A`` full column rank (almost surely), so
    ``x*`` is the unique minimiser and every per-sample loss is convex and zero there
    (interpolation, ``f* = 0``). Metadata: ``smoothness`` (largest eigenvalue of ``A^T A/n``),
    ``strong_convexity`` (smallest), ``max_sample_smoothness`` (``max_i ||a_i||^2``).

    Args:
        n: number of samples, >= dim.
        dim: number of coordinates, >= 1.
        seed: seed of the data.
        batch_size: minibatch size used when a key is given, >= 1.
        x0: start, default the origin.

    Example:
        >>> obj = interpolating_least_squares(20, 5)
        >>> float(obj.sample_loss(obj.x_star, 3)) < 1e-10
        True
    """
    dim = check_positive_int("dim", dim)
    n = check_positive_int("n", n, minimum=dim)
    seed = check_positive_int("seed", seed, minimum=0)
    batch_size = check_positive_int("batch_size", batch_size)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, dim))
    x_star = rng.standard_normal(dim)
    b = a @ x_star
    start = np.zeros(dim) if x0 is None else as_vector("x0", x0, dim)
    eig = np.linalg.eigvalsh(a.T @ a / n)

    def sample_loss(p: dict[str, Any], x: jax.Array, i: jax.Array) -> jax.Array:
        r = p["a"][i] @ x - p["b"][i]
        return 0.5 * r * r

    return _finite_sum(
        "interpolating_least_squares",
        sample_loss,
        {"a": a, "b": b},
        n=n,
        dim=dim,
        batch_size=batch_size,
        x_star=x_star,
        x0=start,
        info={
            "smoothness": float(eig[-1]),
            "strong_convexity": float(eig[0]),
            "max_sample_smoothness": float(np.max(np.sum(a * a, axis=1))),
        },
    )


def separable_logistic(
    n: int,
    dim: int,
    seed: int = 0,
    *,
    batch_size: int = 1,
    margin: float = 0.5,
    x0: ArrayLike | None = None,
) -> Objective:
    """Linearly separable logistic regression ``f(x) = (1/n) sum_i log(1 + exp(-y_i a_i^T x))``.

    A unit direction ``w`` and Gaussian features are drawn from ``np.random.default_rng(seed)``;
    labels are ``y_i = sign(a_i^T w)`` and each feature is pushed by ``margin`` along ``y_i w``, so
    every sample has margin ``y_i a_i^T w >= margin``. The data interpolate: ``f(t w) -> 0`` as
    ``t -> inf`` for every sample, so ``f* = 0`` is the exact infimum (the right ``lb`` for MoMo)
    but it is not attained. ``x_star`` is set to the separating direction ``w`` (metadata
    ``minimiser_attained = False``): distances to it are not distances to a minimiser.

    Args:
        n: number of samples, >= 1.
        dim: number of coordinates, >= 1.
        seed: seed of the data.
        batch_size: minibatch size used when a key is given, >= 1.
        margin: margin of separation along ``w``, > 0.
        x0: start, default the origin.

    Example:
        >>> obj = separable_logistic(10, 3)
        >>> round(float(obj.loss(obj.x0)), 4)  # log 2 at the origin
        0.6931
    """
    n = check_positive_int("n", n)
    dim = check_positive_int("dim", dim)
    seed = check_positive_int("seed", seed, minimum=0)
    batch_size = check_positive_int("batch_size", batch_size)
    margin = check_real("margin", margin, 0.0, np.inf, lo_open=True)
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(dim)
    w /= np.linalg.norm(w)
    a = rng.standard_normal((n, dim))
    y = np.where(a @ w >= 0, 1.0, -1.0)
    a = a + margin * y[:, None] * w[None, :]
    start = np.zeros(dim) if x0 is None else as_vector("x0", x0, dim)

    def sample_loss(p: dict[str, Any], x: jax.Array, i: jax.Array) -> jax.Array:
        return jax.nn.softplus(-p["y"][i] * (p["a"][i] @ x))

    return _finite_sum(
        "separable_logistic",
        sample_loss,
        {"a": a, "y": y},
        n=n,
        dim=dim,
        batch_size=batch_size,
        x_star=w,
        x0=start,
        info={
            "minimiser_attained": False,
            "margin": float(np.min(y * (a @ w))),
            "smoothness": float(np.linalg.eigvalsh(a.T @ a / n)[-1] / 4.0),
        },
    )
