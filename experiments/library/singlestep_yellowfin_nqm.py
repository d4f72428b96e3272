"""Experiment 7: what YellowFin's oracles measure on the noisy quadratic model, and what follows.

Claim. YellowFin (Zhang & Mitliagkas, "YellowFin and the Art of Momentum Tuning", arXiv
1706.03471; reference yellowfin.md) applies SingleStep (Sec. 3.1, Eq. (15)) to oracles (Sec. 3.2)
that read the extremes of ``||g||^2`` over a window (``h_min``, ``h_max``), the time variance of
``g`` (``C``) and ``E||g|| / E||g||^2`` (``D``). Derived here: on the noisy quadratic model (Zhang
et al., arXiv 1907.04164, Sec. 3) each oracle reads, at YellowFin's own operating point, what
stationary heavy ball predicts, so its late tuning is the self-consistent fixed point of SingleStep
on those readings (not SingleStep at the true statistics). Published (Sec. 5, "competitive with
hand-tuned momentum SGD"): it reaches loss targets within a factor ``speed_factor`` of the
iterations of heavy ball re-tuned per target.

Prediction source: :mod:`theory` (heavy ball's stationary second moments, ``theory.nqm_floor``,
``theory.singlestep``) through :mod:`._singlestep_nqm_model` (oracle readings at a fixed operating
point, their fixed point). Measurement source: :func:`optimizers.yellowfin` (official defaults,
float64) and :func:`optimizers.heavy_ball` run by :func:`simulators.sweep`; metrics are read after
``10 curv_window + warm / (1 - beta)`` steps (slow start over, beta = 0.999 averages warm).

Checks: (a) verification of each oracle, the late loss (NQM floor) and the late ``(alpha, mu)``
(the headline) at YellowFin's own late operating point, plus SingleStep's closed form and
YellowFin's use of it; (b) the fixed point over a sweep of ``kappa``, dimension and noise, with
the gap to SingleStep at the true statistics reported as a characterisation of the ``||g||^2``
curvature proxy; (c) reproduction: iterations to a ladder of loss targets against heavy ball
re-tuned per target (grid, bootstrap over seeds); (d) reproduction of the derived negative finding:
without lr decay the learning rate grows after the best loss and the loss climbs back to the floor
of the fixed point. Preconditions: the operating point settled in the read window; the tuned heavy
ball inside its grid.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np

import theory
from experiments.framework import (
    Experiment,
    Record,
    check,
    interval_check,
    register,
)
from experiments.library import _singlestep_nqm_checks as cmp
from experiments.library import _singlestep_nqm_runs as runs
from experiments.library import _singlestep_nqm_text as text
from experiments.library._singlestep_nqm_plot import pack, plot

BETA = 0.999  # YellowFin's official EMA constant


@dataclasses.dataclass(frozen=True)
class SingleStepYellowFinConfig:
    """Problem, run lengths, grids and tolerances.

    Attributes:
        dim, p, batch_size: the NQM, ``h_i = i^-p``, ``c_i = h_i / B``.
        start: every coordinate of ``x_0 - x*``.
        steps: YellowFin steps per run; seeds: independent seeds (>= 8); record_every: stride.
        curv_window: YellowFin's window ``w`` (official 20).
        warm: read window starts at ``10 w + warm / (1 - beta)`` (transient weight ``e^-warm``).
        drift_tol: settled when late ``alpha`` (relative) and ``mu`` move less than this between
            the halves of the read window.
        oracle_tol: relative tolerance of each oracle and of the late loss against theory.
        mu_tol: absolute tolerance of the late momentum against the oracle fixed point.
        mc_samples: Monte Carlo windows of the ``h_min``/``h_max`` prediction.
        sweep_settings: ``(dim, p, batch_size)`` of the fixed-point sweep (b).
        hb_alphas: ``(lo, hi, n)`` geometric learning-rate grid of heavy ball; hb_mus: momenta.
        horizons: heavy ball tuned for these horizons gives the ladder of loss targets (c).
        speed_factor: YellowFin is competitive when it needs at most this factor more iterations.
        bf_points, bf_distances, bf_tol: brute-force check of SingleStep's closed form.
        consistency_tol: YellowFin vs SingleStep at its own logged statistics.
        eps: YellowFin's ``eps`` guard (official 1e-6).
    """

    dim: int = 100
    p: float = 1.0
    batch_size: int = 16
    start: float = 3.0
    steps: int = 20000
    seeds: int = 16
    record_every: int = 10
    curv_window: int = 20
    warm: float = 6.0
    drift_tol: float = 0.02
    oracle_tol: float = 0.05
    mu_tol: float = 0.02
    mc_samples: int = 4000
    sweep_settings: tuple[tuple[int, float, int], ...] = (
        (32, 1.0, 16),
        (316, 1.0, 16),
        (100, 0.5, 16),
        (100, 1.5, 16),
        (100, 1.0, 1),
        (100, 1.0, 256),
    )
    hb_alphas: tuple[float, float, int] = (0.0005, 4.0, 27)
    hb_mus: tuple[float, ...] = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
    horizons: tuple[int, ...] = (300, 1000, 3000, 10000)
    speed_factor: float = 2.0
    bf_points: int = 20001
    bf_distances: tuple[float, float, int] = (0.03, 100.0, 29)
    bf_tol: float = 1e-6
    consistency_tol: float = 1e-6
    eps: float = 1e-6

    @classmethod
    def quick(cls) -> SingleStepYellowFinConfig:
        """32 directions, 9000 steps, 8 seeds; sweep over kappa and noise at 32 directions."""
        return cls(
            dim=32,
            steps=9000,
            seeds=8,
            mc_samples=2000,
            sweep_settings=((32, 0.5, 16), (32, 1.5, 16), (32, 1.0, 1), (32, 1.0, 256)),
            hb_alphas=(0.002, 4.0, 16),
            hb_mus=(0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98),
            horizons=(300, 1000, 3000),
            bf_points=4001,
            bf_distances=(0.03, 100.0, 13),
        )

    @property
    def read_from(self) -> int:
        """First step of the read window: slow start over and beta averages warm."""
        return 10 * self.curv_window + math.ceil(self.warm / (1.0 - BETA))


def _check(cfg: SingleStepYellowFinConfig) -> None:
    if cfg.seeds < 8:
        raise ValueError(f"seeds must be an integer >= 8 (got {cfg.seeds!r})")
    if cfg.start == 0.0 or not math.isfinite(cfg.start):
        raise ValueError(f"start must be finite and non-zero (got {cfg.start!r})")
    if cfg.steps < 1.2 * cfg.read_from:
        raise ValueError(f"steps must be >= 1.2 x the read start {cfg.read_from} (got {cfg.steps})")
    if not 0.0 < cfg.hb_alphas[0] < cfg.hb_alphas[1] or cfg.hb_alphas[2] < 3:
        raise ValueError(f"hb_alphas must be (lo, hi, n), 0 < lo < hi, n >= 3 ({cfg.hb_alphas})")
    if not all(0.0 <= m < 1.0 for m in cfg.hb_mus):
        raise ValueError("hb_mus must lie in [0, 1)")
    if not cfg.horizons or not all(10 * cfg.curv_window <= h <= cfg.steps for h in cfg.horizons):
        raise ValueError(f"horizons must lie in [10 curv_window, steps] (got {cfg.horizons})")
    if cfg.bf_points < 101:
        raise ValueError(f"bf_points must be an integer >= 101 (got {cfg.bf_points!r})")


def run(cfg: SingleStepYellowFinConfig, seed: int) -> Record:
    """Oracles and tuning vs theory, the sweep, the speed ladder and the rebound (module doc)."""
    _check(cfg)
    key_yf, key_hb, key_sw = jax.random.split(jax.random.key(seed), 3)
    main = runs.yellowfin_late(cfg, (cfg.dim, cfg.p, cfg.batch_size), key_yf)
    h, c, st, t, late = main["h"], main["c"], main["st"], main["t"], main["late"]
    h_min, h_max, c_true = float(h.min()), float(h.max()), float(c.sum())

    # SingleStep's closed form vs brute force; YellowFin = SingleStep at its logged statistics
    d_grid = np.geomspace(*cfg.bf_distances[:2], int(cfg.bf_distances[2]))
    mu_ss, _ = theory.singlestep(c_true, d_grid, h_min, h_max)
    x_bf = np.array([cmp.brute_force_x(c_true, d, h_min, h_max, cfg.bf_points) for d in d_grid])
    bf_gap = float(np.max(np.abs(np.sqrt(mu_ss) - x_bf)))
    tuned, e = t >= 2, cfg.eps  # the record at t holds the tuning of step t - 1
    mu_own, a_own = theory.singlestep(*(st[k][:, tuned] + e for k in cmp.ORACLES))
    ramp = np.minimum(1.0, t[tuned] / (10.0 * cfg.curv_window))
    own_gap = max(
        float(np.max(np.abs(st["momentum"][:, tuned] - mu_own))),
        float(np.max(np.abs(st["learning_rate"][:, tuned] / (a_own * ramp) - 1.0))),
    )

    # (a) oracles, late loss and the late operating point vs theory
    oracle_checks, oracles = cmp.oracle_checks(cfg, main, seed)
    row = cmp.compare_setting(cfg, (cfg.dim, cfg.p, cfg.batch_size), main, seed)
    mu_iv = row["mu_interval"]
    a_ratio = late["learning_rate"] / row["alpha_fixed_point"]
    a_iv = cmp.interval_mean(a_ratio, seed)

    # (b) the sweep; settings of the main problem's dimension reuse its compiled run
    rows = [row]
    for k, setting in enumerate(cfg.sweep_settings):
        r = runs.yellowfin_late(cfg, setting, jax.random.fold_in(key_sw, k), base=main["obj"])
        rows.append(cmp.compare_setting(cfg, setting, r, seed))
    settled = [r for r in rows if r["settled"]]

    # (c) speed: iterations to the ladder of targets
    speed, extra = runs.speed_ladder(cfg, st["loss"], t, key_hb)

    # (d) the rebound without lr decay
    s_yf = runs.smoothed(st["loss"])
    after = t >= 10 * cfg.curv_window
    jb = int(np.flatnonzero(after)[np.argmin(s_yf.mean(0)[after])])
    loss_ratio, lr_ratio = (
        late["loss"] / s_yf[:, jb],
        late["learning_rate"] / st["learning_rate"][:, jb],
    )
    loss_iv, lr_iv = cmp.interval_mean(loss_ratio, seed), cmp.interval_mean(lr_ratio, seed)

    mu_true, a_true = theory.singlestep(c_true, np.maximum(st["dist"], 1e-300), h_min, h_max)
    checks = [
        *cmp.preconditions(cfg, main, speed),
        check(
            "singlestep_equals_brute_force",
            "verification",
            bf_gap <= cfg.bf_tol,
            predicted=0.0,
            measured=bf_gap,
            tolerance=cfg.bf_tol,
            note=text.BF_NOTE,
        ),
        check(
            "yellowfin_is_singlestep_at_its_statistics",
            "verification",
            own_gap <= cfg.consistency_tol,
            predicted=0.0,
            measured=own_gap,
            tolerance=cfg.consistency_tol,
            note=text.OWN_NOTE,
        ),
        *oracle_checks,
        interval_check(
            "late_momentum_at_oracle_fixed_point",
            "verification",
            mu_iv,
            lower=row["mu_fixed_point"] - cfg.mu_tol,
            upper=row["mu_fixed_point"] + cfg.mu_tol,
            measured={"mu": row["mu_late"], "interval": list(mu_iv)},
            note=text.fixed_point_note(row),
            headline=True,
        ),
        interval_check(
            "late_learning_rate_at_oracle_fixed_point",
            "verification",
            a_iv,
            lower=1.0 - cfg.oracle_tol,
            upper=1.0 + cfg.oracle_tol,
            measured={"ratio": float(a_ratio.mean()), "interval": list(a_iv)},
            note="late alpha / alpha of the oracle fixed point",
        ),
        check(
            "sweep_momentum_at_oracle_fixed_point",
            "verification",
            cmp.sweep_outcome(cfg, rows),
            predicted=[r["mu_fixed_point"] for r in settled],
            measured=[r["mu_late"] for r in settled],
            tolerance=cfg.mu_tol,
            note=text.sweep_note(rows),
        ),
        *cmp.speed_checks(cfg, speed),
        interval_check(
            "learning_rate_grows_after_best_loss",
            "reproduction",
            lr_iv,
            lower=1.0,
            measured={"ratio": float(lr_ratio.mean()), "interval": list(lr_iv)},
            note=f"late alpha / alpha at the best loss (step {int(t[jb])})",
        ),
        interval_check(
            "loss_climbs_back_without_decay",
            "reproduction",
            loss_iv,
            lower=1.0,
            measured={"ratio": float(loss_ratio.mean()), "interval": list(loss_iv)},
            note=text.rebound_note(row, float(s_yf[:, jb].mean()), late["loss"].mean()),
        ),
    ]
    measurement = {
        "read_from_step": int(t[main["j0"]]),
        "late": {k: float(v.mean()) for k, v in late.items()},
        "oracles_vs_theory": oracles,
        "late_vs_fixed_point": {k: v for k, v in row.items() if k != "mu_interval"},
        "sweep": rows,
        "speed": [{k: v for k, v in s.items() if k != "hb_curve"} for s in speed],
        "rebound": {
            "best_step": int(t[jb]),
            "loss_at_best": float(s_yf[:, jb].mean()),
            "loss_ratio": float(loss_ratio.mean()),
            "lr_ratio": float(lr_ratio.mean()),
        },
        "brute_force_sqrt_mu_max_gap": bf_gap,
        "yellowfin_vs_own_singlestep_gap": own_gap,
    }
    return Record(
        claim=EXPERIMENT_CLAIM,
        prediction={
            "oracle_fixed_point": {
                "mu": row["mu_fixed_point"],
                "alpha": row["alpha_fixed_point"],
                "floor": row["floor_fixed_point"],
            },
            "oracles_at_late_operating_point": {
                k: v["predicted"] for k, v in oracles.items() if isinstance(v, dict)
            },
            "singlestep_true_statistics": {
                "mu": row["mu_singlestep_true"],
                "alpha": row["alpha_singlestep_true"],
            },
            "true_statistics": {"h_min": h_min, "h_max": h_max, "grad_var": c_true},
            "singlestep_mu_over_D": mu_ss,
        },
        measurement=measurement,
        tolerance=text.tolerances(cfg, oracles["clip_fraction"]),
        checks=checks,
        summary=text.summary(row, oracles, speed, measurement["rebound"]),
        arrays={
            "t": t,
            "d_grid": d_grid,
            "mu_ss": mu_ss,
            "x_bf": x_bf,
            **{f"yf_{k}": st[k] for k in runs.STATS},
            "yf_loss": st["loss"],
            "dist": st["dist"],
            "mu_true": mu_true,
            "alpha_true": a_true,
            "true_stats": np.array([h_min, h_max, c_true]),
            "fixed_point": np.array(
                [row["alpha_fixed_point"], row["mu_fixed_point"], row["floor_fixed_point"]]
            ),
            "oracle_predicted": np.array([oracles[k]["predicted"] for k in cmp.ORACLES]),
            "read_from": np.array(float(t[main["j0"]])),
            "best_step": np.array(float(t[jb])),
            **pack(rows, speed),
            "t_hb": extra["t_hb"],
            "hb_curves": np.array([s["hb_curve"] for s in speed]),
        },
    )


EXPERIMENT_CLAIM = text.CLAIM

EXPERIMENT = register(
    Experiment(
        name="singlestep-yellowfin-nqm",
        title="YellowFin's oracles, tuning and speed on the NQM",
        claim=EXPERIMENT_CLAIM,
        config=SingleStepYellowFinConfig,
        run=run,
        plot=plot,
        device="cpu",
        order=7,
    )
)
