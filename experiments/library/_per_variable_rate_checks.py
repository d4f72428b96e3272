"""Checks of experiment 12 (per-variable-rate), fixed before any measurement.

Per network stage (``mlp``, and ``lstm`` in the full tier), from the run summaries that
:mod:`experiments.library._per_variable_rate_runs` returns:

Preconditions (the setting the claim needs; a failure makes the record ``not applicable``):

- ``<stage>_minimiser_reached``: every full-batch run is finite, its distance to the polished
  reference fell 1000x below the fit window (the run itself reached the minimiser), the polished
  gradient norm is at most ``1e-10`` and the Hessian there is positive definite (``h_min > 0``).
- ``<stage>_spectrum_as_designed``: every run planned inside the robust interval has its measured
  spectrum inside, every run planned outside has ``alpha h_min < (1 - sqrt(mu))^2``, and at least
  one run is inside.
- ``lstm_lanczos_converged``: the residual bounds of both extreme Ritz values are below
  ``ritz_tol`` times the value (Golub & Van Loan, Thm. 10.1.4).
- ``lstm_minimiser_uses_input``: at every run's polished minimiser the LSTM reads its input: its
  data loss is below both input-ignoring references, the best constant predictor (the targets'
  unigram entropy) and the same network with its input kernel zeroed, each by more than the gain's
  spread over the windows (the 0.05 bootstrap quantile of the mean gain exceeds ``ROUNDING``;
  :func:`experiments.library._per_variable_rate_runs.input_use`). A minimiser with its input
  kernel at 0 fails it: zeroing the kernel then changes nothing.

Verifications (linearisation theory against the measured late rates: inside the robust interval
every mode contracts at exactly ``sqrt(mu)``, so every variable does; outside, the late rate is the
slowest mode's ``max_h rho(alpha, mu, h)``):

- ``<stage>_inside_fraction_follows_sqrt_mu``: in every inside run at least ``threshold`` of the
  tracked variables have ``|log rho_i - log sqrt(mu)| <= tol``, ``tol`` the run's measured spread
  of the finite-window fit (half the 0.95 quantile of the two half-window fits' disagreement).
- ``<stage>_outside_median_follows_slowest_mode``: in every outside run whose prediction is more
  than two tolerances from ``sqrt(mu)``, ``|log median_i rho_i - log rho_predicted| <= tol``;
  ``unresolved`` when no outside run is resolvable.

Minibatch runs (the noisy case) are recorded beside these and decide nothing.
"""

from __future__ import annotations

import math

import numpy as np

from experiments.framework import Check, check

GRAD_FLOOR = 1e-10
# a gain in nats must exceed this to count: 1e4 x the float64 rounding of a difference of two means
# of ~500 cross-entropies of size ~3 (about 1e-13), far below any gain that reading the input gives
ROUNDING = 1e-9


def usable(r: dict) -> bool:
    """Whether a full-batch run reached a minimiser past its fit window (first precondition)."""
    return bool(
        r["finite"]
        and r["end_below_window"]
        and r["grad_norm"] <= GRAD_FLOOR
        and r["h_min"] > 0
        and np.isfinite(r["log_tolerance"])
    )


def _key(r: dict) -> str:
    return f"mu={r['mu']:g},alpha={r['alpha']:.4g}"


def _as_designed(r: dict) -> bool:
    if r["kind"] == "inside":
        return bool(r["inside"])
    return bool(r["alpha"] < r["alpha_lo"])


def stage_checks(
    stage: str,
    results: list[dict],
    threshold: float,
    pilot_ok: bool,
    *,
    headline: bool = False,
    lanczos: dict | None = None,
    ritz_tol: float = 1e-3,
) -> list[Check]:
    """The checks of one network stage (module docstring).

    Args:
        stage: ``"mlp"`` or ``"lstm"`` (prefix of the check names).
        results: the full-batch runs' summaries.
        threshold: smallest fraction of variables that must follow ``sqrt(mu)`` inside.
        pilot_ok: whether the pilot minimiser that placed the learning rates was reached.
        headline: mark the inside check as the record's headline.
        lanczos: for a Lanczos stage, ``{run key: (rel. residual min, rel. residual max)}``.
        ritz_tol: largest relative residual bound of an extreme Ritz value.
    """
    ok = [r for r in results if r["finite"] and usable(r)]
    checks = [
        check(
            f"{stage}_minimiser_reached",
            "precondition",
            bool(results) and len(ok) == len(results) and pilot_ok,
            predicted="every run converges to a minimiser with a positive definite Hessian",
            measured={
                "usable_runs": f"{len(ok)}/{len(results)}",
                "pilot_reached": bool(pilot_ok),
                "largest_polished_grad_norm": max(
                    (r.get("grad_norm", math.inf) for r in results), default=math.inf
                ),
            },
            note="a run that diverged, ended before its distance fell 1000x below the fit "
            "window, or stopped at a saddle has no late rate to compare",
        )
    ]
    designed = [_as_designed(r) for r in ok]
    inside = [r for r in ok if r["inside"] and r["kind"] == "inside"]
    checks.append(
        check(
            f"{stage}_spectrum_as_designed",
            "precondition",
            all(designed) and bool(inside),
            predicted="inside runs: (1 - sqrt(mu))^2 <= alpha h <= (1 + sqrt(mu))^2 for all h; "
            "outside runs: alpha h_min < (1 - sqrt(mu))^2",
            measured={
                _key(r) + f",{r['kind']}": {
                    "alpha_lo": r["alpha_lo"],
                    "alpha_hi": r["alpha_hi"],
                    "as_designed": d,
                }
                for r, d in zip(ok, designed, strict=True)
            },
            note=f"{sum(designed)}/{len(ok)} runs placed as planned, {len(inside)} inside",
        )
    )
    if lanczos is not None:
        worst = max((max(v) for v in lanczos.values()), default=math.inf)
        checks.append(
            check(
                f"{stage}_lanczos_converged",
                "precondition",
                bool(lanczos) and worst <= ritz_tol,
                predicted=f"relative residual bound of h_min and h_max <= {ritz_tol:g}",
                measured=lanczos,
                note=f"largest relative residual bound {worst:.2g}",
            )
        )
    if any("input_data_loss" in r for r in results):
        checks.append(input_check(stage, results))
    frac_in = [r["fraction_following_sqrt_mu"] for r in inside]
    checks.append(
        check(
            f"{stage}_inside_fraction_follows_sqrt_mu",
            "verification",
            (min(frac_in) >= threshold) if inside else None,
            predicted=f">= {threshold:.0%} of variables within tol of sqrt(mu)",
            measured={_key(r): round(r["fraction_following_sqrt_mu"], 4) for r in inside},
            tolerance={_key(r): r["log_tolerance"] for r in inside},
            note=f"smallest fraction over {len(inside)} inside runs: "
            f"{min(frac_in, default=float('nan')):.1%}; tol in log-rate = the measured spread "
            "of the finite-window fit",
            headline=headline,
        )
    )
    outside = [r for r in ok if r["kind"] == "outside"]
    resolvable = [
        r
        for r in outside
        if abs(math.log(r["predicted_rate"]) - math.log(r["sqrt_mu"])) > 2 * r["log_tolerance"]
    ]
    gaps = {
        _key(r): abs(math.log(r["median_rate"]) - math.log(r["predicted_rate"]))
        / r["log_tolerance"]
        for r in resolvable
    }
    checks.append(
        check(
            f"{stage}_outside_median_follows_slowest_mode",
            "verification",
            (max(gaps.values()) <= 1.0) if resolvable else None,
            predicted={_key(r): r["predicted_rate"] for r in outside},
            measured={
                _key(r): {
                    "median_rate": r["median_rate"],
                    "following_prediction": round(r["fraction_following_prediction"], 4),
                    "following_sqrt_mu": round(r["fraction_following_sqrt_mu"], 4),
                }
                for r in outside
            },
            tolerance={_key(r): r["log_tolerance"] for r in outside},
            note=f"{len(resolvable)}/{len(outside)} outside runs resolvable from sqrt(mu); "
            "largest |log median - log predicted| in tolerances: "
            f"{max(gaps.values(), default=float('nan')):.2f}",
        )
    )
    return checks


def input_check(stage: str, results: list[dict]) -> Check:
    """``<stage>_minimiser_uses_input`` (module docstring) over the runs that measured it."""
    measured = [r for r in results if "input_data_loss" in r]
    lows = [
        min(r["input_gain_over_constant_lower"], r["input_gain_over_blind_lower"]) for r in measured
    ]
    return check(
        f"{stage}_minimiser_uses_input",
        "precondition",
        bool(measured) and len(measured) == len(results) and min(lows) > ROUNDING,
        predicted="data loss at w* below the unigram entropy and below the loss with the "
        f"input kernel zeroed, each gain's 0.05 bootstrap quantile over windows > {ROUNDING:g}",
        measured={
            _key(r): {
                "data_loss": r["input_data_loss"],
                "unigram_entropy": r["input_unigram_entropy"],
                "loss_input_kernel_zeroed": r["input_blind_loss"],
                "input_kernel_norm": r["input_kernel_norm"],
                "gain_over_constant_q05": r["input_gain_over_constant_lower"],
                "gain_over_blind_q05": r["input_gain_over_blind_lower"],
            }
            for r in measured
        },
        note=f"{len(measured)}/{len(results)} runs measured; smallest 0.05 quantile of a gain: "
        f"{min(lows, default=float('nan')):.3g} nats (a minimiser that ignores its input has a "
        "gain over the blind network of exactly 0)",
    )
