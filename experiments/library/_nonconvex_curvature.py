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


def visits_only_robust(
    alpha: float,
    mu: float,
    fprime: Callable[[np.ndarray], np.ndarray],
    x_star: float,
    iterates: np.ndarray,
) -> bool:
    """Whether ``alpha h(x_t)`` lies in the closed robust interval at every iterate.

    ``h = f'(x) / (x - x*)`` (:func:`theory.generalized_curvature`) and the interval
    ``[(1 - sqrt(mu))^2, (1 + sqrt(mu))^2]`` of :func:`theory.regime` ("robust" inside, "boundary"
    within 8 ulps of an edge, where the spectral radius is ``sqrt(mu)`` too); Zhang & Mitliagkas
    (arXiv 1706.03471), Eq. (9)-(10).

    Example:
        >>> fp = lambda x: 2.0 * x + 0.5 * np.sin(x)  # h(3) = 2.02, h(0.2) = 2.50
        >>> x = np.array([3.0, 0.2])  # alpha h = 1.01, 1.25
        >>> visits_only_robust(0.5, 0.25, fp, 0.0, x), visits_only_robust(0.5, 0.01, fp, 0.0, x)
        (True, False)
    """
    h = theory.generalized_curvature(fprime, x_star, iterates)
    kind = theory.regime(alpha, mu, h)
    return bool(np.all(np.isin(kind, ("robust", "boundary"))))


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
