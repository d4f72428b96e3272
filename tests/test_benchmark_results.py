"""benchmarks._results.merge_run: one run per platform, the others kept, bad files replaced."""

from __future__ import annotations

import json

from benchmarks._results import merge_run


def test_merge_keeps_the_other_platforms_and_replaces_the_same_one(tmp_path):
    path = tmp_path / "r.json"
    merge_run(path, "cpu", {"x": 1})
    merge_run(path, "gpu", {"x": 2})
    merge_run(path, "cpu", {"x": 3})
    assert json.loads(path.read_text()) == {"runs": {"cpu": {"x": 3}, "gpu": {"x": 2}}}
    assert not list(tmp_path.glob("*.tmp"))


def test_an_unreadable_or_foreign_file_is_replaced(tmp_path):
    for text in ("{not json", "[1, 2]", '{"runs": 5}'):
        path = tmp_path / "r.json"
        path.write_text(text)
        merge_run(path, "cpu", {"x": 1})
        assert json.loads(path.read_text()) == {"runs": {"cpu": {"x": 1}}}
