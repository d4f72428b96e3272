"""Checks decide verdicts: kinds, preconditions, smoke, unresolved; bootstrap intervals."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import experiments.checks as checks_module
import experiments.stats as stats_module
from experiments.checks import Check, check, decide, interval_check
from experiments.record import Record
from experiments.stats import bootstrap_interval, ratio_interval


def _c(kind: str, outcome: str, name: str = "c") -> Check:
    return Check(name, kind, outcome)


@pytest.mark.parametrize("module", [checks_module, stats_module])
def test_docstring_examples_run(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_identities_never_decide() -> None:
    with pytest.raises(ValueError, match="at least one verification or reproduction"):
        decide([_c("identity", "pass")])
    assert decide([_c("identity", "fail", "i"), _c("reproduction", "pass")]) == "holds"


def test_failed_precondition_is_not_applicable_whatever_the_rest() -> None:
    pre = _c("precondition", "fail", "p")
    assert decide([pre, _c("reproduction", "pass")]) == "not applicable"
    assert decide([pre, _c("verification", "fail", "v")]) == "not applicable"
    assert decide([_c("precondition", "unresolved", "p"), _c("reproduction", "pass")]) == (
        "not applicable"
    )


def test_unresolved_is_its_own_outcome_and_fail_wins() -> None:
    assert decide([_c("reproduction", "unresolved")]) == "unresolved"
    assert decide([_c("reproduction", "unresolved", "a"), _c("reproduction", "fail")]) == "fails"


def test_smoke_hides_reproductions_but_not_a_failed_verification() -> None:
    assert decide([_c("reproduction", "fail")], smoke=True) == "smoke"
    assert decide([_c("reproduction", "pass")], smoke=True) == "smoke"
    assert decide([_c("verification", "fail")], smoke=True) == "fails"


def test_record_derives_its_verdict_and_rejects_a_contradiction(tmp_path) -> None:
    cs = [
        check("rate", "verification", True, predicted=0.9, measured=0.9, headline=True),
        check("sign", "reproduction", None, measured=[float("-inf"), 0.1]),
    ]
    rec = Record("claim", {}, {}, {}, checks=cs)
    assert rec.verdict == "unresolved"
    with pytest.raises(ValueError, match="disagrees with its checks"):
        Record("claim", {}, {}, {}, "holds", checks=cs)
    rec.save(tmp_path)
    back = Record.load(tmp_path)
    assert back.checks[0] == cs[0] and back.verdict == "unresolved"
    assert back.checks[1].measured == ["-inf", 0.1]
    smoke = Record(
        "claim", {}, {}, {}, checks=cs[:1], smoke="200 steps cannot leave the slow start"
    )
    assert smoke.verdict == "smoke" and Record.load(smoke.save(tmp_path).parent).smoke


def test_check_names_unique_and_one_headline() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        Record("c", {}, {}, {}, checks=[_c("reproduction", "pass"), _c("verification", "pass")])
    two = [
        Check("a", "reproduction", "pass", headline=True),
        Check("b", "identity", "pass", headline=True),
    ]
    with pytest.raises(ValueError, match="headline"):
        Record("c", {}, {}, {}, checks=two)
    with pytest.raises(ValueError, match="kind must be one of"):
        Check("a", "proof", "pass")


@pytest.mark.parametrize(
    ("interval", "kwargs", "expected"),
    [
        ((1.1, 1.5), {"lower": 1.0}, "pass"),
        ((0.8, 0.99), {"lower": 1.0}, "fail"),
        ((0.9, 1.2), {"lower": 1.0}, "unresolved"),
        ((-0.3, 0.05), {"upper": 0.0}, "unresolved"),
        ((-0.3, -0.05), {"upper": 0.0}, "pass"),
        ((0.2, 0.4), {"lower": 0.0, "upper": 1.0}, "pass"),
        ((0.5, 1.4), {"lower": 0.0, "upper": 1.0}, "unresolved"),
        ((0.5, 0.7), {"predicted": 0.6}, "pass"),
        ((0.5, 0.7), {"predicted": 0.8}, "fail"),
        ((float("nan"), 0.7), {"predicted": 0.6}, "unresolved"),
    ],
)
def test_interval_check(interval, kwargs, expected) -> None:
    assert interval_check("x", "reproduction", interval, **kwargs).outcome == expected


def test_bootstrap_interval_covers_the_mean_at_its_rate() -> None:
    rng = np.random.default_rng(1)
    covered = 0
    trials = 200
    for i in range(trials):
        lo, hi = bootstrap_interval(rng.normal(1.0, 1.0, 30), seed=i, resamples=1000)
        covered += lo <= 1.0 <= hi
    # Percentile intervals at n = 30 under-cover slightly; 95% nominal, binomial sd ~1.5%.
    assert 0.88 <= covered / trials <= 0.99


def test_ratio_interval_is_deterministic_and_needs_two_values() -> None:
    a, b = [10.0, 12.0, 11.0], [5.0, 5.5, 6.0]
    assert ratio_interval(a, b, seed=3) == ratio_interval(a, b, seed=3)
    with pytest.raises(ValueError, match="numerator needs at least 2"):
        ratio_interval([1.0], b)
