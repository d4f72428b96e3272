"""One-dimensional toys with a closed-form generalised-curvature range, their separable
d-dimensional versions, the Lessard-Recht-Packard counterexample and Rosenbrock.

The generalised curvature of a 1-D function with minimiser ``x*`` is ``h(x) = f'(x) / (x - x*)``
(heavy-ball reference, "Beyond quadratics"; YellowFin, arXiv 1706.03471, Sec. 2.2). Heavy ball
is then ``e_{t+1} = A_t e_t`` with ``A_t`` built from ``h(x_t)``; when ``alpha h(x_t)`` stays in
the robust interval every ``A_t`` has spectral radius ``sqrt(mu)``.

Both toys below are self-similar: their curvature keeps changing at every scale down to ``x*``,
so the asymptotic rate is not simply the rate of one limiting quadratic.

Every constructor takes the gradient-noise arguments of :func:`~simulators.objectives.quadratic`:
with a key, the gradient is ``f'(x) + noise_std * xi`` with i.i.d. zero-mean, unit-variance ``xi``
of kind ``noise`` ("gaussian", "rademacher", "uniform") per coordinate, i.e. an unbiased
stochastic gradient of variance ``noise_std^2`` per coordinate (the minibatch model of the
noise-floor analysis). ``noise_std = 0`` (the default) leaves the objective noiseless.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from simulators.objectives.base import (
    NoiseKind,
    Objective,
    as_vector,
    check_noise,
    check_positive_int,
    check_real,
    info_pairs,
    with_gradient_noise,
)


def _safe_abs(e: jax.Array) -> jax.Array:
    """``|e|`` with 0 replaced by 1 (to keep logarithms and their gradients finite at x*)."""
    return jnp.where(e == 0, jnp.ones_like(e), jnp.abs(e))


def _one_d(
    name: str,
    loss_1d: Any,
    x_star: float,
    x0: float,
    h_min: float,
    h_max: float,
    noise_std: float,
    noise: str,
    **extra: Any,
) -> Objective:
    std = check_noise(noise_std, noise, 1)

    def loss_fn(p: dict[str, Any], x: jax.Array, key: jax.Array | None) -> jax.Array:
        e = x - p["x_star"]
        value = loss_1d(e[0])
        if key is None:
            return value
        return with_gradient_noise(value, e, p["noise_std"], noise, key)

    xs = np.array([x_star])
    return Objective(
        x_star=xs,
        x0=np.array([x0]),
        params={"x_star": xs, "noise_std": std},
        name=name,
        dim=1,
        f_star=0.0,
        loss_fn=loss_fn,
        noisy=bool(std[0] > 0),
        info=info_pairs(h_min=h_min, h_max=h_max, noise=noise, **extra),
    )


def smooth_nonconvex_1d(
    h_min: float = 1.0,
    h_max: float = 9.0,
    omega: float = 1.0,
    scale: float = 1e-6,
    *,
    x_star: float = 0.0,
    x0: float | None = None,
    noise_std: float = 0.0,
    noise: NoiseKind = "gaussian",
) -> Objective:
    """Smooth non-convex 1-D function whose generalised curvature sweeps ``[h_min, h_max]``.

    With ``e = x - x*``, ``a = (h_max + h_min)/2``, ``b = (h_max - h_min)/2``,
    ``u = asinh(e / scale)`` the gradient is ``f'(x) = e (a + b cos(omega u))``, so the generalised
    curvature is ``h(x) = a + b cos(omega asinh((x - x*)/scale))``: its range over ``x != x*`` is
    exactly ``[h_min, h_max]`` (``h -> h_max`` at ``x*``, ``h = h_min`` at
    ``e = scale sinh(pi/omega)``), and for ``|e| >> scale`` it oscillates log-periodically, so it
    keeps changing at every scale. Integrating (substitute ``e = scale sinh u``):

    ``f(x) = a e^2/2 + b scale^2 [cos(omega u)(1 + 2 e^2/scale^2)
    + omega sin(omega u)(e/scale) sqrt(1 + e^2/scale^2) - 1] / (4 + omega^2)``, ``f* = 0``.

    ``f''(x) = a + b [cos(omega u) - omega sin(omega u) e/sqrt(e^2 + scale^2)]`` is bounded by
    ``a + b sqrt(1 + omega^2)`` (globally smooth) and negative somewhere, so ``f`` is non-convex,
    when ``b sqrt(1 + omega^2) > a`` (the defaults: ``4 sqrt(2) > 5``).

    Args:
        h_min: smallest generalised curvature, > 0.
        h_max: largest generalised curvature, >= ``h_min``.
        omega: angular frequency of the oscillation in ``asinh(e/scale)``, > 0.
        scale: length below which ``h`` settles to ``h_max``, > 0.
        x_star: minimiser.
        x0: start, default ``x* + 10``.
        noise_std: gradient-noise standard deviation (with a key), >= 0.
        noise: distribution of the unit noise ("gaussian", "rademacher", "uniform").

    Example:
        >>> obj = smooth_nonconvex_1d()
        >>> obj.curvature_range
        (1.0, 9.0)
    """
    h_min = check_real("h_min", h_min, 0.0, math.inf, lo_open=True)
    h_max = check_real("h_max", h_max, h_min, math.inf)
    omega = check_real("omega", omega, 0.0, math.inf, lo_open=True)
    scale = check_real("scale", scale, 0.0, math.inf, lo_open=True)
    x_star = check_real("x_star", x_star)
    x0 = x_star + 10.0 if x0 is None else check_real("x0", x0)
    a, b = 0.5 * (h_max + h_min), 0.5 * (h_max - h_min)

    def loss_1d(e: jax.Array) -> jax.Array:
        z = e / scale
        u = jnp.arcsinh(z)
        bracket = (
            jnp.cos(omega * u) * (1.0 + 2.0 * z * z)
            + omega * jnp.sin(omega * u) * z * jnp.sqrt(1.0 + z * z)
            - 1.0
        )
        return 0.5 * a * e * e + b * scale**2 * bracket / (4.0 + omega**2)

    return _one_d(
        "smooth_nonconvex_1d",
        loss_1d,
        x_star,
        x0,
        h_min,
        h_max,
        noise_std,
        noise,
        omega=omega,
        scale=scale,
        smoothness=a + b * math.sqrt(1.0 + omega**2),
    )


def stitched_nonconvex_1d(
    h_min: float = 1.0,
    h_max: float = 4.0,
    ratio: float = 4.0,
    *,
    x_star: float = 0.0,
    x0: float | None = None,
    noise_std: float = 0.0,
    noise: NoiseKind = "gaussian",
) -> Objective:
    """Piecewise-quadratic 1-D function stitched on geometric shells (``C^1``, curvature jumps).

    With ``e = x - x*``, the gradient is odd and self-similar, ``f'(ratio e) = ratio f'(e)``. On the
    shell ``1 <= |e| <= ratio`` (and its copies scaled by ``ratio^k``) it is piecewise linear with
    one kink at ``m = sqrt(ratio)``: ``f'(1) = h_max``, ``f'(m) = m h_min``, ``f'(ratio) = ratio
    h_max``, i.e. slopes ``s1 = (m h_min - h_max)/(m - 1)`` and ``s2 = (ratio h_max - m h_min)/
    (ratio - m)``. On a linear piece ``h(e) = f'(e)/e = s + c/e`` is monotone, so the generalised
    curvature range is exactly ``[h_min, h_max]`` (attained at the kinks). ``s1 < 0`` (non-convex)
    when ``sqrt(ratio) < h_max/h_min``; the second derivative jumps between ``s1`` and ``s2`` at
    every kink, so this is the abrupt counterpart of :func:`smooth_nonconvex_1d`.

    The loss follows from self-similarity: ``f(x) = ratio^(2k) F(z)`` with ``k = floor(log_ratio
    |e|)``, ``z = |e|/ratio^k`` and ``F(z) = I/(ratio^2 - 1) + int_1^z f'``, ``I = int_1^ratio f'``.

    Args:
        h_min: smallest generalised curvature, > 0.
        h_max: largest generalised curvature, > ``h_min``.
        ratio: shell ratio, > 1.
        x_star: minimiser.
        x0: start, default ``x* + 10``.
        noise_std: gradient-noise standard deviation (with a key), >= 0.
        noise: distribution of the unit noise ("gaussian", "rademacher", "uniform").

    Example:
        >>> obj = stitched_nonconvex_1d()
        >>> obj.meta("slopes")
        (-2.0, 7.0)
    """
    h_min = check_real("h_min", h_min, 0.0, math.inf, lo_open=True)
    h_max = check_real("h_max", h_max, h_min, math.inf, lo_open=True)
    ratio = check_real("ratio", ratio, 1.0, math.inf, lo_open=True)
    x_star = check_real("x_star", x_star)
    x0 = x_star + 10.0 if x0 is None else check_real("x0", x0)
    m = math.sqrt(ratio)
    s1 = (m * h_min - h_max) / (m - 1.0)
    s2 = (ratio * h_max - m * h_min) / (ratio - m)
    fm = m * h_min
    # integrals of f' over [1, m] and [m, ratio] (trapezoids: f' is linear there)
    i1 = 0.5 * (h_max + fm) * (m - 1.0)
    i2 = 0.5 * (fm + ratio * h_max) * (ratio - m)
    f1 = (i1 + i2) / (ratio**2 - 1.0)
    log_r = math.log(ratio)

    def shell(z: jax.Array) -> jax.Array:
        lower = f1 + h_max * (z - 1.0) + 0.5 * s1 * (z - 1.0) ** 2
        upper = f1 + i1 + fm * (z - m) + 0.5 * s2 * (z - m) ** 2
        return jnp.where(z <= m, lower, upper)

    def loss_1d(e: jax.Array) -> jax.Array:
        r = _safe_abs(e)
        k = jax.lax.stop_gradient(jnp.floor(jnp.log(r) / log_r))
        base = jnp.exp(k * log_r)
        # z lies in [1, ratio] up to rounding; no clip, whose derivative would vanish or halve on
        # the shell boundaries (the shell polynomial extends smoothly by a few ulps instead).
        z = r / base
        value = base * base * shell(z)
        return jnp.where(e == 0, jnp.zeros_like(value), value)

    return _one_d(
        "stitched_nonconvex_1d",
        loss_1d,
        x_star,
        x0,
        h_min,
        h_max,
        noise_std,
        noise,
        ratio=ratio,
        slopes=(s1, s2),
        smoothness=max(abs(s1), abs(s2)),
    )


def separable(
    objective_1d: Objective,
    dim: int,
    *,
    x0: ArrayLike | None = None,
    noise_std: ArrayLike = 0.0,
    noise: NoiseKind = "gaussian",
) -> Objective:
    """Separable sum ``F(x) = sum_i f(x_i)``: minimiser ``(x*, ..., x*)``, ``F* = dim f*``.

    The generalised curvature of every coordinate is that of ``f``, so the curvature range is the
    same; heavy ball acts coordinate-wise. With a key the gradient gets independent noise of
    standard deviation ``noise_std_i`` on coordinate ``i``.

    Args:
        objective_1d: a noiseless objective with ``dim == 1`` (give the noise to ``separable``).
        dim: number of coordinates, >= 1.
        x0: start, default ``x*_1 + (x0_1 - x*_1) * linspace(1, 0.1, dim)`` (distinct scales).
        noise_std: gradient-noise standard deviation per coordinate (scalar or ``(dim,)``), >= 0.
        noise: distribution of the unit noise ("gaussian", "rademacher", "uniform").

    Example:
        >>> from simulators.objectives import smooth_nonconvex_1d
        >>> separable(smooth_nonconvex_1d(), 3).dim
        3
    """
    if not isinstance(objective_1d, Objective) or objective_1d.dim != 1:
        raise ValueError("objective_1d must be an Objective with dim == 1")
    if objective_1d.noisy:
        raise ValueError("objective_1d must be noiseless (pass noise_std to separable instead)")
    dim = check_positive_int("dim", dim)
    std = check_noise(noise_std, noise, dim)
    xs1 = float(np.asarray(objective_1d.x_star)[0])
    x01 = float(np.asarray(objective_1d.x0)[0])
    xs = np.full(dim, xs1)
    start = (
        xs1 + (x01 - xs1) * np.linspace(1.0, 0.1, dim) if x0 is None else as_vector("x0", x0, dim)
    )
    inner = objective_1d

    def loss_fn(p: dict[str, Any], x: jax.Array, key: jax.Array | None) -> jax.Array:
        per = jax.vmap(lambda xi: inner.loss_fn(p["inner"], xi[None], None))(x)
        value = jnp.sum(per)
        if key is None:
            return value
        return with_gradient_noise(value, x - p["x_star"], p["noise_std"], noise, key)

    info = dict(objective_1d.info)
    info["noise"] = noise
    return Objective(
        x_star=xs,
        x0=start,
        params={"inner": objective_1d.params, "x_star": xs, "noise_std": std},
        name=f"separable_{objective_1d.name}",
        dim=dim,
        f_star=dim * objective_1d.f_star,
        loss_fn=loss_fn,
        noisy=bool(np.any(std > 0)),
        info=info_pairs(**info),
    )


def lessard_counterexample(
    x0: float = 3.3, *, noise_std: float = 0.0, noise: NoiseKind = "gaussian"
) -> Objective:
    """Lessard, Recht, Packard (2016, arXiv 1408.3595, Sec. 4.6): smooth strongly convex, m=1, L=25.

    ``f'(x) = 25x`` for ``x < 1``, ``x + 24`` for ``1 <= x < 2``, ``25x - 24`` for ``x >= 2``;
    ``x* = 0``, ``f* = 0``. Generalised curvature: 25 for ``x < 1``, ``1 + 24/x`` on ``[1, 2)``,
    ``25 - 24/x`` beyond, so its range is ``[13, 25]``. Heavy ball with the quadratic-optimal tuning
    for ``[1, 25]`` (``alpha = 1/9``, ``mu = 4/9``, metadata ``tuning``) keeps ``alpha h`` inside
    the robust interval ``[1/9, 25/9]`` and yet, started from rest near ``x0 = 3.3``, settles into
    a limit cycle instead of converging. ``noise_std``, ``noise``: gradient noise as in the module
    docstring.

    Example:
        >>> lessard_counterexample().meta("tuning")
        (0.1111111111111111, 0.4444444444444444)
    """
    x0 = check_real("x0", x0)

    def loss_1d(x: jax.Array) -> jax.Array:
        low = 12.5 * x * x
        mid = 0.5 * x * x + 24.0 * x - 12.0
        high = 12.5 * x * x - 24.0 * x + 36.0
        return jnp.where(x < 1.0, low, jnp.where(x < 2.0, mid, high))

    return _one_d(
        "lessard_counterexample",
        loss_1d,
        0.0,
        x0,
        13.0,
        25.0,
        noise_std,
        noise,
        strong_convexity=1.0,
        smoothness=25.0,
        tuning=(1.0 / 9.0, 4.0 / 9.0),
    )


def rosenbrock(
    dim: int = 2,
    *,
    x0: ArrayLike | None = None,
    noise_std: ArrayLike = 0.0,
    noise: NoiseKind = "gaussian",
) -> Objective:
    """Rosenbrock ``sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2``, ``x* = 1``, ``f* = 0``.

    Args:
        dim: >= 2.
        x0: start, default the classic ``(-1.2, 1, -1.2, 1, ...)``.
        noise_std: gradient-noise standard deviation per coordinate (scalar or ``(dim,)``), >= 0.
        noise: distribution of the unit noise ("gaussian", "rademacher", "uniform").

    Example:
        >>> float(rosenbrock(3).loss(rosenbrock(3).x_star))
        0.0
    """
    dim = check_positive_int("dim", dim, minimum=2)
    start = np.where(np.arange(dim) % 2 == 0, -1.2, 1.0) if x0 is None else as_vector("x0", x0, dim)
    std = check_noise(noise_std, noise, dim)
    xs = np.ones(dim)

    def loss_fn(p: dict[str, Any], x: jax.Array, key: jax.Array | None) -> jax.Array:
        value = jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
        if key is None:
            return value
        return with_gradient_noise(value, x - p["x_star"], p["noise_std"], noise, key)

    return Objective(
        x_star=xs,
        x0=start,
        params={"x_star": xs, "noise_std": std},
        name="rosenbrock",
        dim=dim,
        f_star=0.0,
        loss_fn=loss_fn,
        noisy=bool(np.any(std > 0)),
        info=info_pairs(noise=noise),
    )
