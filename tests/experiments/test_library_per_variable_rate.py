"""Experiment 12 (per-variable-rate): the quick run's verdict and numbers, and planted runs that
make each check fail, stay unresolved or turn the record not applicable."""

from __future__ import annotations

import inspect
import math

import numpy as np

from experiments import reproduce
from experiments.checks import decide
from experiments.library import per_variable_rate as pvr
from experiments.record import Record

CFG = pvr.PerVariableRateConfig.quick()
EV = np.array([1e-3, 2.0])


def _run(kind: str, mu: float, **over) -> dict:
    """A usable run summary as ``_run_one`` returns it (rates on the prediction)."""
    target = math.sqrt(mu)
    pred = target if kind == "inside" else target**0.45
    r = {
        "kind": kind,
        "mu": mu,
        "alpha": 0.5,
        "finite": True,
        "end_below_window": True,
        "grad_norm": 1e-15,
        "h_min": 1e-3,
        "inside": kind == "inside",
        "predicted_rate": pred,
        "sqrt_mu": target,
        "log_tolerance": 1e-4,
        "median_rate": pred,
        "fraction_following_prediction": 1.0,
        "fraction_following_sqrt_mu": 1.0 if kind == "inside" else 0.0,
        "fraction_loading_on_slowest_mode": 1.0,
        "fraction_following_own_slowest_mode": 1.0,
    }
    return {**r, **over}


def test_planted_runs_decide_as_stated() -> None:
    good = [_run("inside", 0.99), _run("outside", 0.99)]
    assert decide(pvr.decide_checks(good, CFG, True, EV)) == "holds"
    # half the variables of an inside run off sqrt(mu): the headline fails
    half = [_run("inside", 0.99, fraction_following_sqrt_mu=0.5), good[1]]
    checks = pvr.decide_checks(half, CFG, True, EV)
    assert decide(checks) == "fails"
    assert [c.name for c in checks if c.outcome == "fail"] == [
        "inside_every_variable_follows_sqrt_mu"
    ]
    # no run has its spectrum inside the robust interval: not applicable
    assert decide(pvr.decide_checks([good[1]], CFG, True, EV)) == "not applicable"
    # a run that stopped above its fit window is unusable: not applicable
    short = [_run("inside", 0.99, end_below_window=False), good[1]]
    assert decide(pvr.decide_checks(short, CFG, True, EV)) == "not applicable"
    # an outside prediction within two tolerances of sqrt(mu) cannot be told apart: unresolved
    close = _run("outside", 0.99, predicted_rate=0.99499, log_tolerance=1e-3)
    assert decide(pvr.decide_checks([good[0], close], CFG, True, EV)) == "unresolved"


def test_quick_run_holds_with_the_predicted_rates(tmp_path) -> None:
    exp = pvr.EXPERIMENT
    assert exp.device == "cpu"
    assert isinstance(inspect.getattr_static(pvr.PerVariableRateConfig, "gpu"), classmethod)
    rec = reproduce.run_experiment(exp, quick=True, seed=0, out=tmp_path)
    assert rec.verdict == "holds", rec.summary
    assert "plot_error" not in rec.provenance
    assert (tmp_path / exp.name / "figure.png").read_bytes().startswith(b"\x89PNG")
    back = Record.load(tmp_path / exp.name)
    runs = back.measurement["runs"]
    assert {(r["mu"], r["inside"]) for r in runs} == {
        (0.95, True),
        (0.95, False),
        (0.99, True),
        (0.99, False),
    }
    for r in runs:
        # the reference is a minimiser to the float64 floor, reached by the run itself
        assert r["grad_norm"] < 1e-12 and r["h_min"] > 0 and r["end_below_window"]
        tol = r["log_tolerance"]
        assert abs(math.log(r["median_rate"]) - math.log(r["predicted_rate"])) <= tol
        if r["inside"]:
            assert r["predicted_rate"] == r["sqrt_mu"]
            assert r["fraction_following_sqrt_mu"] >= 0.98
        else:
            # the slowest mode is resolvably slower than sqrt(mu) and the variables follow it
            assert math.log(r["predicted_rate"]) > math.log(r["sqrt_mu"]) * 0.6
            assert r["fraction_following_prediction"] >= 0.9
            assert r["fraction_following_sqrt_mu"] <= 0.1
            assert r["fraction_following_own_slowest_mode"] >= 0.98
    np.testing.assert_allclose(
        back.arrays["fraction_following_sqrt_mu"], [r["fraction_following_sqrt_mu"] for r in runs]
    )
