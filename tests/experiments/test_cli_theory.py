"""``momlab theory region | singlestep | rate`` through the real entry point, in process."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

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


def test_json_is_finite_numbers_only(capsys) -> None:
    out = _json(capsys, ["theory", "rate", "--alpha", "0.25", "--mu", "0.25", "--h", "1"])
    assert out["regime"] == "boundary"
    assert all(v is None or not isinstance(v, float) or np.isfinite(v) for v in out.values())


def _theory_section() -> str:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Theory\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_readme_theory_examples_run(capsys) -> None:
    section = _theory_section()
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 4
    for block in blocks:
        exec(compile(block, "README.md (Theory)", "exec"), {})
    commands = [
        line.split("#")[0].split()
        for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)
        for line in block.splitlines()
        if line.startswith("momlab theory ")
    ]
    assert len(commands) == 3
    for argv in commands:
        assert main(argv[1:]) == 0, argv
    capsys.readouterr()
