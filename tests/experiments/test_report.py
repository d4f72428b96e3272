"""The report: one self-contained HTML page embedding every figure, and the Markdown summary."""

from __future__ import annotations

import base64
import dataclasses
import html
import re
from pathlib import Path

import pytest
from _fake_experiments import BROKEN, FAST
from _html import parse_page

from experiments import registry, report, reproduce
from experiments.record import Record, file_digest
from experiments.report import format_value, write_report


@pytest.fixture
def results(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(registry, "_REGISTRY", {FAST.name: FAST, BROKEN.name: BROKEN})
    second = dataclasses.replace(FAST, name="fake-fast-two", order=0)  # not registered
    for exp in (FAST, second, BROKEN):
        reproduce.run_experiment(exp, quick=True, seed=1, out=tmp_path)
    return tmp_path


def test_html_embeds_and_links_every_figure(results) -> None:
    page, summary = write_report(results, missing={"fake-gpu": "needs a GPU"})
    text = page.read_text(encoding="utf-8")
    parser = parse_page(page)
    sources = [img.get("src", "") for img in parser.images]
    with_figures = ["fake-fast", "fake-fast-two"]
    assert len(sources) == len(with_figures)
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    embedded = {base64.b64decode(src.split(",", 1)[1]) for src in sources}
    assert embedded == {(results / n / "figure.png").read_bytes() for n in with_figures}
    for name in with_figures:
        for f in ("figure.png", "figure.svg", "record.json", "arrays.npz"):
            assert f"{name}/{f}" in parser.links
            assert (results / name / f).is_file()
    for link in parser.links:  # every relative link resolves
        if not link.startswith("#"):
            assert (results / link).is_file(), link
    # Table rows: claim, prediction, measurement and verdict of each record; errors shown honestly.
    fast = Record.load(results / "fake-fast")
    assert html.escape(fast.claim) in text and "holds" in text
    assert "fake-broken" in text and "always raises" in text and "error" in text
    assert "fake-gpu" in text and "not run" in text
    assert fast.provenance["git_commit"] in text
    # Registry order is the report order; names not in the registry come last.
    ids = [text.index(f'id="{n}"') for n in ("fake-fast", "fake-broken", "fake-fast-two")]
    assert ids == sorted(ids)
    assert not re.search(r"<script", text)  # self-contained and static

    md = summary.read_text(encoding="utf-8")
    rows = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 4
    linked = [line.split(" | ")[0] for line in rows if line.startswith("| [")]
    assert linked == [f"| [{n}]({n}/figure.png)" for n in ("fake-fast", "fake-fast-two")]
    assert "| fake-broken |" in md  # no figure, so no link to one
    assert "| holds |" in md and "| error |" in md


def test_report_is_rewritten_atomically_and_idempotently(results) -> None:
    page, _ = write_report(results)
    first = page.read_bytes()
    write_report(results)
    assert page.read_bytes() == first
    assert not list(results.glob(".*.tmp"))


def test_report_of_an_empty_directory(tmp_path) -> None:
    page, summary = write_report(tmp_path)
    assert "0 records" in page.read_text() and summary.is_file()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_report(tmp_path / "nope")


def test_format_value() -> None:
    assert format_value(0.123456) == "0.1235"
    assert format_value(None) == "none"
    assert format_value(list(range(10))) == "[10 values]"
    assert format_value({"a": 1.0, "b": [1, 2]}) == "a=1; b=[1, 2]"


def test_unreadable_and_missing_records_are_listed_and_kept(results) -> None:
    (results / "fake-broken" / "record.json").write_text("{not json", encoding="utf-8")
    page, summary = write_report(results, missing={"fake-import": "import failed: boom"})
    text = page.read_text(encoding="utf-8")
    assert "unreadable record.json" in text and "import failed: boom" in text
    assert "2 not run" in text
    # a later `momlab report` alone keeps the rows that reproduce wrote
    page, summary = write_report(results)
    md = summary.read_text(encoding="utf-8")
    assert "import failed: boom" in md and "unreadable record.json" in md
    assert "| not run |" in md and "Tier: quick" in md
    # reproduce reruns the unreadable record
    assert reproduce.finished_record(BROKEN, quick=True, seed=1, out=results) is None


def test_row_shows_the_headline_check_and_sections_fold_the_record(tmp_path, monkeypatch) -> None:
    from experiments.checks import check

    def with_checks(cfg, seed):
        cs = [
            check("precond", "precondition", True, note="trained past chance"),
            check(
                "rate",
                "verification",
                True,
                predicted=0.9,
                measured=0.9001,
                tolerance=1e-3,
                headline=True,
            ),
            check("sign", "reproduction", None, measured=[-0.3, 0.05], note="interval holds 0"),
        ]
        return Record("claim", {}, {"x": 1.0}, {}, checks=cs, summary="s")

    exp = dataclasses.replace(FAST, name="fake-checks", run=with_checks)
    monkeypatch.setattr(registry, "_REGISTRY", {exp.name: exp})
    reproduce.run_experiment(exp, quick=True, seed=0, out=tmp_path)
    page, summary = write_report(tmp_path)
    text = page.read_text(encoding="utf-8")
    assert "rate: predicted 0.9, measured 0.9001 (tolerance 0.001)" in text
    assert "unresolved" in text and "sign: interval holds 0" in text
    assert "<details><summary>Full record</summary>" in text
    assert "precondition (does not decide)" in text
    assert "| unresolved | quick |" in summary.read_text(encoding="utf-8")


def test_a_figure_changed_on_disk_is_rerun_not_reused(results) -> None:
    assert reproduce.finished_record(FAST, quick=True, seed=1, out=results) is not None
    (results / "fake-fast" / "figure.png").write_bytes(b"not the figure of this record")
    assert reproduce.finished_record(FAST, quick=True, seed=1, out=results) is None


def test_each_figure_is_hashed_once_per_report(results, monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[Path] = []

    def counting_digest(path):
        hashed.append(Path(path))
        return file_digest(path)

    monkeypatch.setattr(report, "file_digest", counting_digest)
    page, summary = write_report(results)
    figures = sorted(results.glob("*/figure.*"))
    assert len(figures) == 4  # two records with a PNG and an SVG each
    assert sorted(hashed) == figures
    # both pages still show and link the figures
    assert len(parse_page(page).images) == 2
    assert "(fake-fast/figure.png)" in summary.read_text(encoding="utf-8")
