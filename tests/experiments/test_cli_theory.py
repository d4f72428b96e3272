"""``momlab theory region | singlestep | rate`` through the real entry point, in process."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

import theory
from experiments.cli import main


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_region_json_matches_theory(capsys) -> None:
    out = _json(capsys, ["theory", "region", "--mu", "0.9", "--h-min", "1", "--h-max", "100"])
    lo, hi = theory.robust_interval(0.9, 1.0, 100.0)
    assert out["alpha_lo"] == pytest.approx(float(lo), rel=1e-15)
    assert out["alpha_hi"] == pytest.approx(float(hi), rel=1e-15)
    assert out["nonempty"] is True and out["verdict"].startswith("non-empty")
    # at both ends of the interval the whole spectrum converges at sqrt(mu)
    assert out["radius_at_alpha_lo"] == pytest.approx(math.sqrt(0.9), rel=1e-7)
    assert out["radius_at_alpha_hi"] == pytest.approx(math.sqrt(0.9), rel=1e-7)


def test_region_empty_verdict(capsys) -> None:
    out = _json(capsys, ["theory", "region", "--mu", "0.2", "--h-min", "1", "--h-max", "100"])
    assert out["nonempty"] is False and out["verdict"].startswith("empty")
    assert out["alpha_lo"] > out["alpha_hi"]
    assert out["radius_at_alpha_lo"] > math.sqrt(0.2)


def test_region_table(capsys) -> None:
    assert main(["theory", "region", "--mu", "0.9", "--h-min", "1", "--h-max", "100"]) == 0
    out = capsys.readouterr().out
    assert "alpha_lo" in out and "0.0026334" in out and "non-empty" in out


def test_singlestep_json_matches_theory(capsys) -> None:
    argv = ["theory", "singlestep", "--grad-var", "0.5", "--dist", "2", "--h-min", "1"]
    out = _json(capsys, [*argv, "--h-max", "50"])
    mu, alpha = theory.singlestep(0.5, 2.0, 1.0, 50.0)
    assert out["mu"] == pytest.approx(float(mu), rel=1e-15)
    assert out["alpha"] == pytest.approx(float(alpha), rel=1e-15)
    assert out["p"] == pytest.approx(4.0) and out["bound_active"] is True
    assert out["rate"] == pytest.approx(math.sqrt(out["mu"]), rel=1e-7)
    # a narrow spectrum: the cubic's root decides
    out = _json(capsys, [*argv, "--h-max", "1.5"])
    assert out["bound_active"] is False
    assert out["mu"] == pytest.approx(out["root_sqrt_mu"] ** 2, rel=1e-15)


@pytest.mark.parametrize(
    "args",
    [
        ("0.5", "2", "1", "50"),  # bound active
        ("0.5", "2", "1", "1.5"),  # the root decides
        ("1", "1e160", "1", "100"),  # p = 5e319 beyond float64: the root 2e-320 is subnormal
        ("0", "1", "1", "100"),  # C = 0
        ("1", "1", "1e-320", "1e300"),  # kappa = 1e620 beyond float64
    ],
)
def test_singlestep_rows_are_the_parts_theory_decides_by(capsys, monkeypatch, args) -> None:
    """p, the root, the bound and its activity are those of one SingleStep evaluation, not
    recomputed: the CLI runs with the public SingleStep functions disabled."""
    grad_var, dist, h_min, h_max = args
    parts = theory._singlestep_parts(*(float(a) for a in args))

    def disabled(*_args, **_kwargs):
        raise AssertionError("SingleStep computed a second time")

    for name in ("singlestep", "singlestep_p", "singlestep_root", "polyak_tuning"):
        monkeypatch.setattr(theory, name, disabled)
    argv = ["theory", "singlestep", "--grad-var", grad_var, "--dist", dist]
    out = _quiet_json(capsys, [*argv, "--h-min", h_min, "--h-max", h_max])
    p = float(parts.p)
    assert out["p"] == (p if math.isfinite(p) else None)
    assert out["root_sqrt_mu"] == float(parts.root)
    assert out["dynamic_range_bound"] == float(parts.mu_lb)
    assert out["bound_active"] is bool(parts.bound_active)
    assert (out["mu"], out["alpha"]) == (float(parts.mu), float(parts.alpha))
    if args[1] == "1e160":  # x = 1 / (p + 3) ~ 2e-320, to the subnormal spacing 4.9e-324
        assert out["p"] is None and out["root_sqrt_mu"] == pytest.approx(2e-320, rel=1e-3)


def test_singlestep_without_noise_gives_null_p(capsys) -> None:
    out = _json(
        capsys,
        [
            "theory",
            "singlestep",
            "--grad-var",
            "0",
            "--dist",
            "1",
            "--h-min",
            "1",
            "--h-max",
            "100",
        ],
    )
    assert out["p"] is None
    assert out["mu"] == pytest.approx(float(theory.min_robust_momentum(100.0)), rel=1e-15)


@pytest.mark.parametrize(
    ("alpha", "mu", "h", "kind"),
    [
        ("1", "0.81", "1", "robust"),
        ("0.001", "0.81", "1", "lazy"),
        ("0.5", "-0.3", "1", "negative_momentum"),
        ("5", "0.5", "1", "divergent"),
    ],
)
def test_rate(capsys, alpha: str, mu: str, h: str, kind: str) -> None:
    out = _json(capsys, ["theory", "rate", "--alpha", alpha, "--mu", mu, "--h", h])
    assert out["regime"] == kind
    assert out["radius"] == pytest.approx(
        float(theory.spectral_radius(float(alpha), float(mu), float(h)))
    )
    eig = max(
        abs(complex(out["eig1_re"], out["eig1_im"])), abs(complex(out["eig2_re"], out["eig2_im"]))
    )
    assert eig == pytest.approx(out["radius"], rel=1e-12)
    assert out["stable"] == (kind != "divergent")
    assert main(["theory", "rate", "--alpha", alpha, "--mu", mu, "--h", h]) == 0
    assert kind in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["theory", "region", "--mu", "1.2", "--h-min", "1", "--h-max", "10"], "mu"),
        (["theory", "region", "--mu", "0.5", "--h-min", "10", "--h-max", "1"], "h_min"),
        (["theory", "region", "--mu", "0.5", "--h-min", "0", "--h-max", "1"], "h_min"),
        (["theory", "region", "--mu", "nan", "--h-min", "1", "--h-max", "2"], "mu"),
        (
            [
                "theory",
                "singlestep",
                "--grad-var",
                "-1",
                "--dist",
                "1",
                "--h-min",
                "1",
                "--h-max",
                "2",
            ],
            "grad_var",
        ),
        (
            [
                "theory",
                "singlestep",
                "--grad-var",
                "1",
                "--dist",
                "-1",
                "--h-min",
                "1",
                "--h-max",
                "2",
            ],
            "dist_to_opt",
        ),
        (["theory", "rate", "--alpha", "0", "--mu", "0.5", "--h", "1"], "alpha"),
        (["theory", "rate", "--alpha", "1", "--mu", "0.5", "--h", "inf"], "h"),
        (["theory", "rate", "--alpha", "1", "--mu", "0.5"], "--h"),
        (["theory", "rate", "--alpha", "x", "--mu", "0.5", "--h", "1"], "alpha"),
    ],
)
def test_invalid_input_is_one_line_and_exit_2(capsys, argv: list[str], word: str) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("momlab: error:") and "\n" not in err, err
    assert word in err
    assert "Traceback" not in captured.err + captured.out


def _quiet_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    """Run with every warning turned into an error: nothing may leak to stderr."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return json.loads(captured.out)


def test_singlestep_with_p_beyond_float64_solves(capsys) -> None:
    """D = 1e200: p = 5e399 is not a float64 (it raised OverflowError); sqrt(mu) ~ 1/p rounds to 0,
    so the dynamic-range bound decides: Polyak's tuning."""
    argv = ["theory", "singlestep", "--grad-var", "1", "--dist", "1e200"]
    out = _quiet_json(capsys, [*argv, "--h-min", "1", "--h-max", "10"])
    alpha_p, mu_p = theory.polyak_tuning(1.0, 10.0)
    assert out["p"] is None and out["root_sqrt_mu"] == 0.0 and out["bound_active"] is True
    assert out["mu"] == pytest.approx(float(mu_p), rel=1e-15)
    assert out["alpha"] == pytest.approx(float(alpha_p), rel=1e-15)


def test_singlestep_with_kappa_beyond_float64_is_not_an_error(capsys) -> None:
    """h_max / h_min = 1e620 is never formed: no error about a "kappa" the user did not pass."""
    argv = ["theory", "singlestep", "--grad-var", "1", "--dist", "1"]
    out = _quiet_json(capsys, [*argv, "--h-min", "1e-320", "--h-max", "1e300"])
    assert out["bound_active"] is True and out["mu"] == 1.0
    assert out["alpha"] == pytest.approx(4e-300, rel=1e-14)  # Polyak's 4 / (sqrt(h_max) + ...)^2
    out = _quiet_json(
        capsys, ["theory", "region", "--mu", "0.5", "--h-min", "1e-10", "--h-max", "1e300"]
    )
    assert out["kappa"] is None and out["nonempty"] is False and out["min_robust_momentum"] == 1.0


def test_rate_with_alpha_h_beyond_float64_is_divergent(capsys) -> None:
    """alpha h = 1e400: a legitimate divergent verdict (radius ~ alpha h is printed as inf/null),
    exit 0, and no numpy RuntimeWarning on stderr."""
    out = _quiet_json(capsys, ["theory", "rate", "--alpha", "1e200", "--mu", "0.5", "--h", "1e200"])
    assert out["regime"] == "divergent" and out["stable"] is False
    assert out["radius"] is None and out["eig1_re"] is None  # -inf: the root ~ -alpha h
    assert "beyond float64" in out["verdict"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["theory", "rate", "--alpha", "1e200", "--mu", "0.5", "--h", "1e200"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "inf" in captured.out


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (
            ["theory", "region", "--mu", "0.5", "--h-min", "1e-320", "--h-max", "1"],
            "h_min must be >= 4.77e-310 for mu = 0.5",
        ),
        (
            ["theory", "region", "--mu", "0.999999", "--h-min", "1e-310", "--h-max", "1e-310"],
            "h_max must be >= 2.23e-308 for mu = 0.999999",
        ),
        (
            [
                *("theory", "singlestep", "--grad-var", "1e-300", "--dist", "1e200"),
                *("--h-min", "1e-320", "--h-max", "1e-320"),
            ],
            "h_min must be >= 5.56e-309 here",
        ),
    ],
)
def test_overflowing_results_are_one_line_errors_naming_the_input(
    capsys, argv: list[str], start: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith(f"momlab: error: {start}") and "\n" not in err, err
    assert "kappa" not in err and "overflows float64" in err
    assert captured.out == ""


def test_json_is_finite_numbers_only(capsys) -> None:
    out = _json(capsys, ["theory", "rate", "--alpha", "0.25", "--mu", "0.25", "--h", "1"])
    assert out["regime"] == "boundary"
    assert all(v is None or not isinstance(v, float) or np.isfinite(v) for v in out.values())


@pytest.mark.parametrize(("alpha", "h"), [("1e-308", "1e-308"), ("1e-10", "1e-10")])
def test_rate_stable_agrees_with_a_radius_that_rounds_to_1(capsys, alpha: str, h: str) -> None:
    """alpha h = 1e-616 (underflows to 0) or 1e-20 (below resolution): the radius rounds to 1,
    so the answer is "not stable, does not converge", as a float64 heavy ball behaves."""
    out = _quiet_json(capsys, ["theory", "rate", "--alpha", alpha, "--mu", "0.5", "--h", h])
    assert out["radius"] == 1.0 and out["regime"] == "lazy"
    assert out["stable"] is False
    assert "does not converge" in out["verdict"] and "exact arithmetic" in out["verdict"]
    # a lazy point whose radius is resolved: stable, and the verdict says it converges
    out = _quiet_json(capsys, ["theory", "rate", "--alpha", "1e-6", "--mu", "0.5", "--h", "1"])
    assert out["radius"] < 1.0 and out["stable"] is True and "(converges)" in out["verdict"]
