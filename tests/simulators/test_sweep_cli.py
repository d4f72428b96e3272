"""``momlab sweep``: config checks, one run from a file, and its equality with ``sweep``."""

from __future__ import annotations

import json
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
