"""Run a registered experiment through :func:`experiments.reproduce.run_experiment` (the runner, the
record and figure files, the staged work directory) with a tiny configuration in place of its
quick one: the code path of ``momlab run --quick`` at a fraction of its cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from experiments import reproduce
from experiments.record import Record
from experiments.registry import Experiment


def run_tiny(
    monkeypatch: pytest.MonkeyPatch, exp: Experiment, cfg: Any, out: Path, seed: int = 0
) -> Record:
    """The record of ``exp`` run by the runner at ``cfg`` (an instance of ``exp.config``).

    The config class's ``quick`` classmethod returns ``cfg`` for the duration of the test (the
    monkeypatch restores it), so the record's configuration and work key are the tiny one's.
    """
    if not isinstance(cfg, exp.config):
        raise ValueError(f"cfg must be a {exp.config.__name__}, got {type(cfg).__name__}")
    monkeypatch.setattr(exp.config, "quick", classmethod(lambda cls: cfg))
    assert exp.make_config("quick") == cfg
    return reproduce.run_experiment(exp, quick=True, seed=seed, out=out)
