"""What YellowFin's oracles read on the noisy quadratic model at a fixed operating point.

Heavy ball at a fixed ``(alpha, mu)`` on the NQM (curvatures ``h_i``, gradient-noise variances
``c_i``; Zhang et al., arXiv 1907.04164, Sec. 3) has, per direction, the stationary second moments
``p = (E y^2, E v^2, E y v)`` that solve ``(I - T) p = alpha^2 c_i (1, 1, 1)`` with ``T`` from
:func:`theory.second_moment_operator` (its ``E y^2`` is :func:`theory.stationary_variance`). The
gradient ``g_i = h_i y_i + n_i`` is then zero-mean Gaussian with variance
``s_i^2 = h_i^2 E y_i^2 + c_i`` (the current noise ``n_i`` is independent of ``y_i``), so
``Q = ||g||^2`` is a weighted chi-square. YellowFin's oracles (Zhang & Mitliagkas, arXiv
1706.03471, Sec. 3.2; reference yellowfin.md) are defined on ``Q``; at stationarity, with their
beta = 0.999 averages warm, they read:

* ``C = E Q - ||E_beta g||^2 ~= E Q = sum_i (h_i^2 E y_i^2 + c_i)``: the time variance of ``g``,
  iterate motion included (the average of ``g`` vanishes: its spectrum is zero at frequency 0);
* ``D = E sqrt(Q) / E Q`` (a ratio of two warm averages), computed exactly from
  ``sqrt(q) = (4 pi)^-1/2 int_0^inf (1 - e^{-u q}) u^{-3/2} du`` and the Laplace transform
  ``E e^{-u Q} = prod_i (1 + 2 u s_i^2)^{-1/2}``; ``1/sqrt(E Q)`` bounds it from above (Jensen);
* ``h_min = exp E log(min of w consecutive Q_t + eps)`` and ``h_max`` with the max: the window
  extremes of the stationary Gaussian process, by Monte Carlo of the exact linear recursion from
  the stationary state (numpy, fixed draws; no optimizer code is involved).

:func:`proxy_fixed_point` solves ``(alpha, mu) = SingleStep(C, D, h_min, h_max)`` with these
readings (:func:`theory.singlestep`, official ``eps`` guard): the operating point at which
YellowFin's tuner is self-consistent on this problem, predicted without running it.

Example:
    >>> import theory
    >>> h, c = theory.nqm_spectrum(8, 1.0, 16)
    >>> r = oracle_readings(0.5, 0.5, h, c, samples=500)
    >>> bool(r["h_min"] < r["grad_var"] < r["h_max"])
    True
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.integrate import quad

import theory


def stationary_moments(alpha: float, mu: float, h: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Stationary ``(E y^2, E v^2, E y v)`` per direction, shape ``(dim, 3)``.

    The fixed point of ``p_{t+1} = T p_t + alpha^2 c (1, 1, 1)`` (theory.noise_floor).

    Raises:
        ValueError: when heavy ball is unstable at ``(alpha, mu)`` on some ``h_i``.
    """
    theory.stationary_variance(alpha, mu, h, c)  # validates the stability domain
    t_op = theory.second_moment_operator(alpha, mu, h)  # (dim, 3, 3)
    rhs = (alpha**2 * np.asarray(c, np.float64))[:, None] * np.ones(3)
    return np.linalg.solve(np.eye(3) - t_op, rhs[..., None])[..., 0]


def expected_norm(s2: np.ndarray) -> float:
    """``E sqrt(Q)`` for ``Q = sum_i s2_i chi2_1`` (exact quadrature of the Laplace transform)."""
    s2 = np.asarray(s2, np.float64)
    scale = float(s2.sum())

    def integrand(u: float) -> float:
        # u in units of 1 / E Q; log1p keeps 1 - phi accurate at small u
        log_phi = -0.5 * float(np.sum(np.log1p(2.0 * u * s2 / scale)))
        return -math.expm1(log_phi) * u**-1.5

    val = quad(integrand, 0.0, 1.0, limit=200)[0] + quad(integrand, 1.0, np.inf, limit=200)[0]
    return math.sqrt(scale) * val / (2.0 * math.sqrt(math.pi))


@functools.lru_cache(maxsize=2)
def _draws(seed: int, samples: int, dim: int, window: int) -> tuple[np.ndarray, ...]:
    """Standard normal draws, shared by every operating point (common random numbers)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((2, samples, dim))
    return z[0], z[1], rng.standard_normal((window, samples, dim))


def window_extremes(
    alpha: float,
    mu: float,
    h: np.ndarray,
    c: np.ndarray,
    *,
    window: int = 20,
    samples: int = 2000,
    seed: int = 0,
    eps: float = 1e-6,
) -> tuple[float, float, float]:
    """``(exp E log(min + eps), exp E log(max + eps), P(Q >= h_max))`` over ``window`` steps.

    The last entry is the fraction of steps on which YellowFin's ``clip_large_grad`` rule
    (``||g||^2 >= h_max``) would rescale the applied gradient, which this model leaves out.

    Each sample starts from the stationary Gaussian state (:func:`stationary_moments`) and runs the
    heavy-ball recursion ``y <- y + mu v - alpha (h y + n)`` with fresh noise ``n ~ N(0, c)``.
    """
    z1, z2, noise = _draws(seed, samples, h.size, window)
    m = stationary_moments(alpha, mu, h, c)
    # joint (y, v) per direction from its 2x2 covariance [[Ey2, Eyv], [Eyv, Ev2]]
    det = np.maximum(m[:, 0] * m[:, 1] - m[:, 2] ** 2, 0.0)
    sy = np.sqrt(m[:, 0])
    y = sy * z1
    v = (m[:, 2] / sy) * z1 + np.sqrt(det / m[:, 0]) * z2
    q = np.empty((window, samples))
    sc = np.sqrt(c)
    for k in range(window):
        g = h * y + sc * noise[k]
        q[k] = np.sum(g * g, axis=1)
        y_new = y + mu * v - alpha * g
        v, y = y_new - y, y_new
    h_max = float(np.exp(np.mean(np.log(q.max(0) + eps))))
    return float(np.exp(np.mean(np.log(q.min(0) + eps)))), h_max, float(np.mean(q >= h_max))


def oracle_readings(
    alpha: float,
    mu: float,
    h: np.ndarray,
    c: np.ndarray,
    *,
    window: int = 20,
    samples: int = 2000,
    seed: int = 0,
    eps: float = 1e-6,
) -> dict[str, float]:
    """Predicted warm readings of YellowFin's oracles at a fixed ``(alpha, mu)`` (module doc).

    Returns:
        ``grad_var`` (C), ``dist_to_opt`` (D), ``inv_sqrt_mean_sq`` (``1/sqrt(E Q)``), ``h_min``,
        ``h_max``, ``mean_sq`` (``E Q``), ``clip_fraction`` (:func:`window_extremes`) and
        ``floor`` (:func:`theory.nqm_floor`).
    """
    h = np.asarray(h, np.float64)
    c = np.asarray(c, np.float64)
    s2 = h**2 * theory.stationary_variance(alpha, mu, h, c) + c
    mean_sq = float(s2.sum())
    h_min, h_max, clipped = window_extremes(
        alpha, mu, h, c, window=window, samples=samples, seed=seed, eps=eps
    )
    return {
        "grad_var": mean_sq,
        "dist_to_opt": expected_norm(s2) / mean_sq,
        "inv_sqrt_mean_sq": 1.0 / math.sqrt(mean_sq),
        "h_min": h_min,
        "h_max": h_max,
        "mean_sq": mean_sq,
        "clip_fraction": clipped,
        "floor": float(theory.nqm_floor(alpha, mu, h, c)),
    }


def proxy_fixed_point(
    h: np.ndarray,
    c: np.ndarray,
    *,
    window: int = 20,
    samples: int = 2000,
    seed: int = 0,
    eps: float = 1e-6,
    iters: int = 400,
    tol: float = 1e-6,
) -> tuple[float, float, dict[str, float]]:
    """``(alpha, mu, readings)`` with ``(alpha, mu) = SingleStep(readings(alpha, mu))``.

    Damped fixed-point iteration in ``(log alpha, mu)`` (half steps, halved again while the
    iterates oscillate or a step leaves heavy ball's stability domain) with common random
    numbers (the same ``seed`` at every iterate), started from SingleStep at the Hessian's
    extremes, ``C = sum c`` and ``D = 1``.

    Raises:
        ValueError: when the iteration does not settle within ``iters`` steps.
    """
    h = np.asarray(h, np.float64)
    c = np.asarray(c, np.float64)
    kw = {"window": window, "samples": samples, "seed": seed, "eps": eps}
    mu, alpha = (float(v) for v in theory.singlestep(c.sum(), 1.0, h.min(), h.max()))
    r = oracle_readings(alpha, mu, h, c, **kw)
    damp, last = 0.5, math.inf
    for _ in range(iters):
        mu_new, a_new = (
            float(v)
            for v in theory.singlestep(
                r["grad_var"] + eps, r["dist_to_opt"] + eps, r["h_min"] + eps, r["h_max"] + eps
            )
        )
        gap = max(abs(mu_new - mu), abs(math.log(a_new / alpha)))
        if gap < tol:
            return alpha, mu, r
        if gap > last:  # oscillating (the map's slope is below -1 / damp + 1): damp harder
            damp = max(damp / 2, 1 / 64)
        last = gap
        while True:
            mu_try = mu + damp * (mu_new - mu)
            a_try = alpha * (a_new / alpha) ** damp
            try:
                r = oracle_readings(a_try, mu_try, h, c, **kw)
                break
            except ValueError:  # left the stability domain: a shorter step
                if damp < 1e-3:
                    raise
                damp /= 2
        mu, alpha = mu_try, a_try
    raise ValueError(f"the oracle fixed point did not settle in iters={iters} steps")
