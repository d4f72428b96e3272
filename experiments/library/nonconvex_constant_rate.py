"""Experiment 3: a constant ``sqrt(mu)`` rate on non-convex toys, via the generalised curvature.

Claim (Zhang & Mitliagkas, arXiv 1706.03471, Sec. 2.3, Eq. (9)-(10) and their toy figure;
reference heavy_ball.md, "Beyond quadratics"): with the generalised curvature
``h(x) = f'(x) / (x - x*)`` heavy ball on a 1-D function is ``e_{t+1} = A_t e_t`` with ``A_t`` the
quadratic operator at ``h(x_t)``. When ``alpha h(x)`` stays in the robust interval
``[(1 - sqrt(mu))^2, (1 + sqrt(mu))^2]`` every ``A_t`` has spectral radius ``sqrt(mu)``; tuned by
YellowFin's rule ``alpha = (1 - sqrt(mu))^2 / h_min`` heavy ball then converges at ``sqrt(mu)`` on
a smooth non-convex toy, a stitched one, and their separable d-dimensional versions.

This is an empirical claim: spectral radius is not sub-multiplicative, so the robust curvature is
no proof. What is certain is a lower bound: ``det A_t = mu`` for every ``t``, so the product of
the two Lyapunov exponents is ``mu`` and the rate can never be below ``sqrt(mu)``. The experiment
also scans ``alpha`` across the robust interval at one momentum and reports where the rate is
kept (not part of the verdict; experiment ``rate-failures`` studies the failures).

Prediction: :func:`theory.curvature_range` of each toy over decade shells from ``1e-16`` to
``1`` times ``region`` times the start distance (both sides of ``x*``),
:func:`theory.robust_interval` of that range (YellowFin's ``alpha`` is its left end),
:func:`theory.robust_on_interval`, :func:`theory.min_robust_momentum`, and the rate ``sqrt(mu)``.
Measurement: heavy ball (:func:`optimizers.heavy_ball`) on the simulators' toys
(:func:`simulators.smooth_nonconvex_1d`, :func:`simulators.stitched_nonconvex_1d`,
:func:`simulators.separable`), one vmapped float64 sweep per toy; the rate is the late log-slope
of the error-state norm ``||(e_t, e_{t-1})||`` (:func:`simulators.measure_rate`) with its
block-jackknife standard error.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

import theory
from experiments.framework import Experiment, Record, figure, register, style, verdict
from optimizers import heavy_ball
from simulators import (
    Objective,
    measure_rate,
    separable,
    smooth_nonconvex_1d,
    stitched_nonconvex_1d,
    sweep,
)

TOYS = ("smooth", "stitched", "smooth-separable", "stitched-separable")
_COLORS = {
    "smooth": style("heavy-ball")["color"],
    "stitched": style("yellowfin")["color"],
    "smooth-separable": style("momo")["color"],
    "stitched-separable": style("adam")["color"],
}
_MARKERS = {"smooth": "o", "stitched": "s", "smooth-separable": "D", "stitched-separable": "^"}


@dataclasses.dataclass(frozen=True)
class NonconvexRateConfig:
    """Toys, momenta and run length.

    Attributes:
        smooth_h: ``(h_min, h_max)`` of the smooth toy's generalised curvature.
        smooth_omega: frequency of the smooth toy's log-periodic curvature oscillation.
        stitched_h: ``(h_min, h_max)`` of the stitched toy.
        stitched_ratio: shell ratio of the stitched toy (curvature jumps once per shell).
        dim: dimension of the separable versions.
        mus: momenta (each at YellowFin's ``alpha``); each must be at least
            :func:`theory.min_robust_momentum` of the toys' curvature ranges.
        scan_mu: momentum of the scan across the robust interval (one of ``mus``).
        scan_points: learning rates of the scan, evenly spaced over the robust interval.
        steps: heavy-ball steps per run.
        region: the curvature range is computed for ``|x - x*|`` up to ``region`` times the start
            distance (the runs are checked to stay inside).
        shell_points: grid points per decade shell of :func:`theory.curvature_range`.
        rel_tol: allowed ``|measured / sqrt(mu) - 1|`` (the claim's 2%).
        z_tol: tolerance in jackknife standard errors (used when larger than ``rel_tol``).
    """

    smooth_h: tuple[float, float] = (1.0, 9.0)
    smooth_omega: float = 1.0
    stitched_h: tuple[float, float] = (1.0, 4.0)
    stitched_ratio: float = 4.0
    dim: int = 8
    mus: tuple[float, ...] = (0.5, 0.64, 0.81, 0.9)
    scan_mu: float = 0.81
    scan_points: int = 11
    steps: int = 3000
    region: float = 4.0
    shell_points: int = 801
    rel_tol: float = 0.02
    z_tol: float = 4.0

    def __post_init__(self) -> None:
        for name in ("smooth_h", "stitched_h"):
            lo, hi = getattr(self, name)
            if not 0.0 < lo < hi:
                raise ValueError(f"{name} must be (h_min, h_max) with 0 < h_min < h_max")
        if not self.mus or not all(0.0 < m < 1.0 for m in self.mus):
            raise ValueError(f"mus must be a non-empty tuple of momenta in (0, 1) (got {self.mus})")
        if self.scan_mu not in self.mus:
            raise ValueError(f"scan_mu must be one of mus {self.mus} (got {self.scan_mu})")
        if not self.stitched_ratio > 1.0:
            raise ValueError(f"stitched_ratio must be > 1 (got {self.stitched_ratio})")
        if self.dim < 2 or self.scan_points < 2 or self.steps < 100:
            raise ValueError("dim must be >= 2, scan_points >= 2 and steps >= 100")
        if not self.region >= 1.0:
            raise ValueError(f"region must be >= 1 (got {self.region})")

    @classmethod
    def quick(cls) -> NonconvexRateConfig:
        """Two momenta, a coarser scan and shorter runs (seconds on a CPU)."""
        return cls(mus=(0.5, 0.81), scan_points=6, steps=2000, shell_points=401)


def _objectives(cfg: NonconvexRateConfig) -> dict:
    smooth = smooth_nonconvex_1d(*cfg.smooth_h, omega=cfg.smooth_omega)
    stitched = stitched_nonconvex_1d(*cfg.stitched_h, ratio=cfg.stitched_ratio)
    return {
        "smooth": smooth,
        "stitched": stitched,
        "smooth-separable": separable(smooth, cfg.dim),
        "stitched-separable": separable(stitched, cfg.dim),
    }


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
) -> tuple[float, float, float, float]:
    """Theory's range of ``h`` over ``1e-16 R <= |x - x*| <= R``, ``R = region * dist``.

    :func:`theory.curvature_range` on every decade shell on both sides of ``x*`` (a linear grid
    over the whole region would miss the structure at small scales) and on each side as a whole.

    Returns:
        ``(h_min, h_max, r_min, R)``.
    """
    top = np.log10(region * dist)
    edges = 10.0 ** np.arange(top - 16.0, top + 1e-9, 1.0)
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


def run(cfg: NonconvexRateConfig, seed: int) -> Record:
    """Theory's curvature range and YellowFin tuning per toy; measured rates of heavy ball."""
    objectives = _objectives(cfg)
    key = jax.random.key(seed)
    mus = np.asarray(cfg.mus, np.float64)
    fracs = np.linspace(0.0, 1.0, cfg.scan_points)
    pred, meas, err, alphas, robust, inside_region = {}, {}, {}, {}, {}, {}
    scan, scan_err, dist_yf, visited = {}, {}, {}, {}
    ranges, regions, cache = {}, {}, {}
    for toy, obj in objectives.items():
        base = objectives[toy.removesuffix("-separable")]
        x_star = float(np.asarray(base.x_star)[0])
        dist0 = float(np.max(np.abs(np.asarray(obj.x0) - np.asarray(obj.x_star))))
        if base.name not in cache:  # a separable toy has the curvature of its 1-D toy
            fp = toy_fprime(base)
            cache[base.name] = (
                fp,
                *shell_curvature_range(fp, x_star, dist0, cfg.region, cfg.shell_points),
            )
        fprime, h_lo, h_hi, r_lo, r_hi = cache[base.name]
        ranges[toy] = (h_lo, h_hi)
        regions[toy] = (r_lo, r_hi)
        mu_min = float(theory.min_robust_momentum(h_hi / h_lo))
        if mus.min() < mu_min:
            raise ValueError(
                f"mus must be >= min_robust_momentum = {mu_min:.4f} for the {toy} toy "
                f"(curvature range [{h_lo:.4g}, {h_hi:.4g}])"
            )
        a_lo, _ = theory.robust_interval(mus, h_lo, h_hi)
        alphas[toy] = np.asarray(a_lo)  # YellowFin's rule: the left end of the interval
        robust[toy] = [
            theory.robust_on_interval(float(a), float(m), fprime, x_star, x_star - r_hi, x_star)
            and theory.robust_on_interval(float(a), float(m), fprime, x_star, x_star, x_star + r_hi)
            for a, m in zip(alphas[toy], mus, strict=True)
        ]
        grid_a, grid_mu = [alphas[toy]], [mus]
        one_d = obj.dim == 1
        if one_d:
            s_lo, s_hi = (float(v) for v in theory.robust_interval(cfg.scan_mu, h_lo, h_hi))
            grid_a.append(s_lo + fracs * (s_hi - s_lo))
            grid_mu.append(np.full(fracs.size, cfg.scan_mu))
        with jax.enable_x64(True):
            traj = sweep(
                lambda learning_rate, momentum: heavy_ball(learning_rate, momentum),
                {"learning_rate": np.concatenate(grid_a), "momentum": np.concatenate(grid_mu)},
                obj,
                cfg.steps,
                key,
                record_coords=None,
            )
        e = np.asarray(traj.iterates[:, 0], np.float64) - np.asarray(obj.x_star, np.float64)
        sq = np.sum(e * e, axis=-1)
        state = np.sqrt(sq[:, 1:] + sq[:, :-1])
        est = measure_rate(state)
        rate = np.where(np.asarray(traj.diverged[:, 0]), np.inf, est.rate)
        n = mus.size
        meas[toy], err[toy] = rate[:n], np.asarray(est.stderr)[:n]
        pred[toy] = np.sqrt(mus)
        inside_region[toy] = bool(np.all(np.abs(e[:n]) <= r_hi))
        i = int(np.flatnonzero(mus == cfg.scan_mu)[0])
        dist_yf[toy] = np.asarray(traj.distances[i, 0], np.float64)
        if one_d:
            scan[toy], scan_err[toy] = rate[n:], np.asarray(est.stderr)[n:]
            # the curvature the run visited, read off the iterates through the toy's gradient
            x_t = np.asarray(traj.iterates[i, 0, :, 0], np.float64)
            keep = np.abs(x_t - x_star) > 1e-12 * dist0
            h_t = np.full(x_t.shape, np.nan)
            h_t[keep] = fprime(x_t[keep]) / (x_t[keep] - x_star)
            visited[toy] = alphas[toy][i] * h_t

    tol = {t: np.maximum(cfg.rel_tol, cfg.z_tol * err[t] / np.sqrt(mus)) for t in TOYS}
    dev = {t: meas[t] / np.sqrt(mus) - 1.0 for t in TOYS}
    ok = {t: np.isfinite(dev[t]) & (np.abs(dev[t]) <= tol[t]) for t in TOYS}
    scan_ok = {
        t: np.abs(scan[t] / np.sqrt(cfg.scan_mu) - 1.0)
        <= np.maximum(cfg.rel_tol, cfg.z_tol * np.nan_to_num(scan_err[t], nan=0.0))
        for t in scan
    }
    checks = {
        "theory_says_robust": all(all(robust[t]) for t in TOYS),
        "runs_stay_in_the_predicted_region": all(inside_region.values()),
        "rate_is_sqrt_mu": all(bool(np.all(ok[t])) for t in TOYS),
    }
    worst = max(float(np.max(np.abs(dev[t]))) for t in TOYS)
    scan_text = "; ".join(
        f"{t}: {int(scan_ok[t].sum())}/{cfg.scan_points} fractions keep sqrt(mu)" for t in scan
    )
    return Record(
        claim=EXPERIMENT_CLAIM,
        prediction={
            "curvature_range": {t: list(ranges[t]) for t in TOYS},
            "region_abs_distance": {t: list(regions[t]) for t in TOYS},
            "yellowfin_alpha": {t: alphas[t] for t in TOYS},
            "theory_robust_on_region": {t: robust[t] for t in TOYS},
            "rate_sqrt_mu": np.sqrt(mus),
            "rate_lower_bound": "sqrt(mu) (det A_t = mu)",
        },
        measurement={
            "rate": {t: meas[t] for t in TOYS},
            "stderr": {t: err[t] for t in TOYS},
            "max_rel_deviation": worst,
            "scan_mu": cfg.scan_mu,
            "scan_fractions_keeping_rate": {t: int(scan_ok[t].sum()) for t in scan},
            "checks": checks,
        },
        tolerance={
            "rule": "|measured/sqrt(mu) - 1| <= max(rel_tol, z*stderr/sqrt(mu))",
            "rel_tol": cfg.rel_tol,
            "z": cfg.z_tol,
            "why": "the rate is not exact beyond quadratics; 2% is the claim's band and the "
            "block-jackknife stderr of the late log-slope is the fit's own uncertainty",
            "region": "h is computed for |x - x*| in [1e-16, 1] x region x start distance",
        },
        verdict=verdict(all(checks.values())),
        summary=(
            f"at YellowFin's alpha the measured rate is sqrt(mu) within {worst:.2%} on "
            f"{len(TOYS)} toys x {mus.size} momenta; scan across the robust interval at "
            f"mu={cfg.scan_mu:g}: {scan_text}"
        ),
        arrays={
            "mus": mus,
            "scan_fractions": fracs,
            "scan_mu": np.array(cfg.scan_mu),
            "t": np.asarray(traj.steps),
            **{f"rate_{t}": meas[t] for t in TOYS},
            **{f"stderr_{t}": err[t] for t in TOYS},
            **{f"alpha_{t}": alphas[t] for t in TOYS},
            **{f"range_{t}": np.asarray(ranges[t]) for t in TOYS},
            **{f"dist_{t}": dist_yf[t] for t in TOYS},
            **{f"scan_rate_{t}": scan[t] for t in scan},
            **{f"scan_stderr_{t}": scan_err[t] for t in scan},
            **{f"visited_ah_{t}": visited[t] for t in visited},
            **_profiles(objectives, {k: v[0] for k, v in cache.items()}),
        },
    )


def _profiles(objectives: dict, fprimes: dict) -> dict[str, np.ndarray]:
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
        out[f"h_{toy}"] = theory.generalized_curvature(fprimes[obj.name], x_star, x_star + e_log)
    return out


def plot(record: Record) -> Figure:
    """The toys, their curvature with the robust band, distances vs sqrt(mu)^t and the rates."""
    arr = record.arrays
    fig, axes = figure(ncols=3, nrows=2)
    ax_f, ax_h, ax_d = axes[0]
    ax_v, ax_r, ax_s = axes[1]
    mus, mu_s = arr["mus"], float(arr["scan_mu"])
    i = int(np.flatnonzero(np.isclose(mus, mu_s))[0])
    s = np.sqrt(mu_s)
    for toy in ("smooth", "stitched"):
        c = _COLORS[toy]
        ax_f.plot(arr["x_lin"], arr[f"f_{toy}"], color=c, lw=1.2, label=f"{toy} toy")
        ax_h.semilogx(arr["e_log"], arr[f"h_{toy}"], color=c, lw=1.0, label=f"h(x), {toy}")
        a = arr[f"alpha_{toy}"][i]
        band = ((1 - s) ** 2 / a, (1 + s) ** 2 / a)
        if toy == "smooth":
            ax_h.axhspan(*band, color=c, alpha=0.12, label="robust band (smooth)")
        else:
            for y in band:
                ax_h.axhline(y, color=c, lw=0.8, ls="--")
    ax_f.set_xlabel(r"$x - x^*$")
    ax_f.set_ylabel(r"$f(x)$")
    ax_f.set_title("non-convex toys")
    ax_f.legend(fontsize=7)
    ax_h.set_xlabel(r"$|x - x^*|$ (log scale)")
    ax_h.set_ylabel(r"$h(x) = f'(x)/(x - x^*)$")
    ax_h.set_title(rf"generalised curvature, band at $\mu$={mu_s:g}")
    ax_h.set_yscale("log")
    ax_h.legend(fontsize=6.5, loc="upper right")
    t = arr["t"]
    t_end = 10
    for toy in TOYS:
        d = arr[f"dist_{toy}"]
        below = np.flatnonzero(~(d / d[0] > 1e-15))
        t_end = max(t_end, int(t[below[0]]) if below.size else int(t[-1]))
    t_end = min(int(t[-1]), int(1.15 * t_end))
    for toy in TOYS:
        d = arr[f"dist_{toy}"]
        ax_d.semilogy(t, d / d[0], color=_COLORS[toy], lw=1.0, label=toy)
    ax_d.semilogy(t, s**t, **style("prediction", label=r"$\sqrt{\mu}^t$"))
    ax_d.set_ylim(1e-16, 10.0)
    ax_d.set_xlim(0, t_end)
    ax_d.set_xlabel("step t")
    ax_d.set_ylabel(r"$\|x_t - x^*\| / \|x_0 - x^*\|$")
    ax_d.set_title(rf"distance to optimum, $\mu$={mu_s:g}")
    ax_d.legend(fontsize=6.5)
    for toy in ("smooth", "stitched"):
        v = arr[f"visited_ah_{toy}"]
        ax_v.plot(np.arange(v.size), v, ".", ms=1.5, color=_COLORS[toy], label=toy)
    ax_v.axhspan((1 - s) ** 2, (1 + s) ** 2, color="0.88", label="robust interval")
    ax_v.set_xlim(0, t_end)
    ax_v.set_yscale("log")
    ax_v.set_xlabel("step t")
    ax_v.set_ylabel(r"$\alpha\, h(x_t)$ visited")
    ax_v.set_title("curvature seen by the runs")
    ax_v.legend(fontsize=7, markerscale=6)
    m = np.linspace(mus.min() - 0.05, min(mus.max() + 0.05, 0.99), 100)
    ax_r.plot(np.sqrt(m), np.sqrt(m), **style("prediction", label=r"theory $\sqrt{\mu}$"))
    for toy in TOYS:
        ax_r.errorbar(
            np.sqrt(mus),
            arr[f"rate_{toy}"],
            yerr=arr[f"stderr_{toy}"],
            fmt=_MARKERS[toy],
            ms=4,
            mfc="none",
            color=_COLORS[toy],
            label=toy,
        )
    ax_r.set_xlabel(r"$\sqrt{\mu}$")
    ax_r.set_ylabel("measured rate")
    ax_r.set_title(r"YellowFin's $\alpha = (1-\sqrt{\mu})^2 / h_{min}$")
    ax_r.legend(fontsize=6.5)
    fr = arr["scan_fractions"]
    for toy in ("smooth", "stitched"):
        r = np.minimum(arr[f"scan_rate_{toy}"], 1.05)
        ax_s.plot(fr, r, _MARKERS[toy], mfc="none", color=_COLORS[toy], label=f"measured, {toy}")
    ax_s.axhline(s, **style("prediction", label=r"$\sqrt{\mu}$"))
    ax_s.axhline(1.0, color="0.5", lw=0.7, ls=":", label="no convergence")
    ax_s.set_xlabel("position of alpha in the robust interval (0 = YellowFin)")
    ax_s.set_ylabel("measured rate")
    ax_s.set_title(rf"beyond the claim: $\alpha$ scan, $\mu$={mu_s:g}")
    ax_s.legend(fontsize=6.5)
    return fig


EXPERIMENT_CLAIM = (
    "With YellowFin's tuning alpha = (1 - sqrt(mu))^2 / h_min, which keeps alpha*h(x) in the "
    "robust interval, heavy ball converges at rate sqrt(mu) (within 2%) on smooth and stitched "
    "non-convex toys and their separable versions."
)

EXPERIMENT = register(
    Experiment(
        name="nonconvex-constant-rate",
        title="Constant rate on non-convex toys via generalised curvature",
        claim=EXPERIMENT_CLAIM,
        config=NonconvexRateConfig,
        run=run,
        plot=plot,
        device="cpu",
        order=3,
    )
)
