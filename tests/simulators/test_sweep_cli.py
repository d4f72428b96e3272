"""``momlab sweep``: config checks, one run from a file, and its equality with ``sweep``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments import cli, cli_sweep
from optimizers import heavy_ball
from simulators import product_grid, quadratic, sweep

TINY = """\
optimizer = "heavy_ball"
objective = "quadratic"
steps = 20
record_every = 10
seeds = 2
seed = 3
[objective_args]
spectrum = [1.0, 4.0]
noise_std = 0.1
[grid]
learning_rate = { start = 0.05, stop = 2.0, num = 5, log = true }
momentum = [0.0, 0.9]
"""
ROOT = Path(__file__).resolve().parents[2]


def test_a_config_file_runs_the_same_sweep(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "out" / "sweep.npz"
    assert (
        cli.main(["sweep", "run", str(cfg), "--out", str(out), "--chunk-size", "4", "--json"]) == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["runs"] == 20 and summary["grid_shape"] == [5, 2] and summary["processes"] == 1
    got = np.load(out)
    lr = np.geomspace(0.05, 2.0, 5)
    np.testing.assert_array_equal(got["grid/learning_rate"], lr)
    ref = sweep(
        heavy_ball,
        product_grid(learning_rate=lr, momentum=[0.0, 0.9]),
        quadratic([1.0, 4.0], noise_std=0.1),
        20,
        jax.random.key(3),
        seeds=2,
        record_every=10,
    )
    np.testing.assert_array_equal(got["distances"], ref.distances)
    np.testing.assert_array_equal(got["diverged_at"], ref.diverged_at)
    assert summary["diverged_fraction"] == float(np.mean(ref.diverged))
    assert 0 < summary["diverged_fraction"] < 1


def test_the_example_config_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "example.toml"
    path.write_text(cli_sweep.EXAMPLE)
    cfg = cli_sweep.load_config(path)
    axes = cli_sweep.grid_axes(cfg["grid"])
    assert [len(v) for v in axes.values()] == [60, 4]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1\n" + TINY, "unknown key"),
        (TINY.replace('optimizer = "heavy_ball"', 'optimizer = "nesterov9"'), "unknown optimizer"),
        (TINY.replace("momentum = [0.0, 0.9]", "momentum = []"), "grid.momentum"),
        (TINY.replace("steps = 20\n", ""), "missing key 'steps'"),
        ("optimizer = [", "not a valid config"),
    ],
)
def test_bad_configs_end_with_one_line_and_status_2(tmp_path: Path, capsys, text, message) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    assert cli.main(["sweep", "run", str(cfg), "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.npz").exists()


def test_process_options_need_distributed(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    assert cli.main(["sweep", "run", str(cfg), "--process-id", "1"]) == 2
    assert "--distributed" in capsys.readouterr().err


def test_sweep_help_imports_none_of_the_scientific_stack() -> None:
    code = (
        "import contextlib, io, json, sys\n"
        "from experiments import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    codes = [cli.main(['sweep', '--help']), cli.main(['sweep', 'run', '--help']),\n"
        "             cli.main(['sweep', 'example'])]\n"
        "heavy = [m for m in ('jax', 'scipy', 'matplotlib', 'optax') if m in sys.modules]\n"
        "print(json.dumps({'codes': codes, 'heavy': heavy, 'out': out.getvalue()}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["codes"] == [0, 0, 0]
    assert result["heavy"] == []
    assert "--distributed" in result["out"] and "[grid]" in result["out"]


def test_an_x64_config_leaves_the_process_flag_as_it_was(tmp_path: Path, capsys) -> None:
    # The flag is process-wide: a sweep run in process (as here, or from a notebook) must not
    # switch the caller's later computations to float64.
    cfg = tmp_path / "x64.toml"
    cfg.write_text(TINY.replace("seed = 3\n", "seed = 3\nx64 = true\n"))
    before = jax.config.jax_enable_x64
    assert cli.main(["sweep", "run", str(cfg), "--out", str(tmp_path / "s.npz"), "--json"]) == 0
    assert np.load(tmp_path / "s.npz")["distances"].dtype == np.float64
    assert jax.config.jax_enable_x64 == before
