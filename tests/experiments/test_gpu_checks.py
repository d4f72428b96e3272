"""The short GPU script: the gpu tier of the experiments that declare one, within a budget."""

from __future__ import annotations

import dataclasses
import itertools
import json

import jax
import jax.numpy as jnp
import pytest
from _fake_experiments import FAST, FakeConfig

from experiments import gpu_checks, registry, reproduce
from experiments.record import Record
from gpu import ResourceMeter


@dataclasses.dataclass(frozen=True)
class _GpuConfig(FakeConfig):
    @classmethod
    def quick(cls) -> _GpuConfig:
        return cls(n=16)

    @classmethod
    def gpu(cls) -> _GpuConfig:
        return cls(n=256)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch):
    a = dataclasses.replace(FAST, name="fake-gpu-a", config=_GpuConfig, order=1)
    b = dataclasses.replace(FAST, name="fake-gpu-b", config=_GpuConfig, order=2)
    monkeypatch.setattr(registry, "_REGISTRY", {e.name: e for e in (a, b, FAST)})
    monkeypatch.setattr(registry, "_IMPORT_ERRORS", {})
    monkeypatch.setattr(registry, "discover", registry.experiments)
    return a, b


def test_runs_the_gpu_tier_of_experiments_that_declare_one(fakes, tmp_path) -> None:
    outcomes = gpu_checks.run_checks(out=tmp_path)
    assert outcomes == {"fake-gpu-a": "holds", "fake-gpu-b": "holds"}  # fake-fast has no gpu()
    rec = Record.load(tmp_path / "fake-gpu-a")
    assert rec.config["n"] == 256 and rec.provenance["tier"] == "gpu"
    assert (tmp_path / "report.html").is_file()
    # a second call reuses the finished records
    assert gpu_checks.run_checks(out=tmp_path)["fake-gpu-b"] == "reused: holds"


def test_tiny_is_the_same_call_at_the_quick_tier(fakes, tmp_path) -> None:
    assert gpu_checks.main(["--tiny", "--out", str(tmp_path), "--only", "fake-gpu-b"]) == 0
    rec = Record.load(tmp_path / "fake-gpu-b")
    assert rec.config["n"] == 16 and rec.provenance["tier"] == "quick"


def test_budget_leaves_the_rest_for_the_next_call(fakes, tmp_path) -> None:
    ticks = itertools.count(0.0, 100.0)  # every clock reading is 100 s later
    outcomes = gpu_checks.run_checks(out=tmp_path, budget_s=150.0, clock=lambda: next(ticks))
    assert outcomes["fake-gpu-a"] == "holds"
    assert outcomes["fake-gpu-b"].startswith("not run: the 150 s budget was spent")
    assert "not run" in (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert gpu_checks.run_checks(out=tmp_path)["fake-gpu-b"] == "holds"  # resumed


def test_bad_input_is_one_line_exit_2(fakes, tmp_path, capsys) -> None:
    assert gpu_checks.main(["--only", "fake-fast", "--out", str(tmp_path)]) == 2
    assert "has no gpu tier" in capsys.readouterr().err
    assert gpu_checks.main(["--budget-s", "0", "--out", str(tmp_path)]) == 2


def test_the_real_registry_has_gpu_tiers() -> None:
    names = {e.name for e in gpu_checks.selected()}
    assert {"per-variable-rate", "yellowfin-vs-adam"} <= names


def test_records_speed_and_memory_of_every_run(fakes, tmp_path, monkeypatch, capsys) -> None:
    original = reproduce.run_experiment
    run = jax.jit(lambda s, d, n: (s + n * d, {}), static_argnums=2)

    def training(exp, **kwargs):  # the experiment trains: two runs of three chunks
        if exp.name == "fake-gpu-a":
            for _ in range(2):
                meter, state = ResourceMeter(), jnp.zeros(8)
                for _ in range(3):
                    state, _ = meter.run_chunk(run, state, jnp.ones(8), 4)
                meter.finish()
        return original(exp, **kwargs)

    monkeypatch.setattr(reproduce, "run_experiment", training)
    assert gpu_checks.main(["--tiny", "--out", str(tmp_path)]) == 0
    used = json.loads((tmp_path / gpu_checks.RESOURCES_FILE).read_text())
    a, b = used["fake-gpu-a"], used["fake-gpu-b"]
    assert [r["chunks"] for r in a["runs"]] == [3, 3] and b["runs"] == []
    assert all(r["steps_per_s"] > 0 and r["timed_steps"] == 8 for r in a["runs"])
    assert a["median_steps_per_s"] > 0 and a["max_peak_bytes"] > 0 and a["tier"] == "quick"
    assert b["median_steps_per_s"] is None and b["wall_time_s"] > 0
    out = capsys.readouterr().out
    assert "fake-gpu-a: holds (2 runs, median " in out and "fake-gpu-b: holds (0 runs" in out
    # a later call that reuses the records keeps what was measured
    assert gpu_checks.main(["--tiny", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / gpu_checks.RESOURCES_FILE).read_text()) == used
