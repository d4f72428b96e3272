"""The report: one self-contained HTML page and a Markdown summary of every finished record.

``write_report(out)`` reads every ``out/<name>/record.json`` and writes ``out/report.html`` (figures
embedded as base64 PNG, with links to the PNG/SVG/JSON/NPZ files next to it) and ``out/summary.md``
(a table claim / prediction / measurement / verdict). Both are written atomically.

A figure is shown or linked only when its SHA-256 equals the digest its record stored when the
figure was written (``provenance["figures"]``): a figure left from another run is never presented
beside a record it does not belong to.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from experiments import registry
from experiments.checks import DECIDING, VERDICTS
from experiments.record import ARRAYS_FILE, RECORD_FILE, Record, atomic_write_text, file_digest

REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.md"
FIGURE_FILES = ("figure.png", "figure.svg")
_MAX_ITEMS = 6
_HIDDEN_PROVENANCE = ("traceback", "figures")
FigureMap = Mapping[str, Mapping[str, Path]]  # record name -> record_figures(record, ...)

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%;font-size:0.9em}
th,td{border:1px solid #ccc;padding:4px 6px;vertical-align:top;text-align:left}
th{background:#f3f3f3}
.holds{color:#087f23;font-weight:bold}.fails{color:#b00020;font-weight:bold}
.error{color:#b00020;font-style:italic}.na{color:#666}
.unresolved,.smoke{color:#8a5a00;font-weight:bold}
td.pass{color:#087f23}td.fail{color:#b00020}td.unresolved{color:#8a5a00}
section{margin-top:2.5em;border-top:1px solid #ddd;padding-top:1em}
img{max-width:100%;height:auto}
pre{background:#f7f7f7;padding:0.5em;overflow-x:auto;font-size:0.8em}
"""


def format_value(value: Any) -> str:
    """A short rendering of a JSON value (4 significant digits, long lists counted)."""
    if value is None:
        return "nan"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        if len(value) > _MAX_ITEMS:
            return f"[{len(value)} values]"
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "; ".join(f"{k}={format_value(v)}" for k, v in value.items())
    return str(value)


def load_records(out: str | Path) -> list[Record]:
    """Every finished record under ``out``, in registry order (unknown names last, by name)."""
    out = Path(out)
    records = []
    for path in sorted(out.glob(f"*/{RECORD_FILE}")):
        try:
            records.append(Record.load(path.parent))
        except (ValueError, KeyError):
            continue
    order = {e.name: (e.order, e.name) for e in registry.experiments()}
    return sorted(records, key=lambda r: order.get(r.name, (10**9, r.name)))


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


def _verdict_class(verdict: str) -> str:
    known = ("holds", "fails", "error", "unresolved", "smoke")
    return verdict if verdict in known else "na"


def _checks_html(record: Record) -> str:
    """The checks table: name, kind, predicted, measured, tolerance, outcome, note."""
    if not record.checks:
        return ""
    rows = [
        "<table><tr><th>check</th><th>kind</th><th>predicted</th><th>measured</th>"
        "<th>tolerance</th><th>outcome</th><th>note</th></tr>"
    ]
    for c in record.checks:
        data = c.to_json()
        cells = [
            html.escape(c.name + (" (headline)" if c.headline else "")),
            html.escape(c.kind + ("" if c.kind in DECIDING else " (does not decide)")),
            html.escape(format_value(data["predicted"])),
            html.escape(format_value(data["measured"])),
            html.escape(format_value(data["tolerance"])),
        ]
        rows.append(
            "<tr>"
            + "".join(f"<td>{x}</td>" for x in cells)
            + f'<td class="{c.outcome}">{c.outcome}</td><td>{html.escape(c.note)}</td></tr>'
        )
    rows.append("</table>")
    return "\n".join(rows)


def _kv_html(values: Mapping[str, Any] | str) -> str:
    if isinstance(values, str):
        return html.escape(values)
    return "<br>".join(
        f"{html.escape(str(k))} = {html.escape(format_value(v))}" for k, v in values.items()
    )


def _section(record: Record, out: Path, figures: Mapping[str, Path]) -> str:
    name = html.escape(record.name)
    directory = out / record.name
    parts = [f'<section id="{name}"><h2>{name}</h2>']
    parts.append(f"<p><b>Claim.</b> {html.escape(record.claim)}</p>")
    cls = _verdict_class(record.verdict)
    parts.append(
        f'<p><b>Verdict:</b> <span class="{cls}">{html.escape(record.verdict)}</span> '
        f"&mdash; {html.escape(record.summary)}</p>"
    )
    if record.smoke:
        parts.append(f"<p><b>Smoke run.</b> {html.escape(record.smoke)}</p>")
    parts.append(_checks_html(record))
    if "figure.png" in figures:
        data = base64.b64encode(figures["figure.png"].read_bytes()).decode("ascii")
        parts.append(f'<img alt="figure of {name}" src="data:image/png;base64,{data}">')
    files = [*figures, *(f for f in (RECORD_FILE, ARRAYS_FILE) if (directory / f).is_file())]
    links = [f'<a href="{html.escape(record.name)}/{f}">{f}</a>' for f in files]
    parts.append(f"<p>Files: {' &middot; '.join(links)}</p>")
    parts.append(
        "<table><tr><th>prediction</th><th>measurement</th><th>tolerance</th><th>config</th></tr>"
        f"<tr><td>{_kv_html(record.prediction)}</td><td>{_kv_html(record.measurement)}</td>"
        f"<td>{_kv_html(record.tolerance)}</td><td>{_kv_html(record.config)}</td></tr></table>"
    )
    prov = {k: v for k, v in record.provenance.items() if k not in _HIDDEN_PROVENANCE}
    parts.append(f"<p><b>Provenance.</b> {_kv_html(prov)}</p>")
    if "traceback" in record.provenance:
        parts.append(f"<pre>{html.escape(str(record.provenance['traceback']))}</pre>")
    parts.append("</section>")
    return "\n".join(parts)


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
    """The report page as a string.

    Args:
        records: the finished records.
        out: the results directory (figures and links are relative to it).
        missing: experiments without a record and why.
        figures: :func:`record_figures` of each record by name; computed when None.
    """
    figures = _figures_of(records, out, figures)
    rows = []
    for r in records:
        cls = _verdict_class(r.verdict)
        rows.append(
            f'<tr><td><a href="#{html.escape(r.name)}">{html.escape(r.name)}</a></td>'
            f"<td>{html.escape(r.claim)}</td><td>{_kv_html(r.prediction)}</td>"
            f"<td>{_kv_html(r.measurement)}</td>"
            f'<td class="{cls}">{html.escape(r.verdict)}</td></tr>'
        )
    for name, why in missing.items():
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td colspan=3>{html.escape(why)}</td>"
            '<td class="na">not run</td></tr>'
        )
    counts = {v: sum(r.verdict == v for r in records) for v in VERDICTS}
    head = ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "none"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            "<title>momentum-lab report</title>",
            f"<style>{_CSS}</style></head><body>",
            "<h1>momentum-lab report</h1>",
            f"<p>{len(records)} records: {html.escape(head)}.</p>",
            "<table><tr><th>experiment</th><th>claim</th><th>prediction</th><th>measurement</th>"
            "<th>verdict</th></tr>",
            *rows,
            "</table>",
            *(_section(r, out, figures.get(r.name, {})) for r in records),
            "</body></html>",
            "",
        ]
    )


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(
    records: list[Record],
    missing: Mapping[str, str],
    out: Path | None = None,
    figures: FigureMap | None = None,
) -> str:
    """The Markdown summary table as a string.

    Args:
        records: the finished records.
        missing: experiments without a record and why.
        out: the results directory; without it no figure is linked.
        figures: :func:`record_figures` of each record by name; computed when None.
    """
    figures = _figures_of(records, out, figures) if out is not None else {}
    lines = [
        "# momentum-lab summary",
        "",
        "| experiment | claim | prediction | measurement | verdict |",
        "|---|---|---|---|---|",
    ]
    for r in records:
        pred = r.prediction if isinstance(r.prediction, str) else format_value(r.prediction)
        meas = format_value(r.measurement)
        linked = "figure.png" in figures.get(r.name, {})
        label = f"[{r.name}]({r.name}/figure.png)" if linked else r.name
        cells = [label, r.claim, pred, meas, r.verdict]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    for name, why in missing.items():
        lines.append(f"| {_md_cell(name)} | {_md_cell(why)} | | | not run |")
    return "\n".join(lines) + "\n"


def write_report(
    out: str | Path = "results", *, missing: Mapping[str, str] | None = None
) -> tuple[Path, Path]:
    """Write ``report.html`` and ``summary.md`` into ``out`` from the records found there.

    Args:
        out: the results directory.
        missing: experiments without a record and why (listed as "not run").

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
    records = load_records(out)
    missing = {k: v for k, v in (missing or {}).items() if k not in {r.name for r in records}}
    page, summary = out / REPORT_FILE, out / SUMMARY_FILE
    figures = _figures_of(records, out, None)  # every figure hashed once, for both pages
    try:
        atomic_write_text(page, render_html(records, out, missing, figures))
        atomic_write_text(summary, render_markdown(records, missing, out, figures))
    except OSError as err:
        reason = (err.strerror or type(err).__name__).lower()
        raise ValueError(f"cannot write the report into {str(out)!r}: {reason}") from err
    return page, summary
