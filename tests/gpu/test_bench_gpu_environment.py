"""benchmarks/bench_gpu.py: its JSON (load, platform key, ratios to Adam) and its table."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchmarks import bench_gpu


def _entry(ms: float, ratio: float, mem: float) -> dict:
    return {
        "median_step_ms": ms,
        "steps_per_s": 1e3 / ms,
        "steps_per_s_ratio": ratio,
        "peak_memory_ratio": mem,
        "model_memory_ratio": mem,
        "memory": {"opt_state_bytes": 8},
    }


def _fake_bench_model(name, make_model, task, steps, rounds) -> dict:
    """The shape of ``bench_model``'s result, without building or timing a model."""
    return {
        "model": name,
        "steps_per_round": steps,
        "rounds": rounds,
        "optimizers": {
            "adam": _entry(1.0, 1.0, 1.0),
            "yellowfin": _entry(1.25, 0.8, 1.5),
            "momo": {"missing": "ImportError: nope"},
        },
    }


@pytest.mark.skipif(not hasattr(os, "getloadavg"), reason="no load average on this OS")
def test_json_records_the_load_and_merges_under_the_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    readings = iter([(1.5, 1.25, 1.0), (2.5, 2.25, 2.0)])
    monkeypatch.setattr(bench_gpu, "bench_model", _fake_bench_model)
    monkeypatch.setattr(bench_gpu.os, "getloadavg", lambda: next(readings))
    out = tmp_path / "gpu.json"
    out.write_text(json.dumps({"runs": {"other": {"kept": True}}}))
    bench_gpu.main(["--quick", "--rounds", "3", "--out", str(out)])
    saved = json.loads(out.read_text())
    run = saved["runs"][bench_gpu.jax.devices()[0].platform]
    assert saved["runs"]["other"] == {"kept": True}  # another platform's run is kept
    assert run["load_average"] == {"start": [1.5, 1.25, 1.0], "end": [2.5, 2.25, 2.0]}
    assert run["cpu_count"] == os.cpu_count() and run["rounds"] == 3
    assert [r["model"] for r in run["results"]] == ["resnet8_w8_b32", "char_lstm_h64_t32_b16"]
    printed = capsys.readouterr().out
    assert "| resnet8_w8_b32 | yellowfin | 1.25 | 800 | 0.80 | 1.500 | 1.50 |" in printed
    assert "momo | missing: ImportError: nope" in printed


def test_bad_rounds_exit() -> None:
    with pytest.raises(SystemExit):
        bench_gpu.main(["--rounds", "0"])


def test_load_average_is_three_non_negative_numbers() -> None:
    load = bench_gpu.load_average()
    if not hasattr(os, "getloadavg"):
        assert load is None
        return
    assert load is not None and len(load) == 3 and all(x >= 0 for x in load)
