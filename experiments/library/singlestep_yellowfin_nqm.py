"""Experiment 7: the SingleStep surface, and YellowFin's tuning on the noisy quadratic model.

Claims under test (Zhang & Mitliagkas, "YellowFin and the Art of Momentum Tuning", arXiv
1706.03471; reference yellowfin.md):

1. SingleStep (Sec. 3.1, Eq. (15)): the closed form of :func:`theory.singlestep` is the minimiser of
   ``mu D^2 + alpha^2 C`` on the constraint set ``alpha = (1 - sqrt(mu))^2 / h_min``,
   ``sqrt(mu) >= (sqrt(kappa) - 1) / (sqrt(kappa) + 1)``. Measured by brute force: a dense grid in
   ``sqrt(mu)`` refined by bounded Brent minimisation (:func:`scipy.optimize.minimize_scalar`).
2. YellowFin's tuner (Algorithm 1) applies SingleStep to its own measured statistics: the logged
   ``(mu_t, alpha_t)`` of :func:`optimizers.yellowfin` equal :func:`theory.singlestep` evaluated at
   the logged ``(C_t, D_t, h_min_t, h_max_t)`` (with the official ``eps`` guard).
3. Its oracles (Sec. 3.2) track the problem: late in the run the tuned momentum is within
   ``mu_tol`` of SingleStep at the *true* statistics of the noisy quadratic model (Zhang et al.,
   arXiv 1907.04164, Sec. 3): ``h_min = d^-p``, ``h_max = 1``, ``C = sum_i h_i / B`` and
   ``D_t = ||x_t - x*||``, and the tuned learning rate within a factor ``alpha_factor`` of it.
4. YellowFin needs no tuning to be competitive with tuned momentum SGD (the paper's empirical
   claim, Sec. 5): its loss at the end of the run is within a factor ``loss_factor`` of the best
   fixed ``(alpha, mu)`` heavy ball of a grid (same steps, seeds and start).

The verdict holds only when all four hold; each check and its numbers are in the record.
YellowFin runs with the official defaults in float64 (:func:`simulators.sweep` over seeds); heavy
ball is :func:`optimizers.heavy_ball`. The closed-form floor :func:`theory.nqm_floor` of the best
grid point and of SingleStep's late tuning are reported for reference.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from scipy.optimize import minimize_scalar

import theory
from experiments.framework import Experiment, Record, figure, register, style, verdict
from optimizers import heavy_ball, yellowfin
from simulators import noisy_quadratic_model, product_grid, sweep

_STATS = ("learning_rate", "momentum", "h_min", "h_max", "grad_var", "dist_to_opt")


@dataclasses.dataclass(frozen=True)
class SingleStepYellowFinConfig:
    """Problem, run lengths, grids and tolerances.

    Attributes:
        dim: directions of the noisy quadratic model.
        p: spectrum decay ``h_i = i^-p``.
        batch_size: ``B`` (``c_i = h_i / B``).
        start: every coordinate of ``x_0 - x*``.
        steps: steps per run.
        seeds: independent seeds (>= 2).
        record_every: stride of the records.
        late: fraction of the run (its end) over which late-time values are averaged.
        hb_alphas: ``(lo, hi, n)`` of the geometric learning-rate grid of the heavy-ball baseline.
        hb_mus: momenta of the heavy-ball grid.
        bf_points: grid points in ``sqrt(mu)`` of the brute-force SingleStep minimisation.
        bf_distances: ``(lo, hi, n)`` of the geometric grid of ``D`` values checked by brute force.
        bf_tol: tolerance on ``sqrt(mu)`` of closed form vs brute force.
        consistency_tol: tolerance on ``mu`` (absolute) and ``alpha`` (relative) of YellowFin vs
            SingleStep at its logged statistics.
        mu_tol: absolute tolerance of late momentum vs SingleStep at the true statistics.
        alpha_factor: allowed factor between late learning rate and SingleStep's.
        loss_factor: allowed factor between YellowFin's final loss and the best grid heavy ball.
        z_tol: standard errors (over seeds) used when they exceed ``mu_tol``.
        eps: YellowFin's ``eps`` guard (official 1e-6).
    """

    dim: int = 100
    p: float = 1.0
    batch_size: int = 16
    start: float = 3.0
    steps: int = 10000
    seeds: int = 8
    record_every: int = 10
    late: float = 0.5
    hb_alphas: tuple[float, float, int] = (0.0005, 2.0, 18)
    hb_mus: tuple[float, ...] = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
    bf_points: int = 20001
    bf_distances: tuple[float, float, int] = (0.03, 100.0, 29)
    bf_tol: float = 1e-6
    consistency_tol: float = 1e-6
    mu_tol: float = 0.05
    alpha_factor: float = 2.0
    loss_factor: float = 2.0
    z_tol: float = 3.0
    eps: float = 1e-6

    @classmethod
    def quick(cls) -> SingleStepYellowFinConfig:
        """A 32-direction NQM, 3000 steps, 8 seeds, a coarser heavy-ball grid."""
        return cls(
            dim=32,
            steps=3000,
            seeds=8,
            hb_alphas=(0.0005, 2.0, 14),
            hb_mus=(0.0, 0.5, 0.7, 0.8, 0.9, 0.95),
            bf_points=4001,
            bf_distances=(0.03, 100.0, 13),
        )


def _check(cfg: SingleStepYellowFinConfig) -> None:
    if cfg.seeds < 2:
        raise ValueError(f"seeds must be an integer >= 2 (got {cfg.seeds!r})")
    if not 0.0 < cfg.late <= 1.0:
        raise ValueError(f"late must lie in (0, 1] (got {cfg.late!r})")
    if cfg.start == 0.0 or not math.isfinite(cfg.start):
        raise ValueError(f"start must be finite and non-zero (got {cfg.start!r})")
    if not 0.0 < cfg.hb_alphas[0] < cfg.hb_alphas[1] or cfg.hb_alphas[2] < 2:
        raise ValueError(
            f"hb_alphas must be (lo, hi, n) with 0 < lo < hi, n >= 2 ({cfg.hb_alphas})"
        )
    if not all(0.0 <= m < 1.0 for m in cfg.hb_mus):
        raise ValueError("hb_mus must lie in [0, 1)")
    if cfg.bf_points < 101:
        raise ValueError(f"bf_points must be an integer >= 101 (got {cfg.bf_points!r})")


def _brute_force_x(c: float, d: float, h_min: float, h_max: float, points: int) -> float:
    """Minimiser in ``x = sqrt(mu)`` of the SingleStep objective on the constraint set."""
    x_lo = math.sqrt(float(theory.min_robust_momentum(h_max / h_min)))
    xs = np.linspace(x_lo, 1.0, points)
    f = theory.singlestep_objective(xs**2, c, d, h_min)
    i = int(np.argmin(f))
    lo, hi = xs[max(i - 1, 0)], xs[min(i + 1, points - 1)]
    res = minimize_scalar(
        lambda x: float(theory.singlestep_objective(x * x, c, d, h_min)),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return float(res.x) if res.fun <= f[i] else float(xs[i])


def _late(values: np.ndarray, cfg: SingleStepYellowFinConfig) -> np.ndarray:
    """Per-seed mean over the last ``late`` fraction of the records, ``(seeds,)``."""
    n = values.shape[-1]
    return values[..., n - max(2, round(cfg.late * n)) :].mean(-1)


def run(cfg: SingleStepYellowFinConfig, seed: int) -> Record:
    """Brute-force SingleStep, YellowFin's trajectory vs SingleStep, and the loss vs heavy ball."""
    _check(cfg)
    h, c = theory.nqm_spectrum(cfg.dim, cfg.p, cfg.batch_size)
    h_min, h_max, c_true = float(h.min()), float(h.max()), float(c.sum())
    nqm = noisy_quadratic_model(cfg.dim, cfg.p, cfg.batch_size, x0=np.full(cfg.dim, cfg.start))
    key_yf, key_hb = jax.random.split(jax.random.key(seed))

    # 1. closed form vs brute force over a range of distances (both branches of the max)
    d_grid = np.geomspace(*cfg.bf_distances[:2], int(cfg.bf_distances[2]))
    mu_ss, _ = theory.singlestep(c_true, d_grid, h_min, h_max)
    x_bf = np.array([_brute_force_x(c_true, d, h_min, h_max, cfg.bf_points) for d in d_grid])
    bf_gap = float(np.max(np.abs(np.sqrt(mu_ss) - x_bf)))

    # YellowFin (official defaults) over seeds, float64
    with jax.enable_x64(True):
        yf = sweep(
            lambda lr_factor: yellowfin(lr_factor=lr_factor, eps=cfg.eps),
            {"lr_factor": [1.0]},
            nqm,
            cfg.steps,
            key_yf,
            seeds=cfg.seeds,
            record_every=cfg.record_every,
        )
        g = product_grid(
            learning_rate=np.geomspace(*cfg.hb_alphas[:2], int(cfg.hb_alphas[2])),
            momentum=np.asarray(cfg.hb_mus),
        )
        hb = sweep(
            lambda learning_rate, momentum: heavy_ball(learning_rate, momentum),
            g,
            nqm,
            cfg.steps,
            key_hb,
            seeds=cfg.seeds,
            record_every=cfg.record_every,
        )
    st = {k: np.asarray(yf.stats[k][0], np.float64) for k in _STATS}  # (seeds, R)
    t = np.asarray(yf.steps)
    dist = np.asarray(yf.distances[0], np.float64)
    yf_diverged = int(np.sum(yf.diverged))  # a diverged seed has loss inf: check 4 fails

    # 2. YellowFin = SingleStep at its logged statistics (official guard: every input + eps)
    tuned = t >= 2  # the record at step t holds the tuning of step t - 1; step 0 is untuned
    e = cfg.eps
    mu_own, a_own = theory.singlestep(
        st["grad_var"][:, tuned] + e,
        st["dist_to_opt"][:, tuned] + e,
        st["h_min"][:, tuned] + e,
        st["h_max"][:, tuned] + e,
    )
    ramp = np.minimum(1.0, t[tuned] / (10.0 * 20))  # slow start (t+1)/(10 w) of step t - 1, w = 20
    mu_gap = float(np.max(np.abs(st["momentum"][:, tuned] - mu_own)))
    a_gap = float(np.max(np.abs(st["learning_rate"][:, tuned] / (a_own * ramp) - 1.0)))

    # 3. late tuning vs SingleStep at the true statistics of the NQM
    mu_true, a_true = theory.singlestep(c_true, np.maximum(dist, 1e-300), h_min, h_max)
    mu_diff = _late(st["momentum"] - mu_true, cfg)
    mu_err = float(mu_diff.std(ddof=1) / math.sqrt(cfg.seeds))
    mu_tol = max(cfg.mu_tol, cfg.z_tol * mu_err)
    a_ratio = float(np.exp(np.mean(_late(np.log(st["learning_rate"][:, 1:] / a_true[:, 1:]), cfg))))

    # 4. final loss vs the best grid heavy ball
    yf_loss = _late(np.asarray(yf.losses[0], np.float64), dataclasses.replace(cfg, late=0.1))
    hb_loss = _late(np.asarray(hb.losses, np.float64), dataclasses.replace(cfg, late=0.1))
    hb_mean = np.where(np.isfinite(hb_loss).all(-1), hb_loss.mean(-1), np.inf)
    best = np.unravel_index(int(np.argmin(hb_mean)), hb_mean.shape)
    best_alpha, best_mu = float(g["learning_rate"][best]), float(g["momentum"][best])
    on_edge = best[0] in (0, hb_mean.shape[0] - 1)
    loss_ratio = float(yf_loss.mean() / hb_mean[best])

    late_mu, late_mu_true = (
        float(_late(st["momentum"], cfg).mean()),
        float(_late(mu_true, cfg).mean()),
    )
    late_a, late_a_true = (
        float(_late(st["learning_rate"], cfg).mean()),
        float(_late(a_true, cfg).mean()),
    )
    checks = {
        "singlestep_equals_brute_force": bf_gap <= cfg.bf_tol,
        "yellowfin_is_singlestep_at_its_statistics": max(mu_gap, a_gap) <= cfg.consistency_tol,
        "late_momentum_matches_singlestep_at_true_statistics": abs(float(mu_diff.mean())) <= mu_tol,
        "late_learning_rate_within_factor": 1 / cfg.alpha_factor <= a_ratio <= cfg.alpha_factor,
        "loss_within_factor_of_tuned_heavy_ball": loss_ratio <= cfg.loss_factor,
    }
    late_stats = {k: float(_late(st[k], cfg).mean()) for k in ("h_min", "h_max", "grad_var")}
    late_stats["dist_to_opt"] = float(_late(st["dist_to_opt"], cfg).mean())
    return Record(
        claim=EXPERIMENT_CLAIM,
        prediction={
            "singlestep_mu_over_D": mu_ss,
            "late_singlestep_mu_true_statistics": late_mu_true,
            "late_singlestep_alpha_true_statistics": late_a_true,
            "true_statistics": {
                "h_min": h_min,
                "h_max": h_max,
                "grad_var": c_true,
                "late_dist_to_opt": float(_late(dist, cfg).mean()),
            },
            "floor_best_heavy_ball": float(theory.nqm_floor(best_alpha, best_mu, h, c)),
            "floor_singlestep_true_late": float(theory.nqm_floor(late_a_true, late_mu_true, h, c)),
        },
        measurement={
            "brute_force_sqrt_mu_max_gap": bf_gap,
            "yellowfin_vs_own_singlestep": {"mu_max_abs": mu_gap, "alpha_max_rel": a_gap},
            "late_yellowfin_mu": late_mu,
            "late_mu_gap": float(mu_diff.mean()),
            "late_mu_gap_stderr": mu_err,
            "late_yellowfin_alpha": late_a,
            "late_alpha_ratio": a_ratio,
            "late_yellowfin_statistics": late_stats,
            "final_loss_yellowfin": float(yf_loss.mean()),
            "final_loss_best_heavy_ball": float(hb_mean[best]),
            "best_heavy_ball": {"alpha": best_alpha, "mu": best_mu, "on_grid_edge": on_edge},
            "loss_ratio": loss_ratio,
            "yellowfin_seeds_diverged": yf_diverged,
            "checks": checks,
        },
        tolerance={
            "brute_force": f"|sqrt(mu) closed form - brute force| <= {cfg.bf_tol:g} (Brent "
            "refinement to 1e-12 of a convex objective, flat at the minimum: ~sqrt(float64 eps))",
            "consistency": f"{cfg.consistency_tol:g} on mu (absolute) and alpha (relative): "
            "float64 run, in-graph Newton vs closed form",
            "mu": f"|late mean mu - SingleStep(true)| <= max({cfg.mu_tol:g}, {cfg.z_tol:g} stderr "
            f"over seeds) = {mu_tol:.3g}; {cfg.mu_tol:g} in mu is ~3% of the rate sqrt(mu) near "
            "mu = 0.8",
            "alpha": f"late geometric-mean alpha ratio in [1/{cfg.alpha_factor:g}, "
            f"{cfg.alpha_factor:g}]",
            "loss": f"final loss ratio <= {cfg.loss_factor:g} (mean over the last 10% of the run "
            "and the seeds; the heavy-ball grid shares steps, start and seeds count)",
        },
        verdict=verdict(all(checks.values())),
        summary=(
            f"SingleStep = brute force (gap {bf_gap:.1e}); YellowFin = SingleStep at its own "
            f"statistics (gap {max(mu_gap, a_gap):.1e}); late mu {late_mu:.3f} vs SingleStep at "
            f"the true statistics {late_mu_true:.3f}, alpha ratio {a_ratio:.2f}; final loss "
            f"{float(yf_loss.mean()):.3g} vs tuned heavy ball {float(hb_mean[best]):.3g} "
            f"(x{loss_ratio:.1f}); failing: "
            + (", ".join(k for k, ok in checks.items() if not ok) or "none")
        ),
        arrays={
            "t": t,
            "d_grid": d_grid,
            "mu_ss": mu_ss,
            "x_bf": x_bf,
            **{f"yf_{k}": st[k] for k in _STATS},
            "dist": dist,
            "mu_true": mu_true,
            "alpha_true": a_true,
            "yf_loss": np.asarray(yf.losses[0], np.float64),
            "hb_best_loss": np.asarray(hb.losses[best], np.float64),
            "hb_final": hb_mean,
            "hb_alphas": g["learning_rate"][:, 0],
            "hb_mus": g["momentum"][0],
            "true_stats": np.array([h_min, h_max, c_true]),
            "best": np.array([best_alpha, best_mu]),
        },
    )


def _band(ax, t, values, key: str, label: str, every: int) -> None:
    """Seed mean as markers on a thin line, with the seed min-max range shaded."""
    kw = style(key)
    ax.fill_between(t, values.min(0), values.max(0), color=kw["color"], alpha=0.2, lw=0)
    ax.plot(t, values.mean(0), color=kw["color"], lw=0.8)
    ax.plot(t, values.mean(0), **style(key, linestyle="none", ms=3.5, mfc="none", label=label,
                                       markevery=every))  # fmt: skip


def plot(record: Record) -> Figure:
    """Surface, brute force, YellowFin's (mu, alpha) and statistics vs truth, and the loss."""
    arr = record.arrays
    fig, axes = figure(ncols=3, nrows=2)
    (ax_s, ax_bf, ax_mu), (ax_a, ax_st, ax_l) = axes
    h_min, h_max, c_true = (float(v) for v in arr["true_stats"])
    t = arr["t"]
    every = max(1, len(t) // 25)
    late_d = float(record.prediction["true_statistics"]["late_dist_to_opt"])

    # (a) surface at the late true distance
    mu_opt, a_opt = (float(v) for v in theory.singlestep(c_true, late_d, h_min, h_max))
    mu_lb = float(theory.min_robust_momentum(h_max / h_min))
    a_top = 1.3 * (1.0 - math.sqrt(mu_lb)) ** 2 / h_min
    mu_g, a_g = np.meshgrid(np.linspace(1e-3, 0.999, 240), np.linspace(a_top / 400, a_top, 200))
    surface = np.log10(mu_g * late_d**2 + a_g**2 * c_true)
    mesh = ax_s.contourf(mu_g, a_g, surface, levels=24, cmap="viridis")
    fig.colorbar(mesh, ax=ax_s, label=r"$\log_{10}(\mu D^2 + \alpha^2 C)$")
    m = np.linspace(0.0, 0.999, 400)
    curve = (1 - np.sqrt(m)) ** 2 / h_min
    ax_s.plot(m[m >= mu_lb], curve[m >= mu_lb], color="w", lw=1.4, label="feasible curve")
    ax_s.plot(m[m < mu_lb], curve[m < mu_lb], color="w", lw=1.0, ls=":", label="infeasible")
    ax_s.axvline(mu_lb, color="w", lw=0.8, ls="--")
    ax_s.plot(mu_opt, a_opt, "*", color=style("yellowfin")["color"], ms=13, mec="k",
              label="closed form")  # fmt: skip
    x_bf = float(np.interp(np.log(late_d), np.log(arr["d_grid"]), arr["x_bf"]))
    ax_s.plot(x_bf**2, (1 - x_bf) ** 2 / h_min, "x", color="r", ms=8, label="brute force")
    ax_s.set_ylim(0, a_top)
    ax_s.set_xlabel(r"momentum $\mu$")
    ax_s.set_ylabel(r"learning rate $\alpha$")
    ax_s.set_title(f"SingleStep surface, D={late_d:.2g}, C={c_true:.2g}")
    ax_s.legend(fontsize=6.5, facecolor="0.8", loc="upper right")

    # (b) closed form vs brute force over D
    d_fine = np.geomspace(arr["d_grid"].min(), arr["d_grid"].max(), 300)
    mu_fine, _ = theory.singlestep(c_true, d_fine, h_min, h_max)
    ax_bf.semilogx(d_fine, np.sqrt(mu_fine), **style("theory", label="closed form"))
    ax_bf.semilogx(arr["d_grid"], arr["x_bf"], **style("measured", mfc="none", label="brute force"))
    ax_bf.axhline(math.sqrt(mu_lb), **style("bound", label="dynamic-range bound"))
    ax_bf.set_xlabel("distance to optimum D")
    ax_bf.set_ylabel(r"optimal $\sqrt{\mu}$")
    ax_bf.set_title(f"SingleStep optimum (C={c_true:.2g}, " + r"$\kappa$" + f"={h_max / h_min:g})")
    ax_bf.legend(fontsize=7)

    # (c), (d) YellowFin's tuning vs SingleStep at the true statistics
    for ax, key, true_key, name in (
        (ax_mu, "yf_momentum", "mu_true", r"momentum $\mu_t$"),
        (ax_a, "yf_learning_rate", "alpha_true", r"learning rate $\alpha_t$"),
    ):
        _band(ax, t[1:], arr[key][:, 1:], "yellowfin", "YellowFin", every)
        ax.plot(t[1:], arr[true_key][:, 1:].mean(0),
                **style("prediction", label="SingleStep, true statistics"))  # fmt: skip
        ax.set_xlabel("step t")
        ax.set_ylabel(name)
        ax.legend(fontsize=7)
    ax_mu.set_title("tuned momentum")
    ax_a.set_yscale("log")
    ax_a.set_title("tuned learning rate")

    # (e) oracles vs true statistics
    cols = [style(k)["color"] for k in ("heavy-ball", "momo", "adam", "yellowfin-closed")]
    truths = (h_min, h_max, c_true, None)
    names = (r"$h_{min}$", r"$h_{max}$", "C", "D")
    for col, key, truth, name in zip(
        cols, ("yf_h_min", "yf_h_max", "yf_grad_var", "yf_dist_to_opt"), truths, names,
        strict=True,
    ):  # fmt: skip
        ax_st.semilogy(t[1:], arr[key][:, 1:].mean(0), color=col, lw=0.8, marker="o", ms=2.5,
                       mfc="none", markevery=every, label=f"YellowFin {name}")  # fmt: skip
        if truth is not None:
            ax_st.axhline(truth, color=col, lw=1.2, ls="--")
    ax_st.semilogy(t, arr["dist"].mean(0), color=cols[3], lw=1.2, ls="--")
    ax_st.plot([], [], **style("prediction", label="true value"))
    ax_st.set_xlabel("step t")
    ax_st.set_ylabel("statistic")
    ax_st.set_title("measured oracles vs the NQM")
    ax_st.legend(fontsize=6, ncol=2)

    # (f) loss vs the best grid heavy ball and its closed-form floor
    alpha_b, mu_b = (float(v) for v in arr["best"])
    _band(ax_l, t, arr["yf_loss"], "yellowfin", "YellowFin", every)
    _band(ax_l, t, arr["hb_best_loss"], "heavy-ball",
          rf"best grid heavy ball ($\alpha$={alpha_b:.2g}, $\mu$={mu_b:g})", every)  # fmt: skip
    floor = float(record.prediction["floor_best_heavy_ball"])
    ax_l.axhline(floor, **style("theory", label="its closed-form floor"))
    ax_l.set_yscale("log")
    ax_l.yaxis.set_minor_formatter(NullFormatter())
    ax_l.set_xlabel("step t")
    ax_l.set_ylabel("loss")
    ax_l.set_title("NQM loss")
    ax_l.legend(fontsize=6.5)
    return fig


EXPERIMENT_CLAIM = (
    "SingleStep's closed form minimises mu D^2 + alpha^2 C on its constraint set, YellowFin "
    "applies it to its measured statistics, and on the noisy quadratic model its tuned momentum "
    "approaches SingleStep's at the true statistics while its final loss stays within a factor 2 "
    "of the best grid-tuned heavy ball."
)

EXPERIMENT = register(
    Experiment(
        name="singlestep-yellowfin-nqm",
        title="SingleStep surface and YellowFin on the NQM",
        claim=EXPERIMENT_CLAIM,
        config=SingleStepYellowFinConfig,
        run=run,
        plot=plot,
        device="cpu",
        order=7,
    )
)
