"""Experiment 4: where the ``sqrt(mu)`` rate fails although the curvature stays robust.

Claim (reference heavy_ball.md, "Beyond quadratics"; Lessard, Recht, Packard, SIAM J. Optim. 2016,
arXiv 1408.3595, Sec. 4.6; Goujaud, Taylor, Dieuleveut, arXiv 2307.11291): the robust-region rate
guarantee is a spectral statement about one operator ``A(h)``; on a non-quadratic objective heavy
ball multiplies operators ``A(h(x_t))`` whose spectral radii are all ``sqrt(mu)``, and spectral
radius is not sub-multiplicative, so the guarantee does not extend to every objective.

Two failures, each against a quadratic control where the rate holds:

* Lessard-Recht-Packard: ``f'(x) = 25x`` (``x < 1``), ``x + 24`` (``1 <= x < 2``), ``25x - 24``
  (``x >= 2``), smooth and strongly convex (``m = 1``, ``L = 25``), with Polyak's tuning for
  ``[1, 25]``: ``alpha = 1/9``, ``mu = 4/9``. The generalised curvature stays in ``[13, 25]``,
  inside the (closed) robust interval, so the local prediction is the rate ``sqrt(mu) = 2/3``;
  started from rest at ``x0`` in about ``[3.07, 3.46]`` the iterates settle into a limit cycle.
  Control: quadratics with curvatures ``13 ... 22`` (strictly inside the interval), same tuning.
* An abrupt-curvature objective: the stitched toy with curvature jumping between ``1`` and ``16``
  once per shell (ratio 4), ``mu = 0.9`` and ``alpha`` across the robust interval: every local
  operator has radius ``sqrt(mu)``, yet the measured rate is slower, or the iterates do not
  converge or even diverge. Control: the quadratic with spectrum ``[1, 16]`` at the same
  ``(alpha, mu)``.

Prediction: :func:`theory.curvature_range` (by decade shells, as in ``nonconvex-constant-rate``),
:func:`theory.robust_on_interval` and :func:`theory.spectral_radius` of the extreme curvatures.
Measurement: heavy ball (:func:`optimizers.heavy_ball`) in float64 with the simulators
(:func:`simulators.simulate`, :func:`simulators.sweep`); limit cycles are detected on the
recorded iterates (the distance stays above a threshold over the last records, and the tail
repeats with a period ``p``), rates by :func:`simulators.measure_rate` on the error-state
norm with block-jackknife errors.

Checks (DESIGN.md, "What a verdict rests on"): the precondition is theory's statement that every
visited curvature is robust (otherwise the failures say nothing about the guarantee); the
quadratic controls are verifications (theory against simulation, failing only on a bug); the two
failures are reproductions (a published counterexample and a derived one, either of which could
converge at ``sqrt(mu)`` after all), the limit cycle of Lessard et al. being the headline.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

import theory
from experiments.framework import Experiment, Record, register
from experiments.library._rate_failures_plot import plot
from experiments.library._rate_failures_text import checks, summary
from experiments.library.nonconvex_constant_rate import shell_curvature_range, toy_fprime
from optimizers import heavy_ball
from simulators import (
    lessard_counterexample,
    measure_rate,
    quadratic,
    simulate,
    stitched_nonconvex_1d,
    sweep,
)


@dataclasses.dataclass(frozen=True)
class RateFailuresConfig:
    """Starts, objectives, run lengths and detection thresholds.

    Attributes:
        lessard_x0: interval of starts (from rest) of the counterexample.
        lessard_points: starts, evenly spaced over ``lessard_x0``.
        lessard_contrast_x0: a start outside the cycle's basin, shown for contrast (not judged).
        lessard_steps: steps per counterexample run.
        control_h: curvatures of the counterexample's quadratic control.
        tail: records at the end of a run examined for a limit cycle.
        max_period: longest period searched.
        cycle_rtol: two tail records ``p`` apart agree within ``cycle_rtol * max(1, |x|)``.
        no_convergence: a cycle requires ``|x_t - x*|`` above this over the whole tail.
        abrupt_h: ``(h_min, h_max)`` of the stitched toy.
        abrupt_ratio: its shell ratio.
        abrupt_mu: momentum of the abrupt-curvature runs.
        abrupt_fracs: positions of ``alpha`` in the robust interval (0 = left end, 1 = right).
        abrupt_steps: steps per abrupt-curvature run.
        dim_control: curvatures of the abrupt case's quadratic control (geometric in ``abrupt_h``).
        region: curvature ranges are computed for ``|x - x*|`` up to ``region`` x start distance.
        shell_points: grid points per decade shell of :func:`theory.curvature_range`.
        rel_tol: margin of a miss: an abrupt-toy rate misses the prediction when it exceeds it
            by more than this fraction and ``z_tol`` jackknife errors, so that a miss is never a
            fitting artefact (the measured misses are 5% slow or worse).
        z_tol: tolerance in block-jackknife standard errors (the controls' largest
            ``|measured - rho| / stderr`` is below 1.5).
        abs_tol: floor of the controls' tolerance: the late slope of a sum of exponentials
            carries the decaying ratio of the second-slowest mode (below 1e-6 here).
    """

    lessard_x0: tuple[float, float] = (3.07, 3.46)
    lessard_points: int = 14
    lessard_contrast_x0: float = 3.0
    lessard_steps: int = 600
    control_h: tuple[float, ...] = (13.0, 16.0, 19.0, 22.0)
    tail: int = 60
    max_period: int = 20
    cycle_rtol: float = 1e-9
    no_convergence: float = 0.1
    abrupt_h: tuple[float, float] = (1.0, 16.0)
    abrupt_ratio: float = 4.0
    abrupt_mu: float = 0.9
    abrupt_fracs: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    abrupt_steps: int = 3000
    dim_control: int = 8
    region: float = 4.0
    shell_points: int = 801
    rel_tol: float = 0.01
    z_tol: float = 4.0
    abs_tol: float = 1e-5

    def __post_init__(self) -> None:
        lo, hi = self.lessard_x0
        if not lo < hi:
            raise ValueError(f"lessard_x0 must be an interval (lo, hi) with lo < hi (got {lo, hi})")
        if not all(0.0 < f < 1.0 for f in self.abrupt_fracs) or not self.abrupt_fracs:
            raise ValueError(f"abrupt_fracs must be positions in (0, 1) (got {self.abrupt_fracs})")
        if not 0.0 < self.abrupt_mu < 1.0:
            raise ValueError(f"abrupt_mu must lie in (0, 1) (got {self.abrupt_mu})")
        h_lo, h_hi = self.abrupt_h
        if not 0.0 < h_lo < h_hi:
            raise ValueError("abrupt_h must be (h_min, h_max) with 0 < h_min < h_max")
        if h_hi / h_lo > float(theory.tolerated_dynamic_range(self.abrupt_mu)):
            raise ValueError("abrupt_h must fit the robust region of abrupt_mu")
        if not all(h > 0 for h in self.control_h) or not self.control_h:
            raise ValueError(f"control_h must be positive curvatures (got {self.control_h})")
        if self.tail < 2 * self.max_period or self.lessard_steps < self.tail + 1:
            raise ValueError("tail must be >= 2 max_period and lessard_steps > tail")
        if self.lessard_points < 1 or self.abrupt_steps < 100 or self.dim_control < 2:
            raise ValueError("lessard_points >= 1, abrupt_steps >= 100 and dim_control >= 2")

    @classmethod
    def quick(cls) -> RateFailuresConfig:
        """Fewer starts and learning rates, shorter abrupt runs (seconds on a CPU)."""
        return cls(
            lessard_points=6,
            lessard_steps=400,
            abrupt_fracs=(0.1, 0.3, 0.5, 0.7, 0.9),
            abrupt_steps=2000,
            shell_points=401,
        )


def limit_cycle(x: np.ndarray, x_star: float, cfg: RateFailuresConfig) -> tuple[int, float]:
    """``(period, min distance)`` of a 1-D run's tail; period 0 when it is not a limit cycle.

    A limit cycle: ``|x_t - x*| > no_convergence`` over the last ``tail`` records and the tail
    repeats, ``|x_t - x_{t-p}| <= cycle_rtol * max(1, |x_t|)``, for the smallest such
    ``p <= max_period``.
    """
    tail = np.asarray(x[-cfg.tail :], np.float64)
    dmin = float(np.min(np.abs(tail - x_star)))
    if not (np.all(np.isfinite(tail)) and dmin > cfg.no_convergence):
        return 0, dmin
    scale = np.maximum(1.0, np.abs(tail))
    for p in range(1, cfg.max_period + 1):
        if np.all(np.abs(tail[p:] - tail[:-p]) <= cfg.cycle_rtol * scale[p:]):
            return p, dmin
    return 0, dmin


def _hb(learning_rate, momentum):
    return heavy_ball(learning_rate, momentum)


def _state_rate(err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rate and jackknife error of ``||(e_t, e_{t-1})||`` for errors ``(..., R, dim)``."""
    sq = np.sum(err * err, axis=-1)
    est = measure_rate(np.sqrt(sq[..., 1:] + sq[..., :-1]))
    return np.asarray(est.rate), np.asarray(est.stderr)


def _lessard(cfg: RateFailuresConfig, key: jax.Array) -> dict:
    obj = lessard_counterexample()
    alpha, mu = obj.meta("tuning")
    fprime = toy_fprime(obj)
    h_lo, h_hi, _, r_hi = shell_curvature_range(
        fprime, 0.0, max(abs(v) for v in cfg.lessard_x0), cfg.region, cfg.shell_points
    )
    robust = theory.robust_on_interval(alpha, mu, fprime, 0.0, -r_hi, 0.0) and (
        theory.robust_on_interval(alpha, mu, fprime, 0.0, 0.0, r_hi)
    )
    local = float(np.max(theory.spectral_radius(alpha, mu, np.array([h_lo, h_hi]))))
    starts = np.linspace(*cfg.lessard_x0, cfg.lessard_points)
    opt = heavy_ball(alpha, mu)  # one optimizer object: one compiled run for every start
    xs, periods, dmins = [], [], []
    with jax.enable_x64(True):
        for x0 in [*starts, cfg.lessard_contrast_x0]:
            traj = simulate(obj, opt, cfg.lessard_steps, key, x0=[x0])
            x = np.asarray(traj.iterates[:, 0], np.float64)
            p, dmin = limit_cycle(x, 0.0, cfg)
            xs.append(x)
            periods.append(p)
            dmins.append(dmin)
        control = quadratic(cfg.control_h, x0=np.full(len(cfg.control_h), float(np.mean(starts))))
        ctraj = simulate(control, opt, cfg.lessard_steps, key)
    c_rate, c_err = _state_rate(np.asarray(ctraj.iterates, np.float64)[None])
    c_pred = float(np.max(theory.spectral_radius(alpha, mu, np.asarray(cfg.control_h))))
    return {
        "alpha": alpha,
        "mu": mu,
        "range": (h_lo, h_hi),
        "robust": robust,
        "local_rate": local,
        "starts": starts,
        "x": np.stack(xs),
        "periods": np.asarray(periods),
        "dmin": np.asarray(dmins),
        "control_dist": np.asarray(ctraj.distances, np.float64),
        "control_rate": float(c_rate[0]),
        "control_stderr": float(c_err[0]),
        "control_pred": c_pred,
    }


def _abrupt(cfg: RateFailuresConfig, key: jax.Array) -> dict:
    h_min, h_max = cfg.abrupt_h
    obj = stitched_nonconvex_1d(h_min, h_max, ratio=cfg.abrupt_ratio)
    x_star = float(np.asarray(obj.x_star)[0])
    dist0 = float(abs(np.asarray(obj.x0)[0] - x_star))
    fprime = toy_fprime(obj)
    h_lo, h_hi, _, r_hi = shell_curvature_range(fprime, x_star, dist0, cfg.region, cfg.shell_points)
    mu = cfg.abrupt_mu
    a_lo, a_hi = (float(v) for v in theory.robust_interval(mu, h_lo, h_hi))
    fracs = np.asarray(cfg.abrupt_fracs)
    alphas = a_lo + fracs * (a_hi - a_lo)
    robust = [
        theory.robust_on_interval(a, mu, fprime, x_star, x_star - r_hi, x_star)
        and theory.robust_on_interval(a, mu, fprime, x_star, x_star, x_star + r_hi)
        for a in alphas
    ]
    local = np.max(theory.spectral_radius(alphas[:, None], mu, np.array([h_lo, h_hi])), axis=1)
    grid = {"learning_rate": alphas, "momentum": np.full(alphas.size, mu)}
    h_ctrl = np.geomspace(h_min, h_max, cfg.dim_control)
    control = quadratic(h_ctrl, x0=np.full(cfg.dim_control, dist0 / np.sqrt(cfg.dim_control)))
    with jax.enable_x64(True):
        traj = sweep(_hb, grid, obj, cfg.abrupt_steps, key, record_coords=None)
        ctraj = sweep(_hb, grid, control, cfg.abrupt_steps, key, record_coords=None)
    diverged = np.asarray(traj.diverged[:, 0])
    rate, err = _state_rate(np.asarray(traj.iterates[:, 0], np.float64) - x_star)
    rate = np.where(diverged, np.inf, rate)
    c_rate, c_err = _state_rate(np.asarray(ctraj.iterates[:, 0], np.float64))
    c_pred = np.max(theory.spectral_radius(alphas[:, None], mu, h_ctrl[None, :]), axis=1)
    return {
        "mu": mu,
        "range": (h_lo, h_hi),
        "interval": (a_lo, a_hi),
        "fracs": fracs,
        "alphas": alphas,
        "robust": robust,
        "local_rate": local,
        "rate": rate,
        "stderr": err,
        "diverged": diverged,
        "dist": np.asarray(traj.distances[:, 0], np.float64),
        "control_rate": c_rate,
        "control_stderr": c_err,
        "control_pred": c_pred,
        "control_dist": np.asarray(ctraj.distances[:, 0], np.float64),
        "t": np.asarray(traj.steps),
    }


def run(cfg: RateFailuresConfig, seed: int) -> Record:
    """The counterexample and the abrupt toy against theory's local rate, with their controls."""
    key = jax.random.key(seed)
    les = _lessard(cfg, key)
    ab = _abrupt(cfg, key)
    n = cfg.lessard_points
    cycles = les["periods"][:n] > 0
    c_tol = max(cfg.z_tol * les["control_stderr"], cfg.abs_tol)
    ab_dev = ab["rate"] / ab["local_rate"] - 1.0
    ab_slack = cfg.rel_tol + cfg.z_tol * np.nan_to_num(ab["stderr"], nan=0.0) / ab["local_rate"]
    ab_fail = ab["diverged"] | ~np.isfinite(ab_dev) | (ab_dev > ab_slack)
    ab_fail |= ~np.isfinite(ab["rate"])
    ctl_tol = np.maximum(cfg.z_tol * ab["control_stderr"], cfg.abs_tol)
    ctl_gap = np.abs(ab["control_rate"] - ab["control_pred"])
    ctl_ok = ctl_gap <= ctl_tol
    found = {
        "cycles": cycles,
        "periods": sorted({int(p) for p in les["periods"][:n]}),
        "control_gap": abs(les["control_rate"] - les["control_pred"]),
        "control_tol": c_tol,
        "ab_fail": ab_fail,
        "ab_ctl_ok": ctl_ok,
        "ab_ctl_gap": float(np.max(ctl_gap)),
        "ab_ctl_tol": float(np.max(ctl_tol)),
    }
    return Record(
        claim=EXPERIMENT_CLAIM,
        prediction={
            "lessard_curvature_range": les["range"],
            "lessard_tuning": {"alpha": les["alpha"], "mu": les["mu"]},
            "lessard_robust_on_region": les["robust"],
            "lessard_local_rate": les["local_rate"],
            "lessard_control_rate": les["control_pred"],
            "abrupt_curvature_range": ab["range"],
            "abrupt_robust_interval_alpha": ab["interval"],
            "abrupt_robust_on_region": ab["robust"],
            "abrupt_local_rate": ab["local_rate"],
            "abrupt_control_rate": ab["control_pred"],
        },
        measurement={
            "lessard_starts": les["starts"],
            "lessard_periods": les["periods"][:n],
            "lessard_min_tail_distance": les["dmin"][:n],
            "lessard_contrast_start": {
                "x0": cfg.lessard_contrast_x0,
                "period": int(les["periods"][n]),
                "min_tail_distance": float(les["dmin"][n]),
            },
            "lessard_control_rate": les["control_rate"],
            "lessard_control_stderr": les["control_stderr"],
            "abrupt_fracs": ab["fracs"],
            "abrupt_rate": ab["rate"],
            "abrupt_diverged": ab["diverged"],
            "abrupt_failures": int(ab_fail.sum()),
            "abrupt_control_rate": ab["control_rate"],
        },
        tolerance={
            "cycle": f"|x_t - x*| > {cfg.no_convergence:g} over the last {cfg.tail} records and "
            f"|x_t - x_(t-p)| <= {cfg.cycle_rtol:g} max(1, |x_t|) for some p <= {cfg.max_period}",
            "miss": "divergence, or measured > local rate (1 + rel_tol) + z stderr",
            "control": "|measured - rho| <= max(z stderr, abs_tol)",
            "rel_tol": cfg.rel_tol,
            "z": cfg.z_tol,
            "abs_tol": cfg.abs_tol,
            "why": "the controls are exact quadratics, so only the jackknife error of the late "
            "log-slope separates them from theory; a cycle is exact to float64 rounding",
        },
        checks=checks(cfg, les, ab, found),
        summary=summary(cfg, les, ab, found),
        arrays={
            "lessard_starts": les["starts"],
            "lessard_x": les["x"],
            "lessard_periods": les["periods"],
            "lessard_control_dist": les["control_dist"],
            "lessard_alpha_mu": np.array([les["alpha"], les["mu"]]),
            "lessard_contrast_x0": np.array(cfg.lessard_contrast_x0),
            "abrupt_fracs": ab["fracs"],
            "abrupt_alphas": ab["alphas"],
            "abrupt_rate": ab["rate"],
            "abrupt_stderr": ab["stderr"],
            "abrupt_diverged": ab["diverged"],
            "abrupt_failed": ab_fail,
            "abrupt_local_rate": ab["local_rate"],
            "abrupt_dist": ab["dist"],
            "abrupt_control_rate": ab["control_rate"],
            "abrupt_control_stderr": ab["control_stderr"],
            "abrupt_control_dist": ab["control_dist"],
            "abrupt_t": ab["t"],
            "abrupt_mu": np.array(ab["mu"]),
        },
    )


EXPERIMENT_CLAIM = (
    "The robust-region rate guarantee is a spectral statement that does not extend to every "
    "non-quadratic objective: with the generalised curvature inside the robust interval heavy "
    "ball cycles on the Lessard-Recht-Packard function and misses sqrt(mu) (or diverges) on an "
    "abrupt-curvature toy, while quadratic controls keep the rate."
)

EXPERIMENT = register(
    Experiment(
        name="rate-failures",
        title="Where the sqrt(mu) rate fails",
        claim=EXPERIMENT_CLAIM,
        config=RateFailuresConfig,
        run=run,
        plot=plot,
        device="cpu",
        order=4,
    )
)
