"""Experiment 6: the noise floor of stochastic heavy ball on quadratics and on the NQM.

Claim (reference heavy_ball.md, "Stochastic heavy ball: noise floor"; Zhang et al., "Which
algorithmic choices matter at which batch sizes?", arXiv 1907.04164, Sec. 3): with gradient
``h x + xi`` (noise variance ``c``) heavy ball settles at the stationary loss

    (1 + mu) alpha c / (2 (1 - mu) (2 (1 + mu) - alpha h))

per eigen-direction, and on the noisy quadratic model (``h_i = i^-p``, ``c_i = h_i / B``) at the
sum of these terms.

Prediction: :func:`theory.stationary_loss` over a grid of ``(alpha h, mu)`` and
:func:`theory.nqm_floor` with :func:`theory.nqm_spectrum`. Measurement: heavy ball
(:func:`optimizers.heavy_ball`) in float64 on (i) a diagonal quadratic whose ``replicas``
coordinates share the curvature ``h`` and receive independent Gaussian noise (every coordinate is
one independent copy of the 1-D problem) and (ii) :func:`simulators.noisy_quadratic_model`, each as
one vmapped :func:`simulators.sweep` over the grid and the seeds, started at the minimiser. The
stationary loss is :func:`simulators.stationary_estimate` of the recorded exact losses after a
burn-in; its standard error is the spread of the per-seed time averages over ``sqrt(seeds)``, which
already contains the autocorrelation of each series (independent seeds).

YellowFin's surrogate ``alpha^2 C / (1 - mu)`` for the stationary squared distance (Zhang &
Mitliagkas, arXiv 1706.03471, Sec. 3.1, the one-step objective summed over a geometric series) is
drawn next to the exact ``E (x - x*)^2`` (:func:`theory.stationary_variance`) and measured; it is
reported, not judged.

Checks (DESIGN.md, "What a verdict rests on"): two verifications, theory against simulation of a
linear system with additive noise, which fail only on a bug: the 1-D floors (the headline) and the
NQM floors. Each standardised gap ``(measured - predicted) / stderr`` must stay below a Bonferroni
Student-t threshold (family-wise ``family_error`` over all points); a pass also needs the
acceptance band (threshold x stderr) within ``resolution`` of every floor, else the check is
unresolved: a band too wide to see a 2% error proves nothing.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
from scipy import stats

import theory
from experiments.framework import Experiment, Record, check, register
from experiments.library._noise_floor_plot import plot
from optimizers import heavy_ball
from simulators import noisy_quadratic_model, quadratic, stationary_estimate, sweep


@dataclasses.dataclass(frozen=True)
class NoiseFloorConfig:
    """Grids, problem sizes and run lengths.

    Attributes:
        h: curvature of the 1-D quadratic.
        c: gradient-noise variance of the 1-D quadratic.
        alpha_h: grid of ``alpha h`` (each must stay below ``2 (1 + mu)`` for every ``mu``).
        mus: grid of momenta.
        replicas: independent copies of the 1-D problem per run (coordinates of one diagonal
            quadratic with equal curvatures; the recorded loss is divided by ``replicas``).
        nqm_dim: directions of the noisy quadratic model.
        nqm_p: spectrum decay ``h_i = i^-p``.
        nqm_batch: batch size ``B`` (``c_i = h_i / B``).
        nqm_alphas: learning rates on the NQM.
        nqm_mus: momenta on the NQM.
        steps: steps per run.
        seeds: independent seeds per grid point (>= 2, for the between-seed error).
        record_every: stride of the recorded losses.
        burn_bias: the burn-in is the first record after which the deterministic transient of the
            second moments, bounded by ``rho^(2t)`` with the spectral radius ``rho``, is below this.
        family_error: chance that a correct closed form fails the check by chance: the
            threshold on ``|gap| / stderr`` is the Bonferroni Student-t quantile over all points
            (see :func:`_threshold`).
        resolution: relative error the check must be able to detect: a pass needs the acceptance
            band (threshold x stderr) within this fraction of every floor; a wider band, with
            every gap inside it, is unresolved.
    """

    h: float = 1.0
    c: float = 1.0
    alpha_h: tuple[float, ...] = (0.03, 0.1, 0.3, 0.6, 1.0, 1.4, 1.8)
    mus: tuple[float, ...] = (0.0, 0.3, 0.6, 0.8, 0.9)
    replicas: int = 64
    nqm_dim: int = 100
    nqm_p: float = 1.0
    nqm_batch: int = 4
    nqm_alphas: tuple[float, ...] = (0.2, 0.4, 0.8, 1.2)
    nqm_mus: tuple[float, ...] = (0.0, 0.5, 0.9)
    steps: int = 10000
    seeds: int = 32
    record_every: int = 2
    burn_bias: float = 1e-6
    family_error: float = 0.01
    resolution: float = 0.02

    @classmethod
    def quick(cls) -> NoiseFloorConfig:
        """Coarser grids, fewer replicas, seeds and steps (seconds on a CPU)."""
        return cls(
            alpha_h=(0.1, 0.4, 1.0, 1.6),
            mus=(0.0, 0.5, 0.8, 0.9),
            replicas=32,
            nqm_dim=32,
            nqm_alphas=(0.2, 0.6, 1.2),
            nqm_mus=(0.0, 0.5, 0.9),
            steps=6000,
            seeds=32,
        )


def _check(cfg: NoiseFloorConfig) -> None:
    if not (cfg.h > 0 and cfg.c > 0):
        raise ValueError(f"h and c must lie in (0, inf) (got h={cfg.h!r}, c={cfg.c!r})")
    if cfg.seeds < 2:
        raise ValueError(f"seeds must be an integer >= 2 (got {cfg.seeds!r})")
    if not all(-1.0 < m < 1.0 for m in (*cfg.mus, *cfg.nqm_mus)):
        raise ValueError("mus and nqm_mus must lie in (-1, 1)")
    if max(cfg.alpha_h) >= 2.0 * (1.0 + min(cfg.mus)) or min(cfg.alpha_h) <= 0:
        raise ValueError("alpha_h must lie in (0, 2 (1 + min(mus))) for a stationary state")
    if max(cfg.nqm_alphas) >= 2.0 * (1.0 + min(cfg.nqm_mus)) or min(cfg.nqm_alphas) <= 0:
        raise ValueError("nqm_alphas must lie in (0, 2 (1 + min(nqm_mus))) (h_max = 1)")


def _burn_in(rho_max: float, cfg: NoiseFloorConfig) -> int:
    """First record after which ``rho^(2t) <= burn_bias`` (at most half of the records)."""
    records = cfg.steps // cfg.record_every
    t = math.log(cfg.burn_bias) / (2.0 * math.log(rho_max)) if rho_max > 0 else 0.0
    burn = math.ceil(t / cfg.record_every)
    if burn > records // 2:
        raise ValueError(
            f"steps must be at least {2 * burn * cfg.record_every} for this grid (the burn-in "
            f"alone needs {burn * cfg.record_every}; got steps={cfg.steps})"
        )
    return burn


def _stationary(values: np.ndarray, burn: int) -> tuple[np.ndarray, np.ndarray]:
    """Stationary mean and standard error for every grid point of ``(..., seeds, R)``."""
    flat = values.reshape(-1, *values.shape[-2:])
    pairs = np.array([stationary_estimate(v, burn) for v in flat])
    shape = values.shape[:-2]
    return pairs[:, 0].reshape(shape), pairs[:, 1].reshape(shape)


def _sweep(objective, grid: dict[str, np.ndarray], cfg: NoiseFloorConfig, key: jax.Array):
    with jax.enable_x64(True):
        traj = sweep(
            lambda learning_rate, momentum: heavy_ball(learning_rate, momentum),
            grid,
            objective,
            cfg.steps,
            key,
            seeds=cfg.seeds,
            record_every=cfg.record_every,
            x0=np.zeros(objective.dim),
        )
    if np.any(traj.diverged):
        raise RuntimeError("a stable grid point diverged: the noise model or the grid is wrong")
    return traj


def _threshold(cfg: NoiseFloorConfig, points: int) -> float:
    """Bonferroni threshold on ``|measured - predicted| / stderr``.

    Under the closed form each standardised gap is Student-t with ``seeds - 1`` degrees of
    freedom (a mean of ``seeds`` independent time averages over its sample standard error), so
    ``t_{1 - family_error / (2 points)}`` keeps the chance that any of ``points`` gaps exceeds it
    below ``family_error``.
    """
    return float(stats.t.ppf(1.0 - cfg.family_error / (2.0 * points), cfg.seeds - 1))


def _compare(meas, pred, err, thr: float, cfg: NoiseFloorConfig) -> dict:
    """Per-point standardised gaps, the check's outcome (None: unresolved) and its numbers."""
    z = (meas - pred) / err
    half = thr * err / pred  # relative half-width of the acceptance band
    if np.any(np.abs(z) > thr):
        ok: bool | None = False
    elif np.any(half > cfg.resolution):
        ok = None
    else:
        ok = True
    return {
        "ok": ok,
        "within": int(np.sum(np.abs(z) <= thr)),
        "points": int(z.size),
        "max_abs_z": float(np.max(np.abs(z))),
        "max_rel_gap": float(np.max(np.abs(meas / pred - 1.0))),
        "max_half_width": float(np.max(half)),
    }


def _note(c: dict, thr: float, cfg: NoiseFloorConfig) -> str:
    head = f"{c['within']}/{c['points']} floors within {thr:.2f} stderr"
    if c["ok"] is None:
        return (
            f"{head}, but the band reaches {c['max_half_width']:.1%} of the floor: the run cannot "
            f"resolve a {cfg.resolution:.0%} error (more seeds or steps)"
        )
    return (
        f"{head} (largest |gap|/stderr {c['max_abs_z']:.2f}, relative gap "
        f"{c['max_rel_gap']:.2%}); the band is at most {c['max_half_width']:.1%} of the floor"
    )


def run(cfg: NoiseFloorConfig, seed: int) -> Record:
    """Closed-form floors vs stationary estimates on the 1-D grid and on the NQM."""
    _check(cfg)
    key_1d, key_nqm = jax.random.split(jax.random.key(seed))

    # (i) 1-D grid, replicas as coordinates of one diagonal quadratic
    a_h, mus = np.meshgrid(np.asarray(cfg.alpha_h), np.asarray(cfg.mus), indexing="ij")
    alpha = a_h / cfg.h
    pred = theory.stationary_loss(alpha, mus, cfg.h, cfg.c)
    pred_var = theory.stationary_variance(alpha, mus, cfg.h, cfg.c)
    surrogate = alpha**2 * cfg.c / (1.0 - mus)
    burn = _burn_in(float(theory.spectral_radius(alpha, mus, cfg.h).max()), cfg)
    obj = quadratic(np.full(cfg.replicas, cfg.h), noise_std=math.sqrt(cfg.c))
    traj = _sweep(obj, {"learning_rate": alpha, "momentum": mus}, cfg, key_1d)
    meas, err = _stationary(traj.losses / cfg.replicas, burn)
    meas_var, err_var = _stationary(traj.distances**2 / cfg.replicas, burn)

    # (ii) the noisy quadratic model
    h, c = theory.nqm_spectrum(cfg.nqm_dim, cfg.nqm_p, cfg.nqm_batch)
    n_alpha, n_mu = np.meshgrid(np.asarray(cfg.nqm_alphas), np.asarray(cfg.nqm_mus), indexing="ij")
    nqm_pred = theory.nqm_floor(n_alpha, n_mu, h, c)
    rho_nqm = theory.spectral_radius(n_alpha[..., None], n_mu[..., None], h).max()
    burn_nqm = _burn_in(float(rho_nqm), cfg)
    nqm = noisy_quadratic_model(cfg.nqm_dim, cfg.nqm_p, cfg.nqm_batch)
    traj_nqm = _sweep(nqm, {"learning_rate": n_alpha, "momentum": n_mu}, cfg, key_nqm)
    nqm_meas, nqm_err = _stationary(traj_nqm.losses, burn_nqm)

    n_all = pred.size + nqm_pred.size
    thr = _threshold(cfg, n_all)
    c1 = _compare(meas, pred, err, thr, cfg)
    cn = _compare(nqm_meas, nqm_pred, nqm_err, thr, cfg)
    rule = (
        f"|measured - predicted| <= {thr:.2f} stderr at every point (Student t, {cfg.seeds - 1} "
        f"dof, family-wise {cfg.family_error:g} over {n_all} points); pass also needs the band "
        f"within {cfg.resolution:.0%} of the floor, else unresolved"
    )
    checks = [
        check(
            "floor_1d_matches_closed_form",
            "verification",
            c1["ok"],
            predicted="(1+mu) alpha c / (2 (1-mu) (2(1+mu) - alpha h))",
            measured={k: c1[k] for k in ("max_abs_z", "max_rel_gap", "max_half_width")},
            tolerance=rule,
            note=_note(c1, thr, cfg),
            headline=True,
        ),
        check(
            "nqm_floor_matches_sum",
            "verification",
            cn["ok"],
            predicted="sum over directions of the 1-D floor, h_i = i^-p, c_i = h_i / B",
            measured={k: cn[k] for k in ("max_abs_z", "max_rel_gap", "max_half_width")},
            tolerance=rule,
            note=_note(cn, thr, cfg),
        ),
    ]
    n_ok = c1["within"] + cn["within"]
    worst = max(c1["max_rel_gap"], cn["max_rel_gap"])
    return Record(
        claim=EXPERIMENT_CLAIM,
        prediction={
            "stationary_loss_1d": pred,
            "nqm_floor": nqm_pred,
            "stationary_variance_1d": pred_var,
        },
        measurement={
            "stationary_loss_1d": meas,
            "stationary_loss_1d_stderr": err,
            "nqm_floor": nqm_meas,
            "nqm_floor_stderr": nqm_err,
            "max_abs_rel_error": worst,
            "max_abs_z": max(c1["max_abs_z"], cn["max_abs_z"]),
            "max_rel_stderr": float(max((err / pred).max(), (nqm_err / nqm_pred).max())),
            "points_within_tolerance": n_ok,
            "points": n_all,
            "burn_in_steps": {"1d": burn * cfg.record_every, "nqm": burn_nqm * cfg.record_every},
            "yellowfin_surrogate_over_exact_variance": surrogate / pred_var,
        },
        tolerance={
            "threshold_stderr": thr,
            "family_error": cfg.family_error,
            "resolution": cfg.resolution,
            "rule": rule
            + (
                "; the stderr is the between-seed spread of the time averages after the burn-in "
                "(the deterministic transient rho^(2t) of the second moments has fallen below "
                f"{cfg.burn_bias:g}, so its bias is negligible)"
            ),
        },
        checks=checks,
        summary=(
            f"{n_ok}/{n_all} stationary losses within {thr:.2f} stderr of the closed form (worst "
            f"relative gap {worst:.2%}, largest |gap|/stderr "
            f"{max(c1['max_abs_z'], cn['max_abs_z']):.2f}; band at most "
            f"{max(c1['max_half_width'], cn['max_half_width']):.1%} of the floor)"
        ),
        arrays={
            "alpha_h": a_h,
            "mu": mus,
            "pred": pred,
            "meas": meas,
            "stderr": err,
            "pred_var": pred_var,
            "meas_var": meas_var,
            "stderr_var": err_var,
            "surrogate": surrogate,
            "nqm_alpha": n_alpha,
            "nqm_mu": n_mu,
            "nqm_pred": nqm_pred,
            "nqm_meas": nqm_meas,
            "nqm_stderr": nqm_err,
            "nqm_h": h,
            "nqm_c": c,
            "tol_1d": thr * err,
            "tol_nqm": thr * nqm_err,
        },
    )


EXPERIMENT_CLAIM = (
    "With additive gradient noise of variance c, stochastic heavy ball settles at the stationary "
    "loss (1+mu) alpha c / (2 (1-mu) (2(1+mu) - alpha h)) per eigen-direction, and on the noisy "
    "quadratic model at the sum of these terms: every measured floor matches it within the "
    "between-seed spread, on runs that resolve a 2% error."
)

EXPERIMENT = register(
    Experiment(
        name="noise-floor",
        title="Noise floor of stochastic heavy ball and the NQM",
        claim=EXPERIMENT_CLAIM,
        config=NoiseFloorConfig,
        run=run,
        plot=plot,
        device="cpu",
        order=6,
    )
)
