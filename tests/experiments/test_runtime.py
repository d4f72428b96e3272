"""Stages that resume, the work directory's life cycle, and progress reports with an ETA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _fake_experiments import FakeConfig, _plot, _run

from experiments import cli, provenance, registry, runtime
from experiments.framework import Experiment
from experiments.reproduce import run_experiment

CALLS: list[str] = []


def _compute(name: str, value: float):
    def compute() -> dict[str, np.ndarray]:
        CALLS.append(name)
        return {"x": np.full(3, value), "n": np.asarray(7)}

    return compute


def test_outside_a_run_a_stage_is_computed_every_time() -> None:
    CALLS.clear()
    assert runtime.work_dir() is None
    runtime.progress(1, 2)  # goes nowhere, raises nothing
    for _ in range(2):
        out = runtime.stage("a", _compute("a", 1.0))
        np.testing.assert_array_equal(out["x"], [1.0, 1.0, 1.0])
    assert CALLS == ["a", "a"]


def test_a_finished_stage_is_read_back_and_a_torn_one_recomputed(tmp_path: Path) -> None:
    CALLS.clear()
    with runtime.running(tmp_path / "w") as ctx:
        first = runtime.stage("grid_adam", _compute("grid_adam", 2.0))
        again = runtime.stage("grid_adam", _compute("grid_adam", 99.0))
        assert ctx.reused == ["grid_adam"]
    assert CALLS == ["grid_adam"]
    np.testing.assert_array_equal(first["x"], again["x"])
    assert int(again["n"]) == 7
    path = tmp_path / "w" / "stages" / "grid_adam.npz"
    path.write_bytes(path.read_bytes()[:20])  # a torn file (never written by stage itself)
    with runtime.running(tmp_path / "w"):
        fresh = runtime.stage("grid_adam", _compute("grid_adam", 3.0))
    assert CALLS == ["grid_adam", "grid_adam"] and fresh["x"][0] == 3.0
    assert not list((tmp_path / "w").rglob("*.tmp"))


@pytest.mark.parametrize("bad", ["", "../up", "a/b", "-x", "sp ace"])
def test_a_stage_name_must_be_a_plain_file_stem(bad: str) -> None:
    with pytest.raises(ValueError, match="stage name"):
        runtime.stage(bad, _compute("x", 0.0))


def test_progress_reaches_the_callback_clipped_to_0_1() -> None:
    seen: list[tuple[float, str]] = []
    with runtime.running(None, lambda f, w: seen.append((f, w))):
        runtime.progress(1, 4, "adam")
        runtime.progress(5, 4)
        with pytest.raises(ValueError, match="total"):
            runtime.progress(1, 0)
    assert seen == [(0.25, "adam"), (1.0, "")]


def test_work_key_changes_with_any_part() -> None:
    base = runtime.work_key(tier="full", seed=0, config={"n": 1}, code="abc")
    assert base == runtime.work_key(code="abc", config={"n": 1}, seed=0, tier="full")
    assert base != runtime.work_key(tier="full", seed=1, config={"n": 1}, code="abc")
    assert base != runtime.work_key(tier="full", seed=0, config={"n": 2}, code="abc")
    assert base != runtime.work_key(tier="full", seed=0, config={"n": 1}, code="abd")


_FAIL_AFTER_STAGE = {"on": True}


def _staged_run(cfg: FakeConfig, seed: int):
    """Two stages; the first attempt dies between them, as a killed run would."""
    a = runtime.stage("first", _compute("first", 1.0))
    runtime.progress(1, 2, "first")
    if _FAIL_AFTER_STAGE["on"]:
        raise RuntimeError("killed between the stages")
    b = runtime.stage("second", _compute("second", 2.0))
    runtime.progress(2, 2, "second")
    assert a["x"][0] == 1.0 and b["x"][0] == 2.0
    return _run(cfg, seed)


STAGED = Experiment(
    name="fake-staged",
    title="staged fake",
    claim="A fake claim computed in two stages.",
    config=FakeConfig,
    run=_staged_run,
    plot=_plot,
)


def test_a_failed_run_keeps_its_stages_and_the_rerun_resumes(tmp_path: Path) -> None:
    CALLS.clear()
    _FAIL_AFTER_STAGE["on"] = True
    first = run_experiment(STAGED, tier="quick", seed=0, out=tmp_path)
    assert first.verdict == "error"
    kept = list((tmp_path / runtime.WORK_DIR / "fake-staged").glob("*/stages/first.npz"))
    assert len(kept) == 1
    _FAIL_AFTER_STAGE["on"] = False
    seen: list[float] = []
    second = run_experiment(
        STAGED, tier="quick", seed=0, out=tmp_path, on_progress=lambda f, w: seen.append(f)
    )
    assert second.verdict == "holds"
    assert CALLS == ["first", "second"]  # the first stage was not computed again
    assert seen == [0.5, 1.0]
    assert not (tmp_path / runtime.WORK_DIR).exists()  # removed once the record is written
    # Another seed is another key: nothing is shared between different runs.
    CALLS.clear()
    assert run_experiment(STAGED, tier="quick", seed=1, out=tmp_path).verdict == "holds"
    assert CALLS == ["first", "second"]


def test_cli_prints_progress_with_time_left_off_a_terminal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _FAIL_AFTER_STAGE["on"] = False
    monkeypatch.setattr(registry, "_REGISTRY", {STAGED.name: STAGED})
    monkeypatch.setattr(registry, "_IMPORT_ERRORS", {})
    monkeypatch.setattr(registry, "discover", registry.experiments)
    monkeypatch.setattr(provenance, "has_gpu", lambda: False)
    monkeypatch.setattr(cli, "_register", lambda: None)
    assert cli.main(["run", "fake-staged", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "fake-staged: first: 50% after" in err and "s left" in err, err
    assert cli.main(["reproduce", "--out", str(tmp_path / "r"), "--force"]) == 0
    assert "fake-staged: first: 50% after" in capsys.readouterr().err
