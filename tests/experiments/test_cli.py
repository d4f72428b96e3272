"""The ``momlab`` commands list / run / reproduce / report on fake experiments (in process)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from _fake_experiments import BROKEN, FAST, GPU, _run

from experiments import catalog, cli, provenance, registry
from experiments.record import Record


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the fake experiments are registered; no GPU; the theory group is not under test here."""
    monkeypatch.setattr(registry, "_REGISTRY", {e.name: e for e in (FAST, BROKEN, GPU)})
    monkeypatch.setattr(registry, "_IMPORT_ERRORS", {})
    monkeypatch.setattr(registry, "discover", registry.experiments)
    monkeypatch.setattr(provenance, "has_gpu", lambda: False)
    monkeypatch.setattr(cli, "_register", lambda: None)
    monkeypatch.setattr(catalog, "CATALOG", ())  # list reads the live (fake) registry


def _one_line_error(capsys: pytest.CaptureFixture[str], *words: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.startswith("momlab: error:") and "\n" not in err, err
    for word in words:
        assert word in err, err


def test_list_shows_every_experiment(fakes, capsys) -> None:
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for exp in (FAST, BROKEN, GPU):
        assert exp.name in out and exp.device in out


def test_run_writes_the_result_directory(fakes, tmp_path, capsys) -> None:
    assert cli.main(["run", "fake-fast", "--quick", "--seed", "5", "--out", str(tmp_path)]) == 0
    assert "fake-fast (quick): holds" in capsys.readouterr().out
    files = {p.name for p in (tmp_path / "fake-fast").iterdir()}
    assert files == {"record.json", "arrays.npz", "figure.png", "figure.svg"}
    rec = Record.load(tmp_path / "fake-fast")
    assert rec.provenance["seed"] == 5 and rec.config["n"] == 16
    assert cli.main(["run", "fake-fast", "--out", str(tmp_path)]) == 0  # quick by default
    assert Record.load(tmp_path / "fake-fast").config["n"] == 16
    assert cli.main(["run", "fake-fast", "--full", "--out", str(tmp_path)]) == 0
    rec = Record.load(tmp_path / "fake-fast")
    assert rec.config["n"] == 64 and rec.provenance["tier"] == "full"


def test_run_of_a_raising_experiment_exits_1(fakes, tmp_path, capsys) -> None:
    assert cli.main(["run", "fake-broken", "--quick", "--out", str(tmp_path)]) == 1
    assert "fake-broken (quick): error" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["run", "nope"], ["unknown experiment", "nope", "fake-fast"]),
        (["run", "fake-fast", "--seed", "-1"], ["seed"]),
        (["run", "fake-fast", "--seed", "4294967296"], ["seed"]),
        (["reproduce", "--only", "nope"], ["unknown experiment"]),
        (["reproduce", "--bogus"], ["bogus"]),
        (["list", "extra"], ["extra"]),
    ],
)
def test_invalid_input_is_one_line_and_exit_2(fakes, tmp_path, capsys, argv, words) -> None:
    assert cli.main([*argv, "--out", str(tmp_path)] if argv[0] != "list" else argv) == 2
    _one_line_error(capsys, *words)


def test_unwritable_output_directory_exits_2(fakes, tmp_path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for argv in (["run", "fake-fast", "--quick"], ["reproduce"]):
        assert cli.main([*argv, "--out", str(blocker / "results")]) == 2
        _one_line_error(capsys, "not writable")
    assert cli.main(["report", "--out", str(tmp_path / "missing")]) == 2
    _one_line_error(capsys, "does not exist")
    assert cli.main(["report", "--out", str(blocker)]) == 2
    _one_line_error(capsys, "is not a directory")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs a Linux /proc")
def test_an_output_directory_that_cannot_be_created_is_explained(fakes, capsys) -> None:
    for argv in (["run", "fake-fast", "--quick"], ["reproduce"]):
        assert cli.main([*argv, "--out", "/proc/momlab-nope/results"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("momlab: error:") and "\n" not in err, err
        assert "not writable" in err and "inside '/proc'" in err, err
        assert "Errno" not in err and "No such file" not in err, err


@pytest.mark.parametrize(("argv", "word"), [([], "reproduce"), (["theory"], "singlestep")])
def test_no_command_prints_the_help_and_exits_0(capsys, argv: list[str], word: str) -> None:
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "Usage" in captured.out and word in captured.out
    assert captured.err == ""


def test_help_request_is_recognised_by_class_not_by_name(monkeypatch) -> None:
    impostor = type("NoArgsIsHelpError", (Exception,), {})
    assert not cli._is_help_request(impostor("not click's"))
    assert cli._HELP_REQUESTS  # the installed typer (or click) defines the class
    for cls in cli._HELP_REQUESTS:
        assert cli._is_help_request(cls.__new__(cls))
    # without click (newer typer does not install it) the classes are still found, and no error
    monkeypatch.setitem(sys.modules, "click", None)
    monkeypatch.setitem(sys.modules, "click.exceptions", None)
    found = cli._help_request_classes()
    assert all(not c.__module__.startswith("click") for c in found)
    assert {c for c in cli._HELP_REQUESTS if c.__module__.startswith("typer")} <= set(found)


def test_reproduce_runs_reuses_forces_and_skips(fakes, tmp_path, capsys) -> None:
    out = str(tmp_path)
    assert cli.main(["reproduce", "--out", out]) == 1  # fake-broken raised
    text = capsys.readouterr().out
    assert "fake-fast: ran" in text and "fake-broken: error" in text
    assert "fake-gpu: ran (quick" in text  # every quick config runs on a CPU
    assert (tmp_path / "report.html").is_file() and (tmp_path / "summary.md").is_file()
    first = (tmp_path / "fake-fast" / "record.json").read_text()

    assert cli.main(["reproduce", "--out", out, "--only", "fake-fast"]) == 0
    assert "fake-fast: reused" in capsys.readouterr().out
    assert (tmp_path / "fake-fast" / "record.json").read_text() == first

    assert cli.main(["reproduce", "--out", out, "--only", "fake-fast", "--force"]) == 0
    assert "fake-fast: ran" in capsys.readouterr().out

    assert cli.main(["reproduce", "--out", out, "--only", "fake-fast", "--full"]) == 0
    assert "fake-fast: ran (full" in capsys.readouterr().out  # other config: no reuse

    assert cli.main(["reproduce", "--out", out, "--only", "fake-gpu", "--gpu"]) == 0
    assert "fake-gpu: ran (gpu" in capsys.readouterr().out  # asked for: the gpu tier
    prov = Record.load(tmp_path / "fake-gpu").provenance
    assert prov["tier"] == "gpu" and prov["quick"] is False


def test_list_never_breaks_a_name_and_show_gives_claim_and_checks(
    fakes, tmp_path, capsys, monkeypatch
) -> None:
    long = dataclasses.replace(FAST, name="nonconvex-constant-rate-long-name", title="t " * 30)
    monkeypatch.setitem(registry._REGISTRY, long.name, long)
    monkeypatch.setenv("COLUMNS", "80")
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert long.name in out and FAST.claim not in out  # the claim is in `show`
    assert cli.main(["show", "fake-fast", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert FAST.claim in out and "last outcome: none" in out
    assert cli.main(["run", "fake-fast", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert cli.main(["show", "fake-fast", "--out", str(tmp_path)]) == 0
    assert "last outcome (quick): holds" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["", "x" * 300, "a\x00b"])
def test_bad_out_is_one_line_naming_out(fakes, bad, capsys) -> None:
    assert cli.main(["run", "fake-fast", "--out", bad]) == 2
    _one_line_error(capsys, "--out")
    assert cli.main(["reproduce", "--out", bad]) == 2
    _one_line_error(capsys, "--out")


def test_report_command(fakes, tmp_path, capsys) -> None:
    assert cli.main(["run", "fake-fast", "--quick", "--out", str(tmp_path)]) == 0
    assert cli.main(["report", "--out", str(tmp_path)]) == 0
    assert "report.html" in capsys.readouterr().out
    assert "fake-fast" in (tmp_path / "summary.md").read_text()


def _run_with_markup(cfg, seed):
    return dataclasses.replace(_run(cfg, seed), summary="measured [h_min, h_max] and [/x] [bold]")


MARKUP_CLAIM = "Spectrum [h_min, h_max] [/x]."


@pytest.fixture
def markup(fakes, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = dataclasses.replace(
        FAST, name="fake-markup", title="t", claim=MARKUP_CLAIM, run=_run_with_markup
    )
    monkeypatch.setattr(registry, "_REGISTRY", {exp.name: exp})


def test_claims_summaries_and_paths_are_printed_verbatim(markup, tmp_path, capsys) -> None:
    assert cli.main(["show", "fake-markup"]) == 0
    assert MARKUP_CLAIM in capsys.readouterr().out
    out = tmp_path / "[" / "x]"  # the path '.../[/x]' is a closing markup tag
    assert cli.main(["run", "fake-markup", "--quick", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "measured [h_min, h_max] and [/x] [bold]" in text
    assert f"written to {out / 'fake-markup'}" in text
    assert cli.main(["reproduce", "--out", str(out), "--force"]) == 0
    text = capsys.readouterr().out
    assert "fake-markup: ran (quick: holds)" in text and f"report: {out}" in text
    assert cli.main(["report", "--out", str(out)]) == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["run", "--help"],
        ["reproduce", "--help"],
        ["show", "--help"],
        ["report", "--help"],
        ["theory", "rate", "--help"],
        ["theory", "singlestep", "--help"],
    ],
)
def test_help_has_no_type_placeholders(argv, capsys, monkeypatch) -> None:
    import re

    monkeypatch.setenv("COLUMNS", "100")
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "Usage" in text
    assert not re.search(r"<(bool|str|int|float|list)[^>]*>", text), text
