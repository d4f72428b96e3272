"""Experiment 11 (yellowfin-vs-adam) resumes after a kill: stages per (task, method, extension)
and per block of steps, the stacked state kept between blocks, and a record equal to an
uninterrupted run's (bit for bit: the same compiled chunks continue from the same state)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from experiments import runtime
from experiments.library import yellowfin_vs_adam as yva

TINY = dataclasses.replace(
    yva.YellowFinVsAdamConfig.quick(),
    tasks=("lstm",),
    lstm_embed=4,
    lstm_hidden=8,
    lstm_batch=4,
    lstm_seq_len=8,
    steps=40,
    eval_every=10,
    eval_examples=16,
    eval_batch=8,
    stage_steps=20,
    seeds=2,
    max_extensions=0,
    smooth=10,
)


class KilledError(Exception):
    """Stands for the kill of a running experiment."""


def _comparable(rec) -> dict:
    """Everything of a record except the wall-clock readings (steps/s, peak memory)."""
    meas = {
        k: {kk: vv for kk, vv in v.items() if kk != "resources"} for k, v in rec.measurement.items()
    }
    return {
        "measurement": meas,
        "checks": [c.to_json() for c in rec.checks],
        "verdict": rec.verdict,
    }


def test_a_killed_run_resumes_without_recomputing_and_equals_an_uninterrupted_one(
    tmp_path, monkeypatch
) -> None:
    reports: list[tuple[float, str]] = []
    with runtime.running(tmp_path / "whole", lambda f, w: reports.append((f, w))):
        whole = yva.run(TINY, 0)
    # progress: monotone fractions in estimated operations, ending at 1, named per grid
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert {w for _, w in reports} == {"lstm.adam.e0", "lstm.sgdm.e0", "lstm.yellowfin"}

    real_stage = runtime.stage
    computed: list[str] = []

    def stage_then_die(name, compute):
        if computed:  # the second stage is never reached: the run dies after the first
            raise KilledError(name)
        out = real_stage(name, compute)
        computed.append(name)
        return out

    work = tmp_path / "killed"
    monkeypatch.setattr(runtime, "stage", stage_then_die)
    with runtime.running(work), pytest.raises(KilledError):
        yva.run(TINY, 0)
    assert computed == ["lstm.adam.e0.b000"]
    # the first block's end state waits for the second block
    assert (work / "grids" / "lstm.adam.e0" / "state_0.npz").is_file()
    monkeypatch.setattr(runtime, "stage", real_stage)
    with runtime.running(work) as ctx:
        resumed = yva.run(TINY, 0)
    assert ctx.reused == ["lstm.adam.e0.b000"]  # the finished stage is read, not recomputed
    assert not list((work / "grids").rglob("state_*.npz"))  # states go once their grid is done
    assert _comparable(resumed) == _comparable(whole)
    assert resumed.arrays.keys() == whole.arrays.keys()
    for key, value in whole.arrays.items():
        np.testing.assert_array_equal(resumed.arrays[key], value, err_msg=key)
    # and the block readings carry the timing of the run that computed them
    res = resumed.measurement["lstm"]["resources"]["adam"]
    assert res["timed_steps"] > 0 and res["member_steps_per_s"] > 0


def test_a_missing_block_state_is_named() -> None:
    from experiments.library._seed_grid import _start_state

    with pytest.raises(RuntimeError, match="state at the end of block 2"):
        _start_state(None, 3, lambda: None)
