"""Experiment 8 (asynchrony begets momentum): the quick run's checks and its verdict's paths."""

from __future__ import annotations

import numpy as np
import pytest

import theory
from experiments import reproduce
from experiments.checks import decide
from experiments.library import asynchrony_momentum
from experiments.library._async_best import best_of, near_optimal_band
from experiments.library._async_checks import best_checks
from experiments.record import Record

MUS = np.round(np.arange(-0.95, 0.76, 0.05), 2)


def _planted(intervals: dict[int, tuple[float, float]], bands: dict[int, tuple[float, float]]):
    """A part-(d) result with the given bootstrap intervals and theory bands (no simulation)."""
    workers = sorted(intervals)
    return {
        "mus": MUS,
        "workers": np.asarray(workers),
        "best": np.asarray([np.mean(intervals[m]) for m in workers]),
        "interval": np.asarray([intervals[m] for m in workers], float),
        "mu_theory": np.asarray([np.mean(bands[m]) for m in workers]),
        "mu_first_order": np.asarray([0.64 - (1 - 1 / m) for m in workers]),
        "theory_band": np.asarray([bands[m] for m in workers], float),
    }


def _by_name(checks):
    return {c.name: c for c in checks}


def test_quick_run_checks_and_renders(tmp_path) -> None:
    exp = asynchrony_momentum.EXPERIMENT
    rec = reproduce.run_experiment(exp, quick=True, seed=0, out=tmp_path)
    assert "plot_error" not in rec.provenance
    png = (tmp_path / exp.name / "figure.png").read_bytes()
    assert png.startswith(b"\x89PNG") and (tmp_path / exp.name / "figure.svg").stat().st_size > 0

    back = Record.load(tmp_path / exp.name)
    c = _by_name(back.checks)
    assert all(ch.kind in ("precondition", "verification", "reproduction") for ch in back.checks)
    # (a)-(c) verifications and the preconditions hold
    for ch in back.checks:
        if ch.kind in ("precondition", "verification"):
            assert ch.passed, (ch.name, ch.note)
    # (d) headline, measured (golden, seed 0, 12 seeds x 2000 steps): the bootstrap interval of
    # the best explicit momentum of single runs lies below 0 at M = 8 and 16, and falls with M
    head = c["best_momentum_negative_M8"]
    assert head.headline and head.kind == "reproduction" and head.passed
    lo8, hi8 = back.measurement["best_momentum_interval"]["8"]
    _, hi16 = back.measurement["best_momentum_interval"]["16"]
    assert -0.5 <= lo8 <= hi8 < 0.0 and hi16 < lo8
    assert c["best_momentum_negative_M16"].passed and c["best_momentum_falls_with_M"].passed
    # the synchronous control: Polyak's momentum for a fixed step, (1 - sqrt(alpha h_min))^2
    assert back.measurement["best_momentum_single_runs"]["1"] == 0.65
    # the mean-dynamics optimum (-0.19 at M = 8, band [-0.19, 0.08]) lies above the single-run
    # best [-0.40, -0.30]: the location fails at M = 8; at M = 16 the band [-0.96, 0.15] holds it
    assert c["best_momentum_at_mean_dynamics_optimum_M8"].outcome == "fail"
    assert c["best_momentum_at_mean_dynamics_optimum_M16"].passed
    assert back.verdict == "fails"
    # the theory-only statement is no check of the record
    assert not any("theory_only" in ch.name for ch in back.checks)
    # (b) the implicit momentum of 4 workers is 0.75
    assert back.prediction["implicit_momentum"] == 0.75
    # (c) with one worker the run is deterministic and its mean rate is heavy ball's radius;
    # next to the double root (mu ~ 0.64) a finite-window fit is biased by a few 1e-3
    rates = back.arrays["opt_rate"][0]
    ok = np.isfinite(rates)
    np.testing.assert_allclose(rates[ok], back.arrays["opt_theory_curve"][0][ok], atol=4e-3)


def test_mean_dynamics_optimum_falls_and_turns_negative_in_theory() -> None:
    """The theory-only statement of the claim (not part of the verdict)."""
    mu, _ = theory.optimal_explicit_momentum(0.04, 1.0, 10.0, [1, 2, 4, 8, 16])
    assert np.all(np.diff(mu) < 0) and mu[0] > 0 > mu[3] > mu[4]
    # M = 1: Polyak's momentum for a fixed step is the smallest mu with the whole spectrum in the
    # robust region, (1 - sqrt(alpha h_min))^2
    assert abs(mu[0] - (1 - np.sqrt(0.04)) ** 2) < 1e-3
    assert float(theory.staleness_mean(4)) == 3.0


def test_near_optimal_band_holds_the_optimum() -> None:
    fine = np.linspace(-0.99, 0.99, 397)
    for m in (1, 8, 16):
        mu, _ = theory.optimal_explicit_momentum(0.04, 1.0, 10.0, m)
        lo, hi = near_optimal_band(0.04, 10.0, m, fine, 3e-3)
        assert lo - 0.005 <= mu <= hi + 0.005
    # flat mean rate at M = 16: the band is wide; at M = 8 it is one-sided above the optimum
    assert (
        near_optimal_band(0.04, 10.0, 16, fine, 3e-3)[1]
        - near_optimal_band(0.04, 10.0, 16, fine, 3e-3)[0]
        > 1.0
    )


def test_best_of_finds_argmin_and_its_spread() -> None:
    rng = np.random.default_rng(1)
    mus = np.round(np.linspace(-0.5, 0.5, 11), 2)
    cost = (mus[:, None] + 0.2) ** 2 + 0.001 * rng.standard_normal((11, 16))
    best, (lo, hi) = best_of(cost, mus, seed=0)
    assert best == pytest.approx(-0.2) and lo <= -0.2 <= hi
    # a diverged run makes its momentum infinitely bad
    cost[2, 3] = np.inf
    assert best_of(cost, mus, seed=0)[0] == pytest.approx(-0.2)
    cost[:, 0] = np.inf
    assert np.isnan(best_of(cost, mus, seed=0)[0])
    # a flat cost with noise: the interval is wide and straddles 0
    flat = 0.01 * rng.standard_normal((11, 16))
    _, (lo, hi) = best_of(flat, mus, seed=0)
    assert lo < 0.0 < hi


def test_best_on_grid_edge_is_not_applicable() -> None:
    """Planted: the best momentum at M = 16 sits on the grid's lower edge (censored)."""
    best = _planted(
        {1: (0.65, 0.65), 8: (-0.4, -0.3), 16: (-0.95, -0.9)},
        {1: (0.64, 0.64), 8: (-0.45, -0.2), 16: (-0.96, 0.1)},
    )
    checks = best_checks(best)
    pre = _by_name(checks)["best_inside_grid"]
    assert pre.outcome == "fail" and "M = 16" in pre.note
    assert decide(checks) == "not applicable"


def test_sign_straddling_zero_is_unresolved_and_positive_fails() -> None:
    bands = {1: (0.64, 0.64), 8: (-0.3, 0.1), 16: (-0.96, 0.1)}
    straddle = best_checks(_planted({1: (0.65, 0.65), 8: (-0.3, 0.05), 16: (-0.8, -0.6)}, bands))
    assert _by_name(straddle)["best_momentum_negative_M8"].outcome == "unresolved"
    assert decide(straddle) == "unresolved"
    positive = best_checks(_planted({1: (0.65, 0.65), 8: (0.05, 0.1), 16: (-0.8, -0.6)}, bands))
    assert _by_name(positive)["best_momentum_negative_M8"].outcome == "fail"
    assert decide(positive) == "fails"
    # all resolved and inside theory's bands: holds
    holds = best_checks(_planted({1: (0.65, 0.65), 8: (-0.25, -0.15), 16: (-0.8, -0.6)}, bands))
    assert decide(holds) == "holds"
    # overlapping intervals of successive M: the fall with M is unresolved
    overlap = best_checks(_planted({1: (0.65, 0.65), 8: (-0.7, -0.3), 16: (-0.8, -0.6)}, bands))
    assert _by_name(overlap)["best_momentum_falls_with_M"].outcome == "unresolved"
