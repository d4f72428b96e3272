"""Experiment 12 (per-variable-rate): the quick run's verdict and numbers, and planted runs (and a
fabricated rate set) that make each check fail, stay unresolved or turn the record not
applicable."""

from __future__ import annotations

import inspect
import math

import numpy as np

from experiments import reproduce
from experiments.checks import decide
from experiments.library import _per_variable_rate_runs as runs
from experiments.library import per_variable_rate as pvr
from experiments.library._per_variable_rate_checks import stage_checks
from experiments.record import Record
from gpu.data import load_text
from gpu.fullbatch import char_lstm_problem

CFG = pvr.PerVariableRateConfig.quick()


def _run(kind: str, mu: float, **over) -> dict:
    """A usable run summary as ``run_one`` returns it (rates on the prediction)."""
    target = math.sqrt(mu)
    pred = target if kind == "inside" else target**0.45
    r = {
        "kind": kind,
        "mu": mu,
        "alpha": 0.5 if kind == "inside" else 0.01,
        "finite": True,
        "end_below_window": True,
        "grad_norm": 1e-15,
        "h_min": 1e-3,
        "h_max": 2.0,
        "alpha_lo": 0.03,
        "alpha_hi": 1.9,
        "inside": kind == "inside",
        "predicted_rate": pred,
        "sqrt_mu": target,
        "log_tolerance": 1e-4,
        "median_rate": pred,
        "fraction_following_prediction": 1.0,
        "fraction_following_sqrt_mu": 1.0 if kind == "inside" else 0.0,
    }
    return {**r, **over}


def _decide(results, **kw) -> str:
    return decide(stage_checks("mlp", results, CFG.threshold, True, **kw))


def test_planted_runs_decide_as_stated() -> None:
    good = [_run("inside", 0.99), _run("outside", 0.99)]
    assert _decide(good) == "holds"
    # half the variables of an inside run off sqrt(mu): the headline verification fails
    half = [_run("inside", 0.99, fraction_following_sqrt_mu=0.5), good[1]]
    checks = stage_checks("mlp", half, CFG.threshold, True, headline=True)
    assert decide(checks) == "fails"
    failed = [c for c in checks if c.outcome == "fail"]
    assert [(c.name, c.kind) for c in failed] == [
        ("mlp_inside_fraction_follows_sqrt_mu", "verification")
    ]
    # an outside median two tolerances off the predicted slowest mode fails
    off = _run("outside", 0.99)
    off["median_rate"] = off["predicted_rate"] * math.exp(2e-4)
    assert _decide([good[0], off]) == "fails"
    # no run has its spectrum inside the robust interval: not applicable
    assert _decide([good[1]]) == "not applicable"
    # a run planned inside whose measured spectrum is outside: not applicable
    moved = [_run("inside", 0.99, inside=False), good[1]]
    assert _decide(moved) == "not applicable"
    # a run that stopped above its fit window is unusable: not applicable
    short = [_run("inside", 0.99, end_below_window=False), good[1]]
    assert _decide(short) == "not applicable"
    # an outside prediction within two tolerances of sqrt(mu) cannot be told apart: unresolved
    close = _run("outside", 0.99, predicted_rate=0.99499, median_rate=0.99499, log_tolerance=1e-3)
    assert _decide([good[0], close]) == "unresolved"
    # Lanczos extremes whose residual bound is too large: not applicable
    assert _decide(good, lanczos={"a": (1e-2, 1e-9)}) == "not applicable"
    assert _decide(good, lanczos={"a": (1e-6, 1e-9)}) == "holds"


def test_an_input_ignoring_minimiser_fails_the_input_precondition() -> None:
    """A planted LSTM point with its input kernel at 0 (what weight decay 0.03 gave with a trained
    embedding): zeroing the kernel changes nothing, so the gain over the blind network is exactly
    0 and the record is not applicable; so is a minimiser above the unigram entropy. Positive gains
    hold."""
    p = char_lstm_problem(load_text(), num_sequences=4, seq_len=8, embed=3, hidden=4)
    assert p.input_kernel.stop == p.size
    use = runs.input_use(p, p.without_input(p.init))
    assert use["input_kernel_norm"] == 0 and use["input_gain_over_blind"] == 0.0
    assert use["input_gain_over_blind_lower"] == 0.0
    blind = [_run("inside", 0.99, **use), _run("outside", 0.99, **use)]
    checks = stage_checks("lstm", blind, CFG.threshold, True)
    assert decide(checks) == "not applicable"
    assert [c.name for c in checks if c.outcome == "fail"] == ["lstm_minimiser_uses_input"]
    reads = {**use, "input_gain_over_blind_lower": 0.4, "input_gain_over_constant_lower": 0.3}
    good = [_run("inside", 0.99, **reads), _run("outside", 0.99, **reads)]
    assert _decide(good) == "holds"
    above = {**reads, "input_gain_over_constant_lower": -0.05}  # worse than the unigram entropy
    assert _decide([good[0], _run("outside", 0.99, **above)]) == "not applicable"
    # a run without the measurement among runs with it: not applicable
    assert _decide([good[0], _run("outside", 0.99)]) == "not applicable"


def test_a_fabricated_rate_set_fails_the_verdict() -> None:
    """Rates fabricated at the slowest lazy mode instead of sqrt(mu): the same fraction function
    the runs use gives 0 inside, and the verdict is fails."""
    mu, tol = 0.99, 1e-4
    rng = np.random.default_rng(0)
    at_sqrt = math.sqrt(mu) * np.exp(rng.uniform(-0.5, 0.5, 1000) * tol)
    assert runs.fraction_within(at_sqrt, math.sqrt(mu), tol) == 1.0
    slow = np.concatenate([at_sqrt[:850], np.full(150, 0.998)])  # 15% stuck on a lazy mode
    frac = runs.fraction_within(slow, math.sqrt(mu), tol)
    assert frac == 0.85
    planted = [_run("inside", mu, fraction_following_sqrt_mu=frac), _run("outside", mu)]
    assert _decide(planted) == "fails"


def test_quick_run_holds_with_the_predicted_rates(tmp_path) -> None:
    exp = pvr.EXPERIMENT
    assert exp.device == "cpu"
    assert isinstance(inspect.getattr_static(pvr.PerVariableRateConfig, "gpu"), classmethod)
    rec = reproduce.run_experiment(exp, quick=True, seed=0, out=tmp_path)
    assert rec.verdict == "holds", rec.summary
    assert "plot_error" not in rec.provenance
    assert (tmp_path / exp.name / "figure.png").read_bytes().startswith(b"\x89PNG")
    back = Record.load(tmp_path / exp.name)
    assert "lstm" not in back.measurement  # the LSTM runs in the full tier only
    runs_ = back.measurement["mlp"]["runs"]
    assert {(r["mu"], r["inside"]) for r in runs_} == {
        (0.95, True),
        (0.95, False),
        (0.99, True),
        (0.99, False),
    }
    for r in runs_:
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
    # the noisy case is recorded beside, one minibatch run per inside run, and decides nothing
    noisy = back.measurement["mlp"]["minibatch_runs"]
    assert len(noisy) == 2 and all(n["batch_size"] == CFG.batch_size for n in noisy)
    assert not any("minibatch" in c.name for c in back.checks)
    np.testing.assert_allclose(
        back.arrays["mlp_fraction_following_sqrt_mu"],
        [r["fraction_following_sqrt_mu"] for r in runs_],
    )


def test_the_full_tier_code_path_runs_on_tiny_networks() -> None:
    """The full tier's two networks at a tiny size: the LSTM stage (Newton-CG polish, Lanczos
    extremes) and the minibatch runs are recorded beside the MLP's, with their own checks."""
    cfg = pvr.PerVariableRateConfig(
        hidden=2,
        n_train=100,
        weight_decay=0.05,
        momenta=(0.9,),
        positions=(0.5,),
        factors=(0.6,),
        batch_size=20,
        lstm_sequences=4,
        lstm_seq_len=6,
        lstm_embed=2,
        lstm_hidden=3,
        lstm_momenta=(0.9,),
        lstm_batch_size=2,
        lanczos_steps=60,
    )
    rec = pvr.run(cfg, 0)
    lstm = rec.measurement["lstm"]
    assert lstm["parameters"] > 0 and len(lstm["runs"]) == 2
    assert len(lstm["minibatch_runs"]) == 1 and lstm["minibatch_runs"][0]["batch_size"] == 2
    names = {c.name: c for c in rec.checks}
    assert names["lstm_lanczos_converged"].kind == "precondition"
    assert names["lstm_minimiser_uses_input"].kind == "precondition"
    assert "mlp_minimiser_uses_input" not in names  # the MLP has no input-use references
    assert names["lstm_inside_fraction_follows_sqrt_mu"].kind == "verification"
    for r in lstm["runs"]:
        assert r["input_kernel_norm"] > 0  # the fixed embedding: W_i = 0 is not stationary
        assert r["finite"] and r["grad_norm"] < 1e-10
        assert 0 < r["h_min"] < r["h_max"] and r["ritz_residual_max"] < 1e-3
    assert rec.arrays["lstm_rates"].shape[0] == 2
    fig = pvr.plot(rec)
    assert len(fig.axes) == 4
