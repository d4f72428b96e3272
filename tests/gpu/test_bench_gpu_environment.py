"""benchmarks/bench_gpu.py records the machine's load with its timings (README quotes it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchmarks import bench_gpu


def _fake_bench_model(name, make_model, task, steps, repeats) -> dict:
    """The shape of ``bench_model``'s result, without building or timing a model."""
    return {
        "model": name,
        "step_time_s": {"adam": 1e-3},
        "relative_to_adam": {"adam": 1.0},
        "memory": {"adam": {"opt_state_bytes": 8}},
        "process_peak": {"kind": "host_max_rss_bytes", "bytes": 1},
    }


@pytest.mark.skipif(not hasattr(os, "getloadavg"), reason="no load average on this OS")
def test_json_records_the_load_average_at_start_and_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readings = iter([(1.5, 1.25, 1.0), (2.5, 2.25, 2.0)])
    monkeypatch.setattr(bench_gpu, "bench_model", _fake_bench_model)
    monkeypatch.setattr(bench_gpu.os, "getloadavg", lambda: next(readings))
    out = tmp_path / "gpu.json"
    bench_gpu.main(["--quick", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["load_average"] == {"start": [1.5, 1.25, 1.0], "end": [2.5, 2.25, 2.0]}
    assert saved["cpu_count"] == os.cpu_count()
    assert [r["model"] for r in saved["results"]] == [
        "resnet8_w8_b32",
        "char_lstm_h64_t32_b16",
    ]


def test_load_average_is_three_non_negative_numbers() -> None:
    load = bench_gpu.load_average()
    if not hasattr(os, "getloadavg"):
        assert load is None
        return
    assert load is not None and len(load) == 3 and all(x >= 0 for x in load)
