"""Experiment 12: each scalar variable of a real network converges at the predicted late rate.

Claim (Zhang & Mitliagkas, "YellowFin and the Art of Momentum Tuning", arXiv 1706.03471, Sec. 3.1
and the per-variable figure): with a fixed momentum ``mu`` and a learning rate ``alpha`` that puts
the whole Hessian spectrum inside the robust interval, every scalar variable approaches the
minimiser at ``sqrt(mu)`` per step; when the smallest eigenvalue lies outside it (``alpha h_min <
(1 - sqrt(mu))^2``), the variables follow the slowest mode instead.

Protocol (deterministic, so that a rate is a rate and not drift or minibatch noise):
full-batch heavy ball (``optax.sgd(alpha, momentum=mu)``) in float64 on a ``tanh`` MLP on the
digits with weight decay (:func:`gpu.fullbatch.digits_mlp_problem`; the weight decay makes a
minimiser exist). The reference ``w*`` is the run's end point polished by L-BFGS and Newton steps
down to the float64 floor of the gradient (:func:`gpu.fullbatch.polish`), and the exact Hessian
there gives the prediction: each variable is a mixture of the Hessian's modes, so
its late rate is ``max_h rho(alpha, mu, h)`` (:func:`theory.spectral_radius`, Lemma 1), which is
``sqrt(mu)`` exactly when every ``h`` lies in the robust interval (:func:`theory.robust_interval`).
A pilot minimiser (L-BFGS from the same start) places the learning rates: inside runs at
``position`` along the robust interval in log scale, outside runs at ``factor x alpha_lo`` so that
``h_min`` is lazy.

Measurement: :func:`gpu.fullbatch.late_rates` fits every variable's rate over the late window
(global distance between ``lower`` and ``upper`` times its start). Tolerance: the measured spread
of those fits (half the 95th percentile of the two half-window fits' disagreement, in log-rate). A
variable follows a rate ``r`` when ``|log rho_i - log r| <= tol``. A variable outside the slowest
mode's eigenvector (a weight from a pixel that is zero in every image has the Hessian row
``lambda e_i``) follows the slowest mode it loads on; the record reports that refinement beside the
claim's prediction.

Tiers: quick (8-unit MLP, 610 parameters, the first 512 training digits, mu = 0.95 and 0.99, one
inside and one outside run each); full (16 units on all 1437 training digits, mu = 0.9, 0.95, 0.99,
three inside and two outside learning rates each); gpu (64 units, 4810 parameters, four momenta).
Not covered yet: the LSTM (Lanczos with Hessian-vector products) and minibatch runs as the noisy
case.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

import theory
from experiments.framework import Check, Experiment, Record, check, register
from experiments.library._per_variable_rate_plot import plot
from gpu.data import load_digits
from gpu.fullbatch import (
    digits_mlp_problem,
    heavy_ball_trajectory,
    late_rates,
    polish,
)

SHOWN = 30  # variables kept per run for the figure
LOADING = 1e-8  # an eigenvector component above this puts its mode into the variable
SPAN = math.log(1e18)  # a run lasts until the predicted rate has shrunk the distance by 1e18


@dataclasses.dataclass(frozen=True)
class PerVariableRateConfig:
    """Network, momenta, learning-rate placement and fit window.

    Attributes:
        hidden, n_train, weight_decay: the ``tanh`` MLP, the first ``n_train`` digits, ``lambda``.
        momenta: the fixed momenta.
        positions: inside runs at ``alpha_lo (alpha_hi / alpha_lo)^p`` for each ``p`` in (0, 1).
        factors: outside runs at ``factor x min(alpha_lo, alpha_hi)`` (``h_min`` lazy), < 1.
        upper, lower: fit window levels of the global distance relative to its start.
        max_steps: cap on a run's length (a run whose window is not reached is not applicable).
        threshold: smallest fraction of variables that must follow the prediction.
        quantile: quantile of the half-window fit disagreement that sets the tolerance.
    """

    hidden: int = 16
    n_train: int = 1437
    weight_decay: float = 1e-2
    momenta: tuple[float, ...] = (0.9, 0.95, 0.99)
    positions: tuple[float, ...] = (0.25, 0.5, 0.75)
    factors: tuple[float, ...] = (0.5, 0.7)
    upper: float = 1e-4
    lower: float = 1e-9
    max_steps: int = 30000
    threshold: float = 0.9
    quantile: float = 0.95

    @classmethod
    def quick(cls) -> PerVariableRateConfig:
        """An 8-unit MLP on 512 digits, mu = 0.95 and 0.99, one inside and one outside run each."""
        return cls(hidden=8, n_train=512, momenta=(0.95, 0.99), positions=(0.5,), factors=(0.7,))

    @classmethod
    def gpu(cls) -> PerVariableRateConfig:
        """Paper-scale tier: a 64-unit MLP (4810 parameters, exact Hessian) and four momenta."""
        return cls(hidden=64, momenta=(0.9, 0.95, 0.99, 0.995), max_steps=60000)


def _run_one(problem, ev0, alpha, mu, cfg, kind):
    """One heavy-ball run: trajectory, polished reference, Hessian, prediction, late rates."""
    guess = float(np.max(theory.spectral_radius(alpha, mu, ev0)))
    steps = int(min(cfg.max_steps, math.ceil(SPAN / -math.log(guess))))
    traj = heavy_ball_trajectory(problem, alpha, mu, steps)
    if not np.all(np.isfinite(traj[-1])):
        return {"kind": kind, "mu": mu, "alpha": alpha, "steps": steps, "finite": False}
    ref = polish(problem, traj[-1])
    ev = ref.eigenvalues
    lo, hi = theory.robust_interval(mu, max(ev[0], 1e-300), ev[-1])
    modes = theory.spectral_radius(alpha, mu, np.maximum(ev, 1e-300))
    predicted = float(np.max(modes))
    # per variable: the slowest mode it loads on (a variable outside a mode's eigenvector, such
    # as a weight from a pixel that is zero in every image, never sees that mode)
    loads = np.abs(ref.eigenvectors) > LOADING
    per_var = np.max(np.where(loads, modes[None, :], 0.0), axis=1)
    fit = late_rates(traj, ref.point, upper=cfg.upper, lower=cfg.lower)
    tol = fit.log_spread(cfg.quantile)
    log_rho = np.log(fit.rates)
    target = math.sqrt(mu)
    with np.errstate(invalid="ignore"):
        follow_pred = float(np.mean(np.abs(log_rho - math.log(predicted)) <= tol))
        follow_sqrt = float(np.mean(np.abs(log_rho - math.log(target)) <= tol))
        follow_var = float(np.mean(np.abs(log_rho - np.log(per_var)) <= tol))
    a, b = fit.window
    shown = np.abs(traj[a:b, :SHOWN] - ref.point[:SHOWN]) if b > a else np.zeros((1, SHOWN))
    return {
        "kind": kind,
        "mu": mu,
        "alpha": alpha,
        "steps": steps,
        "finite": True,
        "grad_norm": ref.grad_norm,
        "end_to_reference": float(np.linalg.norm(traj[-1] - ref.point)),
        "end_below_window": bool(fit.distance[-1] <= 1e-3 * cfg.lower * fit.distance[0]),
        "h_min": float(ev[0]),
        "h_max": float(ev[-1]),
        "alpha_lo": float(lo),
        "alpha_hi": float(hi),
        "inside": bool(ev[0] > 0 and lo <= alpha <= hi),
        "predicted_rate": predicted,
        "sqrt_mu": target,
        "window": [a, b],
        "log_tolerance": tol,
        "median_rate": float(np.nanmedian(fit.rates)),
        "fraction_following_prediction": follow_pred,
        "fraction_following_sqrt_mu": follow_sqrt,
        "fraction_loading_on_slowest_mode": float(np.mean(per_var == predicted)),
        "fraction_following_own_slowest_mode": follow_var,
        "_rates": fit.rates,
        "_shown": shown / np.maximum(shown[:1], 1e-300),
    }


def _usable(r: dict) -> bool:
    return bool(
        r["finite"]
        and r["end_below_window"]
        and r["grad_norm"] <= 1e-10
        and r["h_min"] > 0
        and np.isfinite(r["log_tolerance"])
    )


def decide_checks(
    results: list[dict], cfg: PerVariableRateConfig, pilot_ok: bool, ev0: np.ndarray
) -> list[Check]:
    """The record's checks from the runs' summaries (the dicts :func:`_run_one` returns).

    Preconditions: every run usable (converged past the window to a minimiser with a positive
    definite Hessian) and at least one run inside the robust interval. Reproductions: inside runs,
    at least ``threshold`` of the variables follow ``sqrt(mu)`` (headline); outside runs whose
    prediction is resolvable from ``sqrt(mu)`` (more than two tolerances apart), at least
    ``threshold`` follow the predicted slowest mode (unresolved when none is resolvable).
    """
    ok = [r for r in results if _usable(r)]
    inside = [r for r in ok if r["inside"]]
    outside = [r for r in ok if not r["inside"]]
    checks = [
        check(
            "minimiser_reached",
            "precondition",
            len(ok) == len(results) and pilot_ok,
            predicted="every run converges to a minimiser with a positive definite Hessian",
            measured={
                "usable_runs": f"{len(ok)}/{len(results)}",
                "pilot_h_min": float(ev0[0]),
                "largest_polished_grad_norm": max(
                    (r.get("grad_norm", np.inf) for r in results), default=np.inf
                ),
            },
            note="a run that diverged, ended before its distance fell 1000x below the fit "
            "window, or stopped at a saddle has no late rate to compare",
        ),
        check(
            "inside_runs_exist",
            "precondition",
            bool(inside),
            measured=f"{len(inside)} runs with the whole spectrum in the robust interval",
            note="the pilot's condition number "
            f"{ev0[-1] / max(ev0[0], 1e-300):.3g} must fit in ((1 + sqrt(mu)) / (1 - sqrt(mu)))^2",
        ),
    ]
    frac_in = min((r["fraction_following_sqrt_mu"] for r in inside), default=float("nan"))
    checks.append(
        check(
            "inside_every_variable_follows_sqrt_mu",
            "reproduction",
            frac_in >= cfg.threshold if inside else None,
            predicted=f">= {cfg.threshold:.0%} of variables within tol of sqrt(mu)",
            measured={
                f"mu={r['mu']:g},alpha={r['alpha']:.4g}": round(r["fraction_following_sqrt_mu"], 4)
                for r in inside
            },
            tolerance={
                f"mu={r['mu']:g},alpha={r['alpha']:.4g}": r["log_tolerance"] for r in inside
            },
            note="smallest fraction over the inside runs: "
            f"{frac_in:.1%}; tolerance in log-rate from the half-window fits' spread",
            headline=True,
        )
    )
    resolvable = [
        r
        for r in outside
        if abs(math.log(r["predicted_rate"]) - math.log(r["sqrt_mu"])) > 2 * r["log_tolerance"]
    ]
    frac_out = min((r["fraction_following_prediction"] for r in resolvable), default=float("nan"))
    checks.append(
        check(
            "outside_variables_follow_slowest_mode",
            "reproduction",
            (frac_out >= cfg.threshold) if resolvable else None,
            predicted={
                f"mu={r['mu']:g},alpha={r['alpha']:.4g}": r["predicted_rate"] for r in outside
            },
            measured={
                f"mu={r['mu']:g},alpha={r['alpha']:.4g}": {
                    "median_rate": r["median_rate"],
                    "following_prediction": round(r["fraction_following_prediction"], 4),
                    "following_sqrt_mu": round(r["fraction_following_sqrt_mu"], 4),
                    "loading_on_slowest_mode": round(r["fraction_loading_on_slowest_mode"], 4),
                    "following_own_slowest_mode": round(
                        r["fraction_following_own_slowest_mode"], 4
                    ),
                }
                for r in outside
            },
            tolerance=f">= {cfg.threshold:.0%} within the run's log tolerance of the prediction",
            note=f"{len(resolvable)}/{len(outside)} outside runs have a prediction farther than "
            "two tolerances from sqrt(mu); smallest fraction following it: "
            f"{frac_out:.1%}; the others are variables outside the slowest eigenvector "
            "(Hessian row lambda e_i: weights from pixels that are zero in every image), which "
            "follow the slowest mode they load on",
        )
    )
    return checks


def run(cfg: PerVariableRateConfig, seed: int) -> Record:
    """Pilot minimiser, then inside and outside runs per momentum; checks on the fractions."""
    problem = digits_mlp_problem(load_digits(), cfg.hidden, cfg.weight_decay, seed, cfg.n_train)
    pilot = polish(problem, problem.init)
    ev0 = pilot.eigenvalues
    runs = []
    for mu in cfg.momenta:
        lo, hi = (float(v) for v in theory.robust_interval(mu, max(ev0[0], 1e-300), ev0[-1]))
        if lo < hi:
            runs += [(lo * (hi / lo) ** p, mu, "inside") for p in cfg.positions]
        runs += [(f * min(lo, hi), mu, "outside") for f in cfg.factors]
    results = [_run_one(problem, ev0, a, mu, cfg, kind) for a, mu, kind in runs]
    checks = decide_checks(results, cfg, pilot.grad_norm <= 1e-10 and ev0[0] > 0, ev0)
    ok = [r for r in results if _usable(r)]
    keys = [k for k in results[0] if not k.startswith("_")] if results else []
    table = [{k: r.get(k) for k in keys} for r in results]
    summary = "; ".join(
        f"mu={r['mu']:g} {r['kind']}: {r['fraction_following_prediction']:.0%} follow the "
        f"predicted {r['predicted_rate']:.5f} (median {r['median_rate']:.5f}), "
        f"{r['fraction_following_sqrt_mu']:.0%} follow sqrt(mu)"
        for r in ok
    )
    return Record(
        claim=EXPERIMENT_CLAIM,
        prediction={
            "rule": "late rate of every variable = max over Hessian eigenvalues h of "
            "rho(alpha, mu, h) (theory.spectral_radius); sqrt(mu) when the whole spectrum is "
            "inside the robust interval",
            "pilot_spectrum": [float(ev0[0]), float(ev0[-1])],
        },
        measurement={"problem": problem.name, "parameters": problem.size, "runs": table},
        tolerance={
            "threshold": cfg.threshold,
            "explanation": "a variable follows rate r when |log rho_i - log r| <= tol, tol = half "
            f"the {cfg.quantile:g} quantile over variables of the disagreement of the fits over "
            "the two halves of the late window (the measured spread of the fit)",
        },
        checks=checks,
        summary=summary or "no usable run",
        arrays=_arrays(results),
    )


def _arrays(results: list[dict]) -> dict[str, np.ndarray]:
    usable = [r for r in results if "_rates" in r]
    if not usable:
        return {}
    width = max(r["_shown"].shape[0] for r in usable)

    def pad(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a, np.full((width - a.shape[0], a.shape[1]), np.nan)])

    return {
        "mu": np.array([r["mu"] for r in usable]),
        "alpha": np.array([r["alpha"] for r in usable]),
        "alpha_lo": np.array([r["alpha_lo"] for r in usable]),
        "inside": np.array([r["inside"] for r in usable]),
        "predicted_rate": np.array([r["predicted_rate"] for r in usable]),
        "log_tolerance": np.array([r["log_tolerance"] for r in usable]),
        "fraction_following_sqrt_mu": np.array([r["fraction_following_sqrt_mu"] for r in usable]),
        "fraction_following_prediction": np.array(
            [r["fraction_following_prediction"] for r in usable]
        ),
        "rates": np.stack([r["_rates"] for r in usable]),
        "shown": np.stack([pad(r["_shown"]) for r in usable]),
    }


EXPERIMENT_CLAIM = (
    "On a real network trained by deterministic heavy ball, every scalar variable converges at "
    "sqrt(mu) when the Hessian spectrum at the minimiser lies inside the robust interval, and at "
    "the predicted slowest-mode rate when its smallest eigenvalue lies outside it."
)

EXPERIMENT = register(
    Experiment(
        name="per-variable-rate",
        title="Per-variable rate on a real network",
        claim=EXPERIMENT_CLAIM,
        config=PerVariableRateConfig,
        run=run,
        plot=plot,
        device="cpu",
        order=12,
    )
)
