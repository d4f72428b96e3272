"""Reruns replace every artifact of the previous run, and reuse depends on the code fingerprint."""

from __future__ import annotations

import dataclasses
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _fake_experiments import FAST
from _html import parse_page

from experiments import fingerprint, registry, reproduce
from experiments.record import Record, file_digest
from experiments.report import record_figures, write_report

FILES_WITH_FIGURE = {"record.json", "arrays.npz", "figure.png", "figure.svg"}


def _plot_raises(record: Record):
    raise RuntimeError("this plot always raises")


def _run_raises(cfg, seed: int) -> Record:
    raise RuntimeError("this run always raises")


def _run_interrupted(cfg, seed: int) -> Record:
    raise KeyboardInterrupt


@pytest.fixture
def only_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", {FAST.name: FAST})
    monkeypatch.setattr(registry, "_IMPORT_ERRORS", {})
    monkeypatch.setattr(registry, "discover", registry.experiments)


def _files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


@pytest.mark.parametrize(
    ("change", "error"),
    [({"plot": _plot_raises}, "plot_error"), ({"run": _run_raises}, "traceback")],
)
def test_a_failed_rerun_leaves_no_figure_of_the_previous_run(
    tmp_path: Path, only_fast, change: dict, error: str
) -> None:
    first = reproduce.run_experiment(FAST, quick=True, seed=1, out=tmp_path)
    directory = tmp_path / FAST.name
    assert _files(directory) == FILES_WITH_FIGURE
    assert set(first.provenance["figures"]) == {"figure.png", "figure.svg"}

    rec = reproduce.run_experiment(
        dataclasses.replace(FAST, **change), quick=True, seed=1, out=tmp_path
    )
    assert error in rec.provenance and "figures" not in rec.provenance
    assert _files(directory) == {"record.json", "arrays.npz"}
    assert not (tmp_path / reproduce.STAGING_DIR).exists()

    page, summary = write_report(tmp_path)
    parsed = parse_page(page)
    assert parsed.images == [] and not any("figure" in link for link in parsed.links)
    assert "figure.png" not in summary.read_text(encoding="utf-8")


def test_report_shows_only_the_figures_of_the_record(tmp_path: Path, only_fast) -> None:
    reproduce.run_experiment(FAST, quick=True, seed=1, out=tmp_path / "a")
    reproduce.run_experiment(FAST, quick=True, seed=2, out=tmp_path / "b")
    a, b = tmp_path / "a" / FAST.name, tmp_path / "b" / FAST.name
    assert (a / "figure.png").read_bytes() != (b / "figure.png").read_bytes()
    assert set(record_figures(Record.load(a), a)) == {"figure.png", "figure.svg"}
    # A figure from the other run beside this record is not shown, nor linked.
    (a / "figure.png").write_bytes((b / "figure.png").read_bytes())
    assert set(record_figures(Record.load(a), a)) == {"figure.svg"}
    parsed = parse_page(write_report(tmp_path / "a")[0])
    assert parsed.images == [] and f"{FAST.name}/figure.png" not in parsed.links
    assert f"{FAST.name}/figure.svg" in parsed.links
    # A record that stored no digests (written by older code) claims no figure at all.
    rec = Record.load(b)
    rec.provenance.pop("figures")
    rec.save(b)
    assert record_figures(Record.load(b), b) == {}
    assert parse_page(write_report(tmp_path / "b")[0]).images == []


def test_an_interrupted_rerun_keeps_the_previous_record_whole(tmp_path: Path, only_fast) -> None:
    reproduce.run_experiment(FAST, quick=True, seed=1, out=tmp_path)
    directory = tmp_path / FAST.name
    before = {name: (directory / name).read_bytes() for name in FILES_WITH_FIGURE}
    with pytest.raises(KeyboardInterrupt):
        reproduce.run_experiment(
            dataclasses.replace(FAST, run=_run_interrupted), quick=True, seed=1, out=tmp_path
        )
    assert {name: (directory / name).read_bytes() for name in _files(directory)} == before
    assert reproduce.finished_record(FAST, quick=True, seed=1, out=tmp_path) is not None
    assert not (tmp_path / reproduce.STAGING_DIR).exists()


def test_staging_left_by_a_killed_process_is_swept(tmp_path: Path, only_fast) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    assert dead.wait() == 0  # its pid now names no running process
    area = tmp_path / reproduce.STAGING_DIR
    leftover = area / f"{FAST.name}.{dead.pid}.abc123"
    leftover.mkdir(parents=True)
    (leftover / "record.json").write_text("{}")
    mine = area / f"{FAST.name}.{os.getpid()}.alive"  # a live process: not touched
    mine.mkdir()
    reproduce.run_experiment(FAST, quick=True, seed=1, out=tmp_path)
    assert sorted(p.name for p in area.iterdir()) == [mine.name]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / FAST.name).stat().st_mode & 0o777 == 0o777 & ~umask


def test_a_changed_code_fingerprint_triggers_a_rerun(
    tmp_path: Path, only_fast, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = reproduce.run_experiment(FAST, quick=True, seed=0, out=tmp_path)
    assert rec.provenance["code_fingerprint"] == fingerprint.code_fingerprint(FAST)
    assert rec.provenance["git_commit"]  # the commit stays in the provenance
    [outcome] = reproduce.reproduce(out=tmp_path, only=[FAST.name])
    assert outcome.status == "reused"

    monkeypatch.setattr(reproduce, "code_fingerprint", lambda exp: "0" * 64)
    assert reproduce.finished_record(FAST, quick=True, seed=0, out=tmp_path) is None
    [outcome] = reproduce.reproduce(out=tmp_path, only=[FAST.name])
    assert outcome.status == "ran"
    assert Record.load(tmp_path / FAST.name).provenance["code_fingerprint"] == "0" * 64
    [outcome] = reproduce.reproduce(out=tmp_path, only=[FAST.name])
    assert outcome.status == "reused"


@pytest.fixture
def fresh_fingerprints():
    fingerprint._packages_fingerprint.cache_clear()
    fingerprint._module_fingerprint.cache_clear()
    yield
    fingerprint._packages_fingerprint.cache_clear()
    fingerprint._module_fingerprint.cache_clear()


def test_fingerprint_follows_the_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_fingerprints
) -> None:
    package = tmp_path / "momlab_fp_package"
    package.mkdir()
    (package / "__init__.py").write_text("X = 1\n")
    module = tmp_path / "momlab_fp_experiment.py"
    module.write_text("def run(cfg, seed):\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(fingerprint, "FINGERPRINT_PACKAGES", ("momlab_fp_package",))
    probe = dataclasses.replace(FAST, run=importlib.import_module("momlab_fp_experiment").run)
    first = fingerprint.code_fingerprint(probe)
    assert len(first) == 64 and first != fingerprint.code_fingerprint(FAST)

    module.write_text("def run(cfg, seed):\n    return 1\n")
    assert fingerprint.code_fingerprint(probe) == first  # computed once per process
    fingerprint._module_fingerprint.cache_clear()
    second = fingerprint.code_fingerprint(probe)
    assert second != first

    (package / "sub.py").write_text("Y = 2\n")
    fingerprint._packages_fingerprint.cache_clear()
    assert fingerprint.code_fingerprint(probe) not in {first, second}


def test_fingerprint_covers_library_modules_an_experiment_imports_from() -> None:
    import re

    library = Path(importlib.import_module("experiments.library").__file__).parent
    pattern = re.compile(r"^from (experiments\.library\.\w+) import", re.MULTILINE)
    seen = 0
    for path in sorted(library.glob("[a-z]*.py")):
        module = importlib.import_module(f"experiments.library.{path.stem}")
        deps = fingerprint._library_dependencies(module)
        for imported in pattern.findall(path.read_text(encoding="utf-8")):
            assert imported in deps, (path.stem, imported)
            seen += 1
    assert seen > 0  # some experiment imports a library module (its plot or prose)


def test_file_digest(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"abc")
    # SHA-256 of "abc" (FIPS 180-2, appendix B.1).
    assert file_digest(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
