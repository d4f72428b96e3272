"""Experiment 3: a constant ``sqrt(mu)`` rate on non-convex toys, via the generalised curvature.

Claim (Zhang & Mitliagkas, arXiv 1706.03471, Sec. 2.3, Eq. (9)-(10) and their toy figure;
reference heavy_ball.md, "Beyond quadratics"): with the generalised curvature
``h(x) = f'(x) / (x - x*)`` heavy ball on a 1-D function is ``e_{t+1} = A_t e_t`` with ``A_t`` the
quadratic operator at ``h(x_t)``. (1) Tuned by YellowFin's rule ``alpha = (1 - sqrt(mu))^2 /
h_min``, which keeps every ``alpha h(x)`` in the robust interval, heavy ball converges at
``sqrt(mu)`` (within 2%) on a smooth non-convex toy, a stitched one and their separable versions.
(2) More generally, the generalised curvature predicts, setting by setting, which ``(alpha, mu)``
keep the rate: ``sqrt(mu)`` where theory's curvature range times ``alpha`` lies in the robust
interval, slower where it leaves it on the lazy side (frozen-curvature reading of Eq. (10)).

Part (2) is empirical: spectral radius is not sub-multiplicative, so robust curvature is no proof
(``rate-failures`` builds counterexamples). What is certain is the identity ``det A_t = mu``: the
two Lyapunov exponents multiply to ``mu``, so no run can beat ``sqrt(mu)``; it is tested in the
unit tests and shown here as an identity check that decides nothing.

Preconditions: both toys are non-convex (min ``f''`` < 0) and the fitted windows stay outside the
smooth toy's quadratic core. Prediction: theory's ``f'`` is the closed form each toy documents
(verified against the simulator's gradient); :func:`theory.curvature_range` over decade shells down
to below the measurement floor (:func:`shell_curvature_range`), :func:`theory.robust_interval` of
that range (YellowFin's ``alpha`` is its left end), and per setting
:func:`theory.robust_on_interval` (keeps ``sqrt(mu)`` iff robust). Measurement: heavy ball
(:func:`optimizers.heavy_ball`) in float64 from several starts; the rate is the late log-slope of
the error-state norm (:func:`simulators.measure_rate`); a setting keeps the rate when the bootstrap
interval over starts of ``rate / sqrt(mu) - 1`` (widened by the fit error) lies in
``[-rel_tol, rel_tol]``, misses it when outside, and is unresolved otherwise.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

import theory
from experiments.framework import Experiment, Record, check, register
from experiments.library import _nonconvex_curvature as nc
from experiments.library._nonconvex_curvature import shell_curvature_range, toy_fprime
from experiments.library._nonconvex_plot import TOYS, plot
from experiments.library._nonconvex_text import EXPERIMENT_CLAIM, scan_note, summary, tolerance
from optimizers import heavy_ball
from simulators import measure_rate, separable, smooth_nonconvex_1d, stitched_nonconvex_1d, sweep

__all__ = [
    "EXPERIMENT",
    "NonconvexRateConfig",
    "run",
    "shell_curvature_range",
    "toy_fprime",
]


@dataclasses.dataclass(frozen=True)
class NonconvexRateConfig:
    """Toys, momenta, scan, starts, run length and tolerances.

    Attributes:
        smooth_h: ``(h_min, h_max)`` of the smooth toy's generalised curvature.
        smooth_omega: frequency of the smooth toy's log-periodic curvature oscillation.
        smooth_scale: the smooth toy's core radius (``h -> h_max`` below it); far below the
            measurement floor, so the fitted window never sees the quadratic core.
        stitched_h: ``(h_min, h_max)`` of the stitched toy.
        stitched_ratio: shell ratio of the stitched toy (curvature jumps once per shell).
        dim: dimension of the separable versions.
        mus: momenta; each must be at least :func:`theory.min_robust_momentum` of the toys'
            curvature ranges. Every scan runs at each of them.
        positions: scan positions of ``alpha`` (1-D toys): ``p`` in ``[0, 1]`` is
            ``alpha_lo + p (alpha_hi - alpha_lo)`` in the robust interval (0 = YellowFin's
            ``alpha``, must be present), ``p`` in ``(-1, 0)`` is ``alpha_lo (1 + p)`` (lazy side).
        figure_mu: momentum of the distance and visited-curvature panels (one of ``mus``).
        starts: starts per setting, ``x0 = x* + c (x0_default - x*)`` with ``|c|`` log-uniform in
            ``start_range`` and a random sign (drawn from the seed).
        start_range: range of ``|c|``.
        steps: heavy-ball steps per run.
        floor: relative precision floor of the rate fit (``x* = 0``: float64 resolves the error
            far below ``eps``).
        region: the curvature range is computed for ``|x - x*|`` up to ``region`` times the
            largest start distance (the toys are self-similar; the visited curvature is checked
            against theory's range at every visited scale).
        shell_points: grid points per decade shell of :func:`theory.curvature_range`.
        rel_tol: the claim's band: a setting keeps the rate when ``|rate / sqrt(mu) - 1| <=
            rel_tol`` over its whole measured interval.
        z: fit errors added to each side of the bootstrap interval (:func:`keeps_rate`).
        floor_rtol: relative slack of the identity ``rate >= sqrt(mu)`` (with ``4`` fit errors).
        grad_rtol: allowed relative gap between theory's closed-form ``f'`` and the simulator's
            gradient (measured: about ``1e-13``).
    """

    smooth_h: tuple[float, float] = (1.0, 9.0)
    smooth_omega: float = 1.0
    smooth_scale: float = 1e-120
    stitched_h: tuple[float, float] = (1.0, 4.0)
    stitched_ratio: float = 4.0
    dim: int = 8
    mus: tuple[float, ...] = (0.5, 0.64, 0.81, 0.9)
    positions: tuple[float, ...] = (-0.5, -0.2, 0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 1.0)
    figure_mu: float = 0.81
    starts: int = 8
    start_range: tuple[float, float] = (0.3, 3.0)
    steps: int = 3000
    floor: float = 1e-100
    region: float = 1e4
    shell_points: int = 401
    rel_tol: float = 0.02
    z: float = 2.0
    floor_rtol: float = 1e-3
    grad_rtol: float = 1e-9

    def __post_init__(self) -> None:
        for name in ("smooth_h", "stitched_h"):
            lo, hi = getattr(self, name)
            if not 0.0 < lo < hi:
                raise ValueError(f"{name} must be (h_min, h_max) with 0 < h_min < h_max")
        if not self.mus or not all(0.0 < m < 1.0 for m in self.mus):
            raise ValueError(f"mus must be a non-empty tuple of momenta in (0, 1) (got {self.mus})")
        if self.figure_mu not in self.mus:
            raise ValueError(f"figure_mu must be one of mus {self.mus} (got {self.figure_mu})")
        if 0.0 not in self.positions or not all(-1.0 < p <= 1.0 for p in self.positions):
            raise ValueError(f"positions must lie in (-1, 1] and include 0 (got {self.positions})")
        if not self.stitched_ratio > 1.0:
            raise ValueError(f"stitched_ratio must be > 1 (got {self.stitched_ratio})")
        if self.dim < 2 or self.starts < 2 or self.steps < 100:
            raise ValueError("dim must be >= 2, starts >= 2 and steps >= 100")
        if not 0.0 < self.start_range[0] <= self.start_range[1]:
            raise ValueError(f"start_range must be 0 < lo <= hi (got {self.start_range})")
        if not 0.0 < self.floor < 1e-3 or not self.smooth_scale > 0.0:
            raise ValueError("floor must lie in (0, 1e-3) and smooth_scale must be > 0")
        if not self.region >= 1.0:
            raise ValueError(f"region must be >= 1 (got {self.region})")

    @classmethod
    def quick(cls) -> NonconvexRateConfig:
        """Two momenta, seven scan positions, four starts and shorter runs."""
        return cls(
            mus=(0.5, 0.81),
            positions=(-0.5, -0.2, 0.0, 0.25, 0.5, 0.75, 1.0),
            starts=4,
            steps=1500,
        )


def _hb(learning_rate, momentum):
    return heavy_ball(learning_rate, momentum)


def _objectives(cfg: NonconvexRateConfig) -> dict:
    smooth = smooth_nonconvex_1d(*cfg.smooth_h, omega=cfg.smooth_omega, scale=cfg.smooth_scale)
    stitched = stitched_nonconvex_1d(*cfg.stitched_h, ratio=cfg.stitched_ratio)
    one_d = {"smooth": smooth, "stitched": stitched}
    return one_d | {f"{t}-separable": separable(o, cfg.dim) for t, o in one_d.items()}


def run(cfg: NonconvexRateConfig, seed: int) -> Record:
    """Theory's curvature range and per-setting prediction; measured rates from several starts."""
    objectives = _objectives(cfg)
    rng = np.random.default_rng(seed)
    factors = 10.0 ** rng.uniform(*np.log10(cfg.start_range), cfg.starts)
    factors *= rng.choice([-1.0, 1.0], cfg.starts)
    key = jax.random.key(seed)
    mus = np.asarray(cfg.mus, np.float64)
    decades = int(np.ceil(-np.log10(cfg.floor))) + 4  # theory's region reaches below the floor
    fprimes, ranges, regions, alphas, predicted = {}, {}, {}, {}, {}
    rates, errs, keep, intervals, premise, dists, visited = {}, {}, {}, {}, {}, {}, {}
    h_seen, core, bound, grad_gap, not_converging, curv_min = {}, {}, {}, {}, {}, {}
    for toy, obj in objectives.items():
        base = toy.removesuffix("-separable")
        one_d = toy == base
        x_star = float(np.asarray(objectives[base].x_star)[0])
        dist = float(np.max(np.abs(np.asarray(obj.x0) - np.asarray(obj.x_star))))
        dist *= float(np.max(np.abs(factors)))
        if base not in fprimes:  # a separable toy has the curvature of its 1-D toy
            fprimes[base] = (
                nc.smooth_fprime(*cfg.smooth_h, cfg.smooth_omega, cfg.smooth_scale, x_star)
                if base == "smooth"
                else nc.stitched_fprime(*cfg.stitched_h, cfg.stitched_ratio, x_star)
            )
            ranges[base] = shell_curvature_range(
                fprimes[base], x_star, dist, cfg.region, cfg.shell_points, decades=decades
            )
        fprime, (h_lo, h_hi, r_lo, r_hi) = fprimes[base], ranges[base]
        regions[toy] = (r_lo, r_hi)
        mu_min = float(theory.min_robust_momentum(h_hi / h_lo))
        if mus.min() < mu_min:
            raise ValueError(
                f"mus must be >= min_robust_momentum = {mu_min:.4f} for the {toy} toy "
                f"(curvature range [{h_lo:.4g}, {h_hi:.4g}])"
            )
        positions = cfg.positions if one_d else (0.0,)
        alpha, mu_grid = nc.scan_grid(mus, positions, h_lo, h_hi)
        alphas[toy] = alpha
        # theory's per-setting prediction: alpha h(x) robust on the whole region, both sides of x*
        predicted[toy] = np.asarray(
            theory.robust_on_interval(alpha, mu_grid, fprime, x_star, x_star - r_hi, x_star)
        ) & np.asarray(
            theory.robust_on_interval(alpha, mu_grid, fprime, x_star, x_star, x_star + r_hi)
        )
        sim_fprime = toy_fprime(obj) if one_d else None  # the simulator's gradient
        x0_default = np.asarray(obj.x0, np.float64) - np.asarray(obj.x_star, np.float64)
        rate = np.empty((cfg.starts, *alpha.shape))
        err = np.empty_like(rate)
        window_min, n_bad = np.inf, 0
        seen_lo, seen_hi, robust_seen = np.inf, -np.inf, np.ones(alpha.shape, bool)
        for s, c in enumerate(factors):
            with jax.enable_x64(True):
                traj = sweep(
                    _hb,
                    {"learning_rate": alpha.ravel(), "momentum": mu_grid.ravel()},
                    obj,
                    cfg.steps,
                    key,
                    x0=np.asarray(obj.x_star, np.float64) + c * x0_default,
                    record_coords=None,
                )
            e = np.asarray(traj.iterates[:, 0], np.float64) - np.asarray(obj.x_star, np.float64)
            sq = np.sum(e * e, axis=-1)
            est = measure_rate(np.sqrt(sq[:, 1:] + sq[:, :-1]), rel_floor=cfg.floor)
            diverged = np.asarray(traj.diverged[:, 0])
            rate[s] = np.where(diverged, np.inf, est.rate).reshape(alpha.shape)
            err[s] = np.asarray(est.stderr).reshape(alpha.shape)
            n_bad += int(np.sum(~(rate[s] < 1.0)))  # cycles and divergence: misses
            state = np.sqrt(sq[:, 1:] + sq[:, :-1])
            window = np.arange(state.shape[1]) >= np.asarray(est.start)[:, None]
            window &= np.arange(state.shape[1]) < np.asarray(est.stop)[:, None]
            window_min = min(window_min, float(np.min(state[window], initial=np.inf)))
            if s == 0:
                i = int(np.flatnonzero(mus == cfg.figure_mu)[0]) * alpha.shape[1]
                i += positions.index(0.0)
                dists[toy] = np.sqrt(sq[i])
            if one_d:  # the premise measured on the iterates, inside theory's region
                ok, h = nc.visited_premise(
                    alpha.ravel(), mu_grid.ravel(), fprime, x_star, e[..., 0], r_lo
                )
                robust_seen &= ok.reshape(alpha.shape)
                seen_lo, seen_hi = min(seen_lo, np.nanmin(h)), max(seen_hi, np.nanmax(h))
                if s == 0:
                    visited[toy] = alpha.ravel()[i] * h[i]
                    x_t = x_star + e[..., 0][np.isfinite(h)]
                    sim = sim_fprime(x_t)
                    grad_gap[toy] = float(np.max(np.abs(sim - fprime(x_t)) / np.abs(sim)))
        core[toy], not_converging[toy] = window_min, n_bad
        if one_d:  # the test bed is non-convex: min f'' of the simulator's gradient
            curv_min[toy] = nc.min_second_derivative(sim_fprime, x_star)
        rates[toy], errs[toy] = rate, err
        sqrt_mu = np.sqrt(mu_grid)
        bound[toy] = sqrt_mu * (1.0 - cfg.floor_rtol)
        outcome = [
            nc.keeps_rate(
                rate[:, k, j] / sqrt_mu[k, j] - 1.0,
                err[:, k, j] / sqrt_mu[k, j],
                cfg.rel_tol,
                cfg.z,
                seed=seed,
            )
            for k in range(alpha.shape[0])
            for j in range(alpha.shape[1])
        ]
        keep[toy] = np.array([o[0] for o in outcome], dtype=object).reshape(alpha.shape)
        intervals[toy] = np.array([o[1] for o in outcome]).reshape(*alpha.shape, 2)
        if one_d:
            premise[toy], h_seen[toy] = robust_seen, (seen_lo, seen_hi)

    j0 = {t: (cfg.positions if t in premise else (0.0,)).index(0.0) for t in TOYS}
    yf_keep = [keep[t][k, j0[t]] for t in TOYS for k in range(mus.size)]
    yf_ok = False if False in yf_keep else (None if None in yf_keep else True)
    yf_rate = {t: np.mean(rates[t][:, :, j0[t]], axis=0) for t in TOYS}
    worst = max(float(np.max(np.abs(intervals[t][:, j0[t]]))) for t in TOYS)
    scan_ok, n_agree, n_resolved, n_total = nc.agreement(
        np.concatenate([predicted[t].ravel() for t in premise]),
        np.concatenate([keep[t].ravel() for t in premise]),
    )
    slack = 1e-9 * max(r[1] for r in ranges.values())  # the extremes are polished by Brent
    seen_ok = all(
        ranges[t][0] - slack <= h_seen[t][0] and h_seen[t][1] <= ranges[t][1] + slack
        for t in premise
    )
    floor_ok = all(  # det A_t = mu: no run converges faster than sqrt(mu) (fit error only)
        bool(np.all(rates[t] >= bound[t] - 4.0 * np.nan_to_num(errs[t], nan=0.0))) for t in TOYS
    )
    checks = [
        check(
            "toys_are_nonconvex",
            "precondition",
            all(v < 0.0 for v in curv_min.values()),
            predicted="min f'' < 0",
            measured=curv_min,
            note="min of f'' (central differences of the simulator's gradient over 8 decades)",
        ),
        check(
            "fit_windows_outside_the_smooth_core",
            "precondition",
            min(core["smooth"], core["smooth-separable"]) >= 1e3 * cfg.smooth_scale,
            predicted=f">= 1e3 x smooth_scale = {1e3 * cfg.smooth_scale:.1e}",
            measured={t: core[t] for t in ("smooth", "smooth-separable")},
            note="smallest error-state norm inside the fitted windows of the smooth toys: below "
            "smooth_scale the toy is the quadratic h_max",
        ),
        check(
            "closed_form_gradient_matches_simulator",
            "verification",
            max(grad_gap.values()) <= cfg.grad_rtol,
            predicted="theory's closed-form f' of each toy",
            measured={t: f"{v:.1e}" for t, v in grad_gap.items()},
            tolerance=f"{cfg.grad_rtol:g} relative",
            note="the simulator's gradient at every visited iterate of the first start",
        ),
        check(
            "visited_curvature_in_theory_range",
            "verification",
            seen_ok,
            predicted={t: list(ranges[t][:2]) for t in premise},
            measured={t: list(h_seen[t]) for t in premise},
            tolerance=f"{slack:.1e} absolute",
            note="h(x_t) at every visited iterate lies in theory's curvature range",
        ),
        check(
            "rate_is_sqrt_mu_at_yellowfin_alpha",
            "reproduction",
            yf_ok,
            predicted=np.sqrt(mus),
            measured={t: yf_rate[t] for t in TOYS},
            tolerance={"band": cfg.rel_tol, "worst_interval_end": worst},
            note=f"{yf_keep.count(True)}/{len(yf_keep)} (toy, mu) keep sqrt(mu), "
            f"{yf_keep.count(False)} miss, {yf_keep.count(None)} unresolved",
            headline=True,
        ),
        check(
            "robust_curvature_predicts_the_rate",
            "reproduction",
            scan_ok,
            predicted={t: predicted[t] for t in premise},
            measured={t: keep[t].tolist() for t in premise},
            tolerance={"band": cfg.rel_tol, "z": cfg.z},
            note=scan_note({t: keep[t] for t in premise}, predicted, n_agree, n_resolved, n_total),
        ),
        check(
            "no_run_beats_sqrt_mu",
            "identity",
            floor_ok,
            predicted="rate >= sqrt(mu) (det A_t = mu)",
            tolerance=f"{cfg.floor_rtol:g} relative + 4 fit errors",
            note="the two Lyapunov exponents multiply to mu (unit-tested)",
        ),
    ]
    return Record(
        claim=EXPERIMENT_CLAIM,
        prediction={
            "curvature_range": {t: list(ranges[t][:2]) for t in premise},
            "region_abs_distance": {t: list(regions[t]) for t in TOYS},
            "yellowfin_alpha": {t: alphas[t][:, j0[t]] for t in TOYS},
            "rate_sqrt_mu": np.sqrt(mus),
            "scan_keeps_rate": {t: predicted[t] for t in premise},
        },
        measurement={
            "yellowfin_rate": yf_rate,
            "yellowfin_interval": {t: intervals[t][:, j0[t]] for t in TOYS},
            "scan_keeps_rate": {t: keep[t].tolist() for t in premise},
            "scan_interval": {t: intervals[t] for t in premise},
            "scan_premise_holds": premise,
            "scan_agreement": {"agree": n_agree, "resolved": n_resolved, "settings": n_total},
            "visited_curvature": {t: list(h_seen[t]) for t in premise},
            "runs_not_converging": not_converging,
            "start_factors": factors,
        },
        tolerance=tolerance(cfg.rel_tol, cfg.z, cfg.starts),
        checks=checks,
        summary=summary(yf_keep, worst, n_agree, n_resolved, n_total, mus.size, scan_ok, len(TOYS)),
        arrays={
            "mus": mus,
            "positions": np.asarray(cfg.positions),
            "figure_mu": np.array(cfg.figure_mu),
            "t": np.arange(cfg.steps + 1),
            **{f"rate_{t}": yf_rate[t] for t in TOYS},
            **{f"interval_{t}": intervals[t][:, j0[t]] for t in TOYS},
            **{f"alpha_{t}": alphas[t][:, j0[t]] for t in TOYS},
            **{f"range_{t}": np.asarray(ranges[t][:2]) for t in premise},
            **{f"dist_{t}": dists[t] for t in TOYS},
            **{f"scan_rate_{t}": np.mean(rates[t], axis=0) for t in premise},
            **{f"scan_interval_{t}": intervals[t] for t in premise},
            **{f"scan_predicted_{t}": predicted[t] for t in premise},
            **{f"scan_keeps_{t}": nc.outcome_codes(keep[t]) for t in premise},
            **{f"visited_ah_{t}": visited[t] for t in visited},
            **nc.curvature_profiles(objectives, fprimes),
        },
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
