"""Runs of experiment 12 (per-variable-rate): pilot minimiser, full-batch and minibatch runs.

Each function returns a flat dict of numbers and arrays, so that it can be kept as a
:func:`experiments.runtime.stage` and read back after an interruption (:func:`to_arrays`,
:func:`from_arrays`). The prediction (:func:`theory.spectral_radius` at the Hessian's eigenvalues,
exact or Lanczos) and the measurement (:func:`gpu.fullbatch.late_rates` on the iterates) come from
separate code paths.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

import theory
from gpu import per_variable_rates
from gpu.fullbatch import (
    FlatProblem,
    heavy_ball_tracked,
    hvp_function,
    lanczos_extremes,
    late_rates,
    newton_cg_polish,
    polish,
)

SHOWN = 30  # variables kept per run for the figure
LOADING = 1e-8  # an eigenvector component above this puts its mode into the variable
SPAN = math.log(1e18)  # a run lasts until the predicted rate has shrunk the distance by 1e18
PILOT_COST = 2000  # work units (steps) charged for a pilot or a polish, for the ETA
RESAMPLES = 2000  # bootstrap resamples of the windows for the input-use gains


def to_arrays(result: dict) -> dict[str, np.ndarray]:
    """A run's summary as arrays (for :func:`experiments.runtime.stage`)."""
    return {k: np.asarray(v) for k, v in result.items()}


def from_arrays(arrays: dict[str, np.ndarray]) -> dict:
    """Inverse of :func:`to_arrays` (0-d arrays back to Python scalars)."""
    out = {}
    for k, v in arrays.items():
        v = np.asarray(v)
        out[k] = v.item() if v.ndim == 0 else v
    return out


def spectrum_ends(problem: FlatProblem, point: np.ndarray, exact: bool, lanczos_steps: int):
    """``(h_min, h_max, relative residuals or None, eigenvectors or None, w*, grad norm)`` after
    polishing ``point``: exact Hessian (Newton polish) or Lanczos (Newton-CG polish)."""
    if exact:
        ref = polish(problem, point)
        ev = ref.eigenvalues
        return float(ev[0]), float(ev[-1]), None, ref.eigenvectors, ev, ref.point, ref.grad_norm
    w, _, gnorm, _, _ = newton_cg_polish(problem, point)
    steps = min(lanczos_steps, problem.size)
    rz = lanczos_extremes(hvp_function(problem, w), problem.size, steps, seed=0)
    rel = (rz.residual_min / abs(rz.h_min), rz.residual_max / abs(rz.h_max))
    ev = np.array([rz.h_min, rz.h_max])
    return rz.h_min, rz.h_max, rel, None, ev, w, gnorm


def run_one(
    problem: FlatProblem,
    pilot_ends: tuple[float, float],
    alpha: float,
    mu: float,
    kind: str,
    coords: np.ndarray,
    *,
    exact: bool,
    lanczos_steps: int,
    upper: float,
    lower: float,
    max_steps: int,
    quantile: float,
    on_chunk: Callable[[int, int], None] | None = None,
) -> dict:
    """One full-batch heavy-ball run: tracked iterates, polished reference, spectrum ends there,
    prediction ``max(rho(alpha, mu, h_min), rho(alpha, mu, h_max))`` and late per-variable rates."""
    steps = planned_steps(pilot_ends, alpha, mu, max_steps)
    traj, w_end = heavy_ball_tracked(problem, alpha, mu, steps, coords, on_chunk=on_chunk)
    base = {"kind": kind, "mu": mu, "alpha": alpha, "steps": traj.shape[0] - 1}
    if not (np.all(np.isfinite(w_end)) and np.all(np.isfinite(traj))):
        return {**base, "finite": False}
    h_min, h_max, rel, vecs, ev, ref, gnorm = spectrum_ends(problem, w_end, exact, lanczos_steps)
    lo, hi = theory.robust_interval(mu, max(h_min, 1e-300), h_max)
    modes = theory.spectral_radius(alpha, mu, np.maximum(ev, 1e-300))
    predicted = float(np.max(modes))
    fit = late_rates(traj, ref[coords], upper=upper, lower=lower)
    tol = fit.log_spread(quantile)
    log_rho = np.log(fit.rates)
    target = math.sqrt(mu)
    follow_pred = fraction_within(fit.rates, predicted, tol)
    follow_sqrt = fraction_within(fit.rates, target, tol)
    out = {
        **base,
        "finite": True,
        "grad_norm": gnorm,
        "end_to_reference": float(np.linalg.norm(w_end - ref)),
        "end_below_window": bool(fit.distance[-1] <= 1e-3 * lower * fit.distance[0]),
        "h_min": h_min,
        "h_max": h_max,
        "alpha_lo": float(lo),
        "alpha_hi": float(hi),
        "inside": bool(h_min > 0 and lo <= alpha <= hi),
        "predicted_rate": predicted,
        "sqrt_mu": target,
        "window": np.array(fit.window),
        "log_tolerance": tol,
        "median_rate": float(np.nanmedian(fit.rates)),
        "fraction_following_prediction": follow_pred,
        "fraction_following_sqrt_mu": follow_sqrt,
        "_rates": fit.rates,
        "_shown": _shown(traj, ref[coords], fit.window),
        "_reference": ref,
    }
    if rel is not None:
        out["ritz_residual_min"], out["ritz_residual_max"] = rel
    if hasattr(problem, "without_input"):
        out.update(input_use(problem, ref))
    if (
        vecs is not None
    ):  # variables outside the slowest eigenvector follow the slowest mode they see
        loads = np.abs(vecs[coords]) > LOADING
        per_var = np.max(np.where(loads, modes[None, :], 0.0), axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            own = np.abs(log_rho - np.log(per_var)) <= tol
        out["fraction_loading_on_slowest_mode"] = float(np.mean(per_var == predicted))
        out["fraction_following_own_slowest_mode"] = float(np.mean(own))
    return out


def noisy_run(
    problem: FlatProblem,
    reference: np.ndarray,
    alpha: float,
    mu: float,
    steps: int,
    coords: np.ndarray,
    batch_size: int,
    seed: int,
    *,
    floor: float = 1e-2,
    rel_tol: float = 0.2,
    on_chunk: Callable[[int, int], None] | None = None,
) -> dict:
    """Minibatch heavy ball at the same ``alpha, mu``, measured as the paper does
    (:func:`gpu.rates.per_variable_rates`: rate towards the run's own end point, ``rel_tol``
    relative tolerance); the minibatch noise keeps it far from the full-batch minimiser
    (``floor_relative_distance``: the smallest distance to it over the run, relative to the
    start)."""
    traj, _ = heavy_ball_tracked(
        problem, alpha, mu, steps, coords, batch_size=batch_size, seed=seed, on_chunk=on_chunk
    )
    d = np.linalg.norm(traj - reference[coords], axis=1)
    # the paper's measurement: distance to the run's own end (mean of the last tenth), upper
    # envelope fitted from the start down to ``floor``, tolerance rel_tol of log sqrt(mu)
    rep = per_variable_rates(traj, mu, tail=max(10, steps // 10), floor=floor, rel_tol=rel_tol)
    finite = np.isfinite(rep.rates)
    return {
        "mu": mu,
        "alpha": alpha,
        "batch_size": batch_size,
        "steps": traj.shape[0] - 1,
        "finite": bool(np.all(np.isfinite(traj))),
        "floor_relative_distance": float(np.min(d) / d[0]) if d[0] > 0 else float("nan"),
        "rel_tol": rel_tol,
        "median_rate": float(np.median(rep.rates[finite])) if finite.any() else -1.0,
        "fraction_following_sqrt_mu": rep.fraction_following,
        "sqrt_mu": math.sqrt(mu),
    }


def input_use(problem, point: np.ndarray, quantile: float = 0.05) -> dict:
    """Whether the minimiser ``point`` of a character LSTM reads its input.

    Per window ``s``: the data loss ``L_s`` at ``point``, the best constant predictor's ``C_s``
    (mean over windows: the targets' unigram entropy ``H``) and the data loss ``A_s`` with the
    input kernel zeroed (the same network, blind to its input). The gains ``C_s - L_s`` and
    ``A_s - L_s`` are averaged over the windows; ``*_lower`` is the ``quantile`` of that mean over
    ``RESAMPLES`` bootstrap resamples of the windows (seed 0), so a positive lower end says the gain
    exceeds its spread over the windows. A minimiser with its input kernel at 0 has ``A = L``.
    """
    data = problem.data_losses(point)
    ablated = problem.data_losses(problem.without_input(point))
    const = problem.constant_losses()
    rows = np.random.default_rng(0).integers(0, data.size, (RESAMPLES, data.size))
    out = {
        "input_data_loss": float(data.mean()),
        "input_unigram_entropy": float(const.mean()),
        "input_blind_loss": float(ablated.mean()),
        "input_kernel_norm": float(np.linalg.norm(point[problem.input_kernel])),
    }
    for name, gain in (("constant", const - data), ("blind", ablated - data)):
        out[f"input_gain_over_{name}"] = float(gain.mean())
        out[f"input_gain_over_{name}_lower"] = float(np.quantile(gain[rows].mean(1), quantile))
    return out


def fraction_within(rates: np.ndarray, rate: float, log_tol: float) -> float:
    """Fraction of ``rates`` (NaN counts as not following) with ``|log rho_i - log rate| <=
    log_tol``.

    Example:
        >>> fraction_within(np.array([0.99, 0.995, np.nan, 0.9]), 0.99, 1e-3)
        0.25
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.mean(np.abs(np.log(np.asarray(rates)) - math.log(rate)) <= log_tol))


def planned_steps(ends: tuple[float, float], alpha: float, mu: float, max_steps: int) -> int:
    """Steps until the pilot's predicted rate shrinks the distance by ``e^SPAN`` (capped)."""
    guess = float(np.max(theory.spectral_radius(alpha, mu, np.asarray(ends))))
    if not 0 < guess < 1:
        return max_steps
    return int(min(max_steps, math.ceil(SPAN / -math.log(guess))))


def _shown(traj: np.ndarray, ref: np.ndarray, window: tuple[int, int]) -> np.ndarray:
    a, b = window
    shown = np.abs(traj[a:b, :SHOWN] - ref[:SHOWN]) if b > a else np.zeros((1, SHOWN))
    return shown / np.maximum(shown[:1], 1e-300)
