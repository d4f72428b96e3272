"""yellowfin-curvature-oracle: a tiny run decides its checks from its own numbers, the figure
draws, and the deciding checks come out the other way on fabricated measurements."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import theory
from experiments.checks import decide
from experiments.library import _curvature_oracle_checks as chk
from experiments.library import _curvature_oracle_net as net
from experiments.library import _curvature_oracle_net_checks as net_chk
from experiments.library import _curvature_oracle_runs as runs
from experiments.library import yellowfin_curvature_oracle as exp
from gpu.data import load_digits
from gpu.fullbatch import digits_mlp_problem

Config = exp.CurvatureOracleConfig


def _tiny() -> Config:
    return dataclasses.replace(
        Config.quick(),
        dims=(8, 16),
        main_dim=8,
        steps=1500,
        warm=1.0,
        hb_alphas=(0.01, 2.0, 6),
        hb_mus=(0.0, 0.5, 0.9),
        horizons=(200, 600),
        net_hidden=4,
        net_n=200,
        net_steps=600,
        net_warm=0.2,
        net_hb_alphas=(0.03, 1.0, 4),
        net_hb_mus=(0.0, 0.9),
        net_horizons=(200,),
        truth_batches=8,
    )


@pytest.fixture(scope="module")
def tiny_record():
    return exp.run(_tiny(), 0)


def test_tiny_run_decides_from_its_own_numbers(tiny_record) -> None:
    rec = tiny_record
    out = {c.name: c for c in rec.checks}
    # The Hessian oracle reads the NQM's exact Hessian diag(h): the precondition holds tightly
    # (the smoothed log extremes carry only the eps guard and the EMA's float64 rounding).
    assert out["oracle_reads_true_extremes"].passed
    assert out["oracle_reads_true_extremes"].measured["largest_relative_error"] < 1e-3
    assert [c.name for c in rec.checks if c.headline] == [
        "tuned_momentum_is_singlestep_at_true_statistics"
    ]
    # The headline is re-decided here from the rows, with SingleStep recomputed from the spectrum.
    sw = rec.measurement["sweep"]
    tiny = _tiny()
    for row, dim in zip(sw, tiny.dims, strict=True):
        h = np.arange(1, dim + 1, dtype=float) ** -tiny.p
        mu, _ = theory.singlestep(np.sum(h / tiny.batch_size), row["dist_true"], h.min(), h.max())
        assert row["mu_singlestep_true"] == pytest.approx(float(mu), rel=1e-12)
        assert row["kappa"] == pytest.approx(dim**tiny.p)
    expected = []
    for r in sw:
        lo, hi = r["mu_interval"]
        low, up = (
            r["mu_singlestep_true"] - r["mu_tolerance"],
            r["mu_singlestep_true"] + r["mu_tolerance"],
        )
        if low < lo and hi < up:
            expected.append("pass")
        elif hi <= low or lo >= up:
            expected.append("fail")
        else:
            expected.append("unresolved")
    want = "fail" if "fail" in expected else ("unresolved" if "unresolved" in expected else "pass")
    assert out["tuned_momentum_is_singlestep_at_true_statistics"].outcome == want
    assert rec.verdict == decide(rec.checks)
    assert rec.measurement["gradient_evaluations_per_step"]["yellowfin_hessian"] == 3.1


def test_tiny_figure_draws(tiny_record) -> None:
    fig = exp.plot(tiny_record)
    assert len(fig.axes) == 4


def test_cost_in_gradient_evaluations() -> None:
    assert runs.gradient_evaluations_per_step(10, 10) == pytest.approx(3.1)
    assert runs.gradient_evaluations_per_step(20, 4) == pytest.approx(1.45)


def _row(mu_late: float, half_width: float = 0.005, h_err: float = 0.0) -> dict:
    """A fabricated kappa row: NQM dim 32, p = 1, B = 16, the late momentum ``mu_late``."""
    h = 1.0 / np.arange(1, 33)
    base = {
        "dim": 32,
        "kappa": 32.0,
        "h_min": float(h.min()),
        "h_max": 1.0,
        "grad_var_true": float(h.sum() / 16),
        "dist_true": 0.3,
        "dist_interval": [0.29, 0.31],
        "mu_late": mu_late,
        "mu_interval": [mu_late - half_width, mu_late + half_width],
        "h_min_ratio": [1.0 + h_err] * 8,
        "h_max_ratio": [1.0] * 8,
        "settled": True,
        "drift": 0.001,
    }
    base["mu_singlestep_true"] = chk.true_singlestep(base)
    base["mu_tolerance"] = chk.mu_tolerance(base, 0.05)
    return base


def test_momentum_check_passes_fails_and_is_unresolved() -> None:
    truth = _row(0.5)["mu_singlestep_true"]
    assert chk.momentum_check([_row(truth)]).outcome == "pass"
    # A tuned mu far from SingleStep's (the kind of gap the ||g||^2 proxy gives) fails.
    far = chk.momentum_check([_row(truth), _row(truth - 0.2)])
    assert far.outcome == "fail"
    tol = _row(truth)["mu_tolerance"]
    assert chk.momentum_check([_row(truth + tol, half_width=0.01)]).outcome == "unresolved"
    checks = [
        chk.oracle_precondition([_row(truth - 0.2)], 0.05),
        chk.settled_precondition([_row(truth - 0.2)], 0.02),
        far,
    ]
    assert decide(checks) == "fails"


def test_mu_tolerance_is_the_sensitivity_of_singlestep() -> None:
    row = _row(0.5)
    mu0 = row["mu_singlestep_true"]
    mu_lo, _ = theory.singlestep(row["grad_var_true"], 0.3, row["h_min"] * 0.95, row["h_max"])
    assert row["mu_tolerance"] >= abs(float(mu_lo) - mu0) > 0
    exact = dict(row, dist_interval=[0.3, 0.3])
    assert chk.mu_tolerance(exact, 1e-9) < 1e-6


def test_a_wrong_oracle_makes_the_run_not_applicable() -> None:
    bad = _row(0.5, h_err=0.2)
    truth = bad["mu_singlestep_true"]
    checks = [chk.oracle_precondition([bad], 0.05), chk.momentum_check([_row(truth)])]
    assert checks[0].outcome == "fail"
    assert decide(checks) == "not applicable"


def test_rebound_checks_both_ways() -> None:
    flat = np.full(8, 1.0) + np.linspace(-0.01, 0.01, 8)
    assert [c.outcome for c in chk.rebound_checks(flat, flat, 0.1, 0)] == ["pass", "pass"]
    climb = 5.0 * flat
    assert [c.outcome for c in chk.rebound_checks(climb, flat, 0.1, 0)] == ["fail", "pass"]


def test_speed_checks_count_gradient_evaluations() -> None:
    s = {
        "horizon": 300,
        "target": 0.01,
        "iterations_yellowfin": 100.0,
        "iterations_heavy_ball": 150.0,
        "speed": 1.45,
        "speed_interval": [1.4, 1.5],
        "heavy_ball": {"alpha": 0.1, "mu": 0.9, "on_grid_edge": False},
    }
    it, ge = chk.speed_checks([s], 2.0, 3.1)
    assert it.outcome == "pass"  # about 1.45x faster in iterations
    assert ge.outcome == "fail"  # [1.4, 1.5] / 3.1 = [0.45, 0.48] < 1/2 in gradient evaluations


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"seeds": 4}, "seeds"),
        ({"main_dim": 99}, "dims"),
        ({"steps": 1000}, "steps"),
        ({"curv_tol": 0.0}, "curv_tol"),
        ({"horizons": (50,)}, "horizons"),
        ({"net_seeds": 4}, "net_seeds"),
        ({"net_steps": 605}, "net_steps"),
        ({"net_horizons": (400,)}, "net_horizons"),
    ],
)
def test_invalid_config_is_named(change: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        exp.run(dataclasses.replace(_tiny(), **change), 0)


def test_tiny_network_bed_decides_from_its_own_numbers(tiny_record) -> None:
    rec = tiny_record
    out = {c.name: c for c in rec.checks}
    net = rec.measurement["network"]
    row, tr = net["rows"]["hessian"], net["truth"]
    assert out["network_has_strict_minimiser"].passed  # weight decay: a strict minimiser
    assert tr["grad_norm"] < 1e-8 and 0 < tr["h_min"] < tr["h_max"]
    # SingleStep at the network's true statistics, recomputed here from the recorded truth.
    mu, _ = theory.singlestep(tr["grad_var"], row["dist_true"], tr["h_min"], tr["h_max"])
    assert row["mu_singlestep_true"] == pytest.approx(float(mu), rel=1e-12)
    lo, hi = row["mu_interval"]
    low = row["mu_singlestep_true"] - row["mu_tolerance"]
    up = row["mu_singlestep_true"] + row["mu_tolerance"]
    want = "pass" if low < lo and hi < up else ("fail" if hi <= low or lo >= up else "unresolved")
    assert out["network_tuned_momentum_is_singlestep_at_true_statistics"].outcome == want
    assert not out["network_tuned_momentum_is_singlestep_at_true_statistics"].headline
    assert out["network_oracle_reads_true_extremes"].kind == "reproduction"
    assert any(n.startswith("network_gradient_evaluations_vs_retuned") for n in out)
    assert net["gradient_evaluations_per_step"]["yellowfin_hessian"] == 3.1
    assert rec.arrays["net_loss"].shape == (2, 600 // 10)


def _net_row(mu_late: float, h_min_ratio: float = 1.0) -> dict:
    """A fabricated network row (as ``net_row`` builds it) with late momentum ``mu_late``."""
    run = {
        "dim": 610,
        "late": {
            "dist": np.linspace(1.9, 2.1, 8),
            "momentum": np.full(8, mu_late) + np.linspace(-1e-3, 1e-3, 8),
            "learning_rate": np.full(8, 0.05),
            "h_min": np.full(8, 1e-3 * h_min_ratio),
            "h_max": np.full(8, 2.5),
            "grad_var": np.full(8, 0.4),
            "dist_to_opt": np.full(8, 1.5),
        },
        "h": np.array([1e-3, 2.5]),
        "c": np.array([0.3]),
        "settled": True,
        "drift": 0.0,
    }
    return chk.kappa_row(run, 0, 0.05)


def test_network_checks_fail_on_planted_wrong_inputs() -> None:
    truth = _net_row(0.5)["mu_singlestep_true"]
    name = "network_tuned_momentum_is_singlestep_at_true_statistics"
    assert chk.momentum_check([_net_row(truth)], name, False).outcome == "pass"
    # The collapse of a clamped h_min (mu -> 1) is far outside SingleStep's tolerance.
    assert chk.momentum_check([_net_row(0.9997)], name, False).outcome == "fail"
    assert net_chk.oracle_check(_net_row(truth), 0.05, 0).outcome == "pass"
    assert net_chk.oracle_check(_net_row(truth, h_min_ratio=1e-3), 0.05, 0).outcome == "fail"
    pre = net_chk.minimiser_precondition(
        {"grad_norm": 1e-3, "h_min": 1e-3, "h_max": 2.5, "x_star": np.zeros(3)}
    )
    assert pre.outcome == "fail"
    assert decide([pre, chk.momentum_check([_net_row(truth)], name, False)]) == "not applicable"


def test_minibatch_grad_var_is_the_with_replacement_variance() -> None:
    """The exact C against Monte Carlo over 4000 with-replacement batches of 4 (relative standard
    error about sqrt(2 / 4000) = 2.2% plus the kurtosis of the per-example gradients: 10%)."""
    problem = digits_mlp_problem(load_digits(), hidden=2, weight_decay=0.1, n_train=30)
    w = problem.init + 0.1
    c = net.minibatch_grad_var(problem, w, 4)[0]
    rows = np.random.default_rng(0).integers(0, 30, (4000, 4))
    with jax.enable_x64(True):
        wj = jnp.asarray(w)
        full = jax.grad(problem.loss)(wj)
        gb = jax.vmap(lambda r: jax.grad(problem.batch_loss)(wj, r))(jnp.asarray(rows))
        mc = float(jnp.mean(jnp.sum((gb - full) ** 2, -1)))
    assert c == pytest.approx(mc, rel=0.1)
