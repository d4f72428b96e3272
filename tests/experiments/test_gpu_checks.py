"""The short GPU script: the gpu tier of the experiments that declare one, within a budget."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from _fake_experiments import FAST, FakeConfig

from experiments import gpu_checks, registry
from experiments.record import Record


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
