"""Curvature helpers and the rate classifier of experiment 3 (``nonconvex-constant-rate``).

The theory side evaluates the toys' derivative ``f'`` in float64 (:func:`toy_fprime`) and searches
their generalised curvature ``h(x) = f'(x) / (x - x*)`` shell by shell
(:func:`shell_curvature_range`); the measurement side checks the premise on the iterates
(:func:`visits_only_robust`) and decides, from the measured spread, whether a setting keeps the
rate ``sqrt(mu)`` (:func:`keeps_rate`). Zhang & Mitliagkas (arXiv 1706.03471), Sec. 2.3,
Eq. (9)-(10); reference heavy_ball.md, "Beyond quadratics".
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import theory
from experiments.stats import bootstrap_interval
from simulators import Objective


def toy_fprime(objective_1d: Objective) -> Callable[[np.ndarray], np.ndarray]:
    """``f'`` of a 1-D objective as a float64 NumPy callable (what theory evaluates).

    The stitched toy's automatic derivative is wrong exactly on its shell boundaries
    ``|x - x*| = ratio^k`` (a clipped argument: halved or zero there), so ``f'`` is the mean of the
    derivatives 4 ulps either side. The toys are ``C^1``, so elsewhere this moves ``f'`` by about
    ``1e-15`` relative, far below anything measured here.
    """
    grad = jax.jit(jax.vmap(lambda x: objective_1d.grad(x[None])[0]))
    nudge = 4.0 * np.finfo(np.float64).eps

    def fprime(x):
        x = np.asarray(x, np.float64)
        flat = np.atleast_1d(x).ravel()
        with jax.enable_x64(True):
            both = grad(jnp.asarray(np.concatenate([flat * (1 + nudge), flat * (1 - nudge)])))
        both = np.asarray(both, np.float64)
        return (0.5 * (both[: flat.size] + both[flat.size :])).reshape(x.shape)

    return fprime


def smooth_fprime(
    h_min: float, h_max: float, omega: float, scale: float, x_star: float = 0.0
) -> Callable[[np.ndarray], np.ndarray]:
    """``f'`` of the smooth toy from its documented closed form (float64 NumPy).

    ``f'(x) = e (a + b cos(omega asinh(e / scale)))``, ``e = x - x*``, ``a = (h_max + h_min)/2``,
    ``b = (h_max - h_min)/2`` (:func:`simulators.smooth_nonconvex_1d`): the theory side never
    calls the simulator's gradient.

    Example:
        >>> fp = smooth_fprime(1.0, 9.0, 1.0, 1.0)
        >>> float(fp(np.array(1e-9)) / 1e-9)  # h -> h_max at x*
        9.0
    """
    a, b = 0.5 * (h_max + h_min), 0.5 * (h_max - h_min)

    def fprime(x):
        e = np.asarray(x, np.float64) - x_star
        return e * (a + b * np.cos(omega * np.arcsinh(e / scale)))

    return fprime


def stitched_fprime(
    h_min: float, h_max: float, ratio: float, x_star: float = 0.0
) -> Callable[[np.ndarray], np.ndarray]:
    """``f'`` of the stitched toy from its documented closed form (float64 NumPy).

    Odd and self-similar, ``f'(ratio e) = ratio f'(e)``; on the shell ``1 <= z <= ratio`` it is
    linear through ``f'(1) = h_max``, ``f'(m) = m h_min``, ``f'(ratio) = ratio h_max``,
    ``m = sqrt(ratio)`` (:func:`simulators.stitched_nonconvex_1d`).

    Example:
        >>> fp = stitched_fprime(1.0, 4.0, 4.0)
        >>> fp(np.array([1.0, 2.0, 8.0, -0.5])).tolist()  # h = 4, 1, 1, 1
        [4.0, 2.0, 8.0, -0.5]
    """
    m = np.sqrt(ratio)

    def fprime(x):
        e = np.asarray(x, np.float64) - x_star
        r = np.where(e == 0.0, 1.0, np.abs(e))
        base = ratio ** np.floor(np.log(r) / np.log(ratio))
        z = r / base  # in [1, ratio] up to rounding; the pieces extend linearly by a few ulps
        shell = np.where(
            z <= m,
            h_max + (m * h_min - h_max) * (z - 1.0) / (m - 1.0),
            m * h_min + (ratio * h_max - m * h_min) * (z - m) / (ratio - m),
        )
        return np.where(e == 0.0, 0.0, np.sign(e) * base * shell)

    return fprime


def shell_curvature_range(
    fprime: Callable[[np.ndarray], np.ndarray],
    x_star: float,
    dist: float,
    region: float,
    shell_points: int,
    *,
    decades: int = 16,
) -> tuple[float, float, float, float]:
    """Theory's range of ``h`` over ``10^-decades R <= |x - x*| <= R``, ``R = region * dist``.

    :func:`theory.curvature_range` on every decade shell on both sides of ``x*`` (a linear grid
    over the whole region would miss the structure at small scales) and on each side as a whole.

    Returns:
        ``(h_min, h_max, r_min, R)``.
    """
    top = np.log10(region * dist)
    edges = 10.0 ** np.arange(top - float(decades), top + 1e-9, 1.0)
    edges[-1] = region * dist
    r = float(edges[-1])
    # each side as a whole too (the intervals robust_on_interval checks): the extremes are polished
    # by a bounded minimiser, so two searches of the same kink can differ by ~1e-10 relative
    intervals = [(x_star - r, x_star, 2001), (x_star, x_star + r, 2001)]
    for a, b in itertools.pairwise(edges):
        intervals += [(x_star + a, x_star + b, shell_points)]
        intervals += [(x_star - b, x_star - a, shell_points)]
    lo, hi = np.inf, -np.inf
    for a, b, n in intervals:
        h_lo, h_hi = theory.curvature_range(fprime, x_star, a, b, n=n)
        lo, hi = min(lo, h_lo), max(hi, h_hi)
    return lo, hi, float(edges[0]), r


def visited_premise(
    alpha: np.ndarray,
    mu: np.ndarray,
    fprime: Callable[[np.ndarray], np.ndarray],
    x_star: float,
    errors: np.ndarray,
    r_min: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Whether ``alpha h(x_t)`` lies in the closed robust interval at every visited iterate.

    ``h = f'(x) / (x - x*)`` (:func:`theory.generalized_curvature`) at ``x_t = x* + e_t`` for every
    recorded error ``e_t`` with ``|e_t| >= r_min`` (theory's region), and the interval
    ``[(1 - sqrt(mu))^2, (1 + sqrt(mu))^2]`` of :func:`theory.regime` ("robust" inside, "boundary"
    within 8 ulps of an edge, where the spectral radius is ``sqrt(mu)`` too); Zhang & Mitliagkas
    (arXiv 1706.03471), Eq. (9)-(10). One call for the whole batch (one compilation of ``f'``).

    Args:
        alpha: learning rate of each run, ``(G,)``.
        mu: momentum of each run, ``(G,)``.
        fprime: the 1-D toy's derivative.
        x_star: its minimiser.
        errors: ``(G, T)`` errors ``x_t - x*`` (non-finite entries are skipped).
        r_min: smallest ``|e_t|`` counted.

    Returns:
        ``(premise, h)``: per run whether every counted ``alpha h(x_t)`` is robust, ``(G,)``, and
        ``h`` at every record, NaN where not counted, ``(G, T)``.

    Example:
        >>> fp = lambda x: 2.0 * x + 0.5 * np.sin(x)  # h(3) = 2.02, h(0.2) = 2.50
        >>> e = np.array([[3.0, 0.2], [3.0, 0.2]])  # alpha h = 1.01, 1.25
        >>> visited_premise(np.array([0.5, 0.5]), np.array([0.25, 0.01]), fp, 0.0, e, 0.0)[0]
        array([ True, False])
    """
    e = np.asarray(errors, np.float64)
    counted = np.isfinite(e) & (np.abs(e) >= r_min)
    h = theory.generalized_curvature(fprime, x_star, x_star + np.where(counted, e, 1.0))
    kind = theory.regime(np.asarray(alpha)[:, None], np.asarray(mu)[:, None], h)
    robust = np.isin(kind, ("robust", "boundary")) | ~counted
    return np.all(robust, axis=1), np.where(counted, h, np.nan)


def keeps_rate(
    devs: np.ndarray,
    errs: np.ndarray,
    band: float,
    z: float,
    *,
    seed: int = 0,
) -> tuple[bool | None, tuple[float, float]]:
    """Whether a setting keeps the rate ``sqrt(mu)``, decided from the measured spread.

    ``devs`` are ``rate_s / sqrt(mu) - 1`` over the starts ``s`` and ``errs`` their block-jackknife
    standard errors (:func:`simulators.measure_rate`, divided by ``sqrt(mu)``). The interval of the
    mean deviation is the bootstrap interval over the starts (:func:`bootstrap_interval`) widened on
    each side by ``z`` fit errors of the mean, ``z sqrt(mean(errs^2) / S)``. The setting keeps the
    rate (``True``) when the interval lies inside ``[-band, band]``, misses it (``False``) when
    the interval lies outside, and is unresolved (``None``) when it straddles an edge. A diverged
    run (``inf``) misses; a failed fit (NaN) is unresolved.

    Returns:
        ``(keeps, (lo, hi))``.

    Example:
        >>> keeps_rate(np.array([0.001, -0.002, 0.0]), np.full(3, 1e-3), 0.02, 2.0)[0]
        True
        >>> keeps_rate(np.full(3, 1 / 0.9 - 1), np.zeros(3), 0.02, 2.0)[0]  # a cycle: rate 1
        False
        >>> keeps_rate(np.array([0.01, 0.03, 0.02]), np.full(3, 1e-3), 0.02, 2.0)[0]
    """
    devs = np.asarray(devs, np.float64)
    errs = np.nan_to_num(np.asarray(errs, np.float64), nan=0.0, posinf=0.0)
    if np.any(devs == np.inf):
        return False, (np.inf, np.inf)
    if not np.all(np.isfinite(devs)):
        return None, (np.nan, np.nan)
    lo, hi = bootstrap_interval(devs, seed=seed) if devs.size > 1 else (devs[0], devs[0])
    widen = z * float(np.sqrt(np.mean(errs**2) / devs.size))
    lo, hi = lo - widen, hi + widen
    if -band <= lo and hi <= band:
        return True, (lo, hi)
    if lo > band or hi < -band:
        return False, (lo, hi)
    return None, (lo, hi)


def agreement(predicted: np.ndarray, measured: list) -> tuple[bool | None, int, int, int]:
    """Compare per-setting predictions with the measured outcomes of :func:`keeps_rate`.

    Returns:
        ``(ok, agree, resolved, total)``: ``ok`` is ``False`` when a resolved setting disagrees,
        ``None`` when none disagrees but some are unresolved, else ``True``.

    Example:
        >>> agreement(np.array([True, True, False]), [True, None, False])
        (None, 2, 2, 3)
    """
    pred = np.asarray(predicted, bool).ravel()
    meas = list(np.asarray(measured, dtype=object).ravel())
    resolved = [i for i, m in enumerate(meas) if m is not None]
    agree = sum(bool(meas[i]) == bool(pred[i]) for i in resolved)
    if agree < len(resolved):
        ok: bool | None = False
    else:
        ok = None if len(resolved) < len(meas) else True
    return ok, agree, len(resolved), len(meas)


def min_second_derivative(
    fprime: Callable[[np.ndarray], np.ndarray], x_star: float, points: int = 20001
) -> float:
    """Smallest ``f''`` over ``1e-6 <= |x - x*| <= 1e2`` (both sides), by central differences.

    ``f''(x) ~ (f'(x + d) - f'(x - d)) / (2 d)`` with ``d = 1e-6 |x - x*|`` on a geometric grid;
    negative means the function is non-convex there.

    Example:
        >>> round(min_second_derivative(lambda x: x**3 - x, 0.0), 3)  # f'' = 3x^2 - 1
        -1.0
        >>> min_second_derivative(lambda x: 2.0 * x, 0.0) > 0
        True
    """
    e = np.geomspace(1e-6, 1e2, points)
    e = np.concatenate([e, -e])
    d = 1e-6 * np.abs(e)
    fpp = (np.asarray(fprime(x_star + e + d)) - np.asarray(fprime(x_star + e - d))) / (2.0 * d)
    return float(np.min(fpp))


def scan_grid(
    mus: np.ndarray, positions: tuple[float, ...], h_min: float, h_max: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, mu)`` of every ``(momentum, position)`` setting, shaped ``(M, P)``.

    With ``[alpha_lo, alpha_hi]`` the robust interval of ``[h_min, h_max]``
    (:func:`theory.robust_interval`), a position ``p`` in ``[0, 1]`` is ``alpha_lo + p (alpha_hi -
    alpha_lo)`` and ``p`` in ``(-1, 0)`` is ``alpha_lo (1 + p)`` (lazy side).

    Example:
        >>> alpha, mu = scan_grid(np.array([0.25]), (-0.5, 0.0, 1.0), 1.0, 9.0)
        >>> alpha.round(4).tolist(), mu.tolist()
        ([[0.125, 0.25, 0.25]], [[0.25, 0.25, 0.25]])
    """
    mu = np.asarray(mus, np.float64)[:, None]
    p = np.asarray(positions, np.float64)[None, :]
    a_lo, a_hi = theory.robust_interval(mu, h_min, h_max)
    alpha = np.where(p < 0.0, a_lo * (1.0 + p), a_lo + np.maximum(p, 0.0) * (a_hi - a_lo))
    return alpha, np.broadcast_to(mu, alpha.shape)


def outcome_codes(keep: np.ndarray) -> np.ndarray:
    """Outcomes of :func:`keeps_rate` as floats for the NPZ: 1 keeps, 0 misses, NaN unresolved.

    Example:
        >>> outcome_codes(np.array([True, False, None], dtype=object)).tolist()
        [1.0, 0.0, nan]
    """
    return np.array([np.nan if k is None else float(k) for k in keep.ravel()]).reshape(keep.shape)


def curvature_profiles(objectives: dict, fprimes: dict) -> dict[str, np.ndarray]:
    """The 1-D toys' loss on a line and their generalised curvature over many scales."""
    out: dict[str, np.ndarray] = {}
    x_lin = np.linspace(-10.0, 10.0, 801)
    e_log = np.geomspace(1e-9, 10.0, 1500)
    out["x_lin"], out["e_log"] = x_lin, e_log
    for toy in ("smooth", "stitched"):
        obj = objectives[toy]
        x_star = float(np.asarray(obj.x_star)[0])
        with jax.enable_x64(True):
            loss = jax.jit(jax.vmap(lambda x, o=obj: o.loss(x[None])))
            out[f"f_{toy}"] = np.asarray(loss(jnp.asarray(x_star + x_lin, jnp.float64)))
        out[f"h_{toy}"] = theory.generalized_curvature(fprimes[toy], x_star, x_star + e_log)
    return out
