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
    assert format_value(None) == "nan"
    assert format_value(list(range(10))) == "[10 values]"
    assert format_value({"a": 1.0, "b": [1, 2]}) == "a=1; b=[1, 2]"


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
