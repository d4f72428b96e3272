"""The report: one self-contained HTML page and a Markdown summary of every finished record.

``write_report(out)`` reads every ``out/<name>/record.json`` and writes ``out/report.html`` (figures
embedded as base64 PNG, with links to the PNG/SVG/JSON/NPZ files next to it) and ``out/summary.md``
(one row per experiment: claim, headline check, outcome, tier). Both are written atomically. Each
experiment's section shows its figure, its checks table (name, kind, predicted, measured,
tolerance, outcome) and the full record under a collapsed ``<details>``. Experiments without a
readable record are listed as "not run" with the reason, so nothing vanishes silently.

A figure is shown or linked only when its SHA-256 equals the digest its record stored when the
figure was written (``provenance["figures"]``): a figure left from another run is never presented
beside a record it does not belong to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from experiments import _report_render, registry
from experiments._report_render import (
    FigureMap,
    format_value,
    headline_text,
    outcome_counts,
    record_tier,
    tiers_text,
)
from experiments.record import RECORD_FILE, Record, atomic_write_text, file_digest

__all__ = [
    "FIGURE_FILES",
    "NOT_RUN_FILE",
    "REPORT_FILE",
    "SUMMARY_FILE",
    "format_value",
    "headline_text",
    "load_records",
    "not_run",
    "outcome_counts",
    "record_figures",
    "record_tier",
    "render_html",
    "render_markdown",
    "scan_records",
    "tiers_text",
    "write_not_run",
    "write_report",
]

REPORT_FILE = "report.html"
NOT_RUN_FILE = "not_run.json"
SUMMARY_FILE = "summary.md"
FIGURE_FILES = ("figure.png", "figure.svg")


def scan_records(out: str | Path) -> tuple[list[Record], dict[str, str]]:
    """Every finished record under ``out`` in registry order, and the unreadable ones.

    Returns:
        ``(records, unreadable)``: the records (unknown names last, by name), and
        ``{directory name: why}`` for each ``record.json`` that exists but cannot be read (a
        corrupted file is shown in the report, never dropped silently).
    """
    out = Path(out)
    records, unreadable = [], {}
    for path in sorted(out.glob(f"*/{RECORD_FILE}")):
        try:
            records.append(Record.load(path.parent))
        except (ValueError, KeyError, TypeError, OSError) as err:
            text = str(err).strip().splitlines()
            unreadable[path.parent.name] = f"unreadable {RECORD_FILE}: {text[0] if text else err!r}"
    order = {e.name: (e.order, e.name) for e in registry.experiments()}
    records.sort(key=lambda r: order.get(r.name, (10**9, r.name)))
    return records, unreadable


def load_records(out: str | Path) -> list[Record]:
    """Every readable finished record under ``out``, in registry order (unknown names last)."""
    return scan_records(out)[0]


def record_figures(record: Record, directory: str | Path) -> dict[str, Path]:
    """The figure files in ``directory`` that belong to ``record``.

    Each file is read and hashed, so a caller that needs the answer more than once keeps it
    (:func:`write_report` computes it once per record for both pages).

    Returns:
        ``{file name: path}`` for each of :data:`FIGURE_FILES` whose SHA-256 equals the digest
        stored in ``record.provenance["figures"]``; empty for a record that stored none.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     png = Path(tmp) / "figure.png"
        ...     _ = png.write_bytes(b"figure of this run")
        ...     digests = {"figure.png": file_digest(png)}
        ...     rec = Record("claim", {}, {}, {}, "holds", provenance={"figures": digests})
        ...     mine = sorted(record_figures(rec, tmp))
        ...     _ = png.write_bytes(b"figure of another run")
        ...     print(mine, record_figures(rec, tmp))
        ['figure.png'] {}
    """
    stored = record.provenance.get("figures")
    if not isinstance(stored, Mapping):
        return {}
    found = {}
    for name in FIGURE_FILES:
        path = Path(directory) / name
        try:
            if stored.get(name) == file_digest(path):
                found[name] = path
        except OSError:
            continue
    return found


def _figures_of(records: list[Record], out: Path, figures: FigureMap | None) -> FigureMap:
    if figures is not None:
        return figures
    return {r.name: record_figures(r, out / r.name) for r in records}


def render_html(
    records: list[Record],
    out: Path,
    missing: Mapping[str, str],
    figures: FigureMap | None = None,
) -> str:
    """The report page as a string (figures found and hashed when ``figures`` is None)."""
    figures = _figures_of(records, Path(out), figures)
    return _report_render.render_html(records, Path(out), missing, figures)


def render_markdown(
    records: list[Record],
    missing: Mapping[str, str],
    out: Path | None = None,
    figures: FigureMap | None = None,
) -> str:
    """The Markdown summary as a string (figures linked only when ``out`` is given)."""
    figures = _figures_of(records, Path(out), figures) if out is not None else {}
    return _report_render.render_markdown(records, missing, out, figures)


def not_run(out: Path, records: list[Record], unreadable: Mapping[str, str]) -> dict[str, str]:
    """Registered experiments without a readable record in ``out``, and why.

    The reason is, in this order: the record is unreadable; what the last ``momlab reproduce``
    noted in ``out/not_run.json`` (an import error, say); or that ``out`` holds no record of it.
    """
    noted: dict[str, str] = {}
    try:
        data = json.loads((out / NOT_RUN_FILE).read_text(encoding="utf-8"))
        if isinstance(data, dict):
            noted = {str(k): str(v) for k, v in data.items()}
    except (OSError, ValueError):
        pass
    have = {r.name for r in records}
    names = [e.name for e in registry.experiments()]
    names += [n for n in [*unreadable, *noted] if n not in names]
    missing = {}
    for name in names:
        if name in have:
            continue
        if name in unreadable:
            missing[name] = unreadable[name]
        elif name in noted:
            missing[name] = noted[name]
        elif name in {e.name for e in registry.experiments()}:
            missing[name] = f"no record in {out}"
    return missing


def write_not_run(out: str | Path, missing: Mapping[str, str]) -> None:
    """Remember why experiments were not run (read back by :func:`not_run`), atomically."""
    atomic_write_text(Path(out) / NOT_RUN_FILE, json.dumps(dict(missing), indent=2) + "\n")


def write_report(
    out: str | Path = "results", *, missing: Mapping[str, str] | None = None
) -> tuple[Path, Path]:
    """Write ``report.html`` and ``summary.md`` into ``out`` from the records found there.

    Args:
        out: the results directory.
        missing: experiments without a record and why (listed as "not run"); kept in
            ``out/not_run.json`` so that a later report alone lists them too. Registered
            experiments without a record, and unreadable records, are listed as "not run" as well.

    Returns:
        The paths of the HTML page and the Markdown summary.

    Raises:
        FileNotFoundError: when ``out`` does not exist.
        NotADirectoryError: when ``out`` is not a directory.
        ValueError: when the report cannot be written into ``out`` (naming the reason).
    """
    out = Path(out)
    if not out.exists():
        raise FileNotFoundError(f"results directory {str(out)!r} does not exist")
    if not out.is_dir():
        raise NotADirectoryError(f"results directory {str(out)!r} is not a directory")
    records, unreadable = scan_records(out)
    if missing is not None:
        write_not_run(out, {k: v for k, v in missing.items() if k not in unreadable})
    missing = not_run(out, records, unreadable)
    page, summary = out / REPORT_FILE, out / SUMMARY_FILE
    figures = _figures_of(records, out, None)  # every figure hashed once, for both pages
    try:
        atomic_write_text(page, render_html(records, out, missing, figures))
        atomic_write_text(summary, render_markdown(records, missing, out, figures))
    except OSError as err:
        reason = (err.strerror or type(err).__name__).lower()
        raise ValueError(f"cannot write the report into {str(out)!r}: {reason}") from err
    return page, summary
