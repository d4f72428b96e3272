"""Rendering of the report: the HTML page and the Markdown summary from records (no file I/O).

:mod:`experiments.report` finds the records and figures and writes the files; this module turns
them into text. One row per experiment (claim, headline check, outcome, tier), then one section per
record: outcome and why, figure, checks table (name, kind, predicted, measured, tolerance, outcome,
note) and the full record under a collapsed ``<details>``.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from experiments import checks, registry
from experiments.checks import DECIDING, VERDICTS
from experiments.record import ARRAYS_FILE, RECORD_FILE, Record

FigureMap = Mapping[str, Mapping[str, Path]]  # record name -> {figure file name: path}
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
    """A short rendering of a JSON value (4 significant digits, long lists counted).

    ``None`` (a value the record leaves undefined) reads ``none``; non-finite numbers read as the
    record writes them (``nan``, ``inf``, ``-inf``).

    Example:
        >>> format_value({"rate": 0.912345, "bound": None, "grid": [1, 2, 3, 4, 5, 6, 7]})
        'rate=0.9123; bound=none; grid=[7 values]'
    """
    if value is None:
        return "none"
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


def record_tier(record: Record) -> str:
    """The tier a record ran at (``quick``/``full``/``gpu``; older records: from the quick flag)."""
    prov = record.provenance
    return str(prov.get("tier") or ("quick" if prov.get("quick") else "full"))


def headline_text(record: Record) -> str:
    """``predicted P, measured M (tolerance T)`` of the record's headline check, or its summary."""
    head = checks.headline(record.checks)
    if head is None:
        return record.summary
    data = head.to_json()
    text = f"{head.name}: predicted {format_value(data['predicted'])}, "
    text += f"measured {format_value(data['measured'])}"
    if data["tolerance"] is not None:
        text += f" (tolerance {format_value(data['tolerance'])})"
    return text


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
        f"<p><b>Outcome ({html.escape(record_tier(record))} tier):</b> "
        f'<span class="{cls}">{html.escape(record.verdict)}</span> '
        f"&mdash; {html.escape(record.summary)}</p>"
    )
    if record.smoke:
        parts.append(f"<p><b>Smoke run.</b> {html.escape(record.smoke)}</p>")
    why = checks.reasons(record.checks) if record.verdict not in ("holds", "error") else []
    if why:
        items = "".join(f"<li>{html.escape(w)}</li>" for w in why)
        parts.append(f"<p><b>Why.</b></p><ul>{items}</ul>")
    if "figure.png" in figures:
        data = base64.b64encode(figures["figure.png"].read_bytes()).decode("ascii")
        parts.append(f'<img alt="figure of {name}" src="data:image/png;base64,{data}">')
    parts.append(_checks_html(record))
    files = [*figures, *(f for f in (RECORD_FILE, ARRAYS_FILE) if (directory / f).is_file())]
    links = [f'<a href="{html.escape(record.name)}/{f}">{f}</a>' for f in files]
    parts.append(f"<p>Files: {' &middot; '.join(links)}</p>")
    prov = {k: v for k, v in record.provenance.items() if k not in _HIDDEN_PROVENANCE}
    parts.append(
        "<details><summary>Full record</summary>"
        "<table><tr><th>prediction</th><th>measurement</th><th>tolerance</th><th>config</th></tr>"
        f"<tr><td>{_kv_html(record.prediction)}</td><td>{_kv_html(record.measurement)}</td>"
        f"<td>{_kv_html(record.tolerance)}</td><td>{_kv_html(record.config)}</td></tr></table>"
        f"<p><b>Provenance.</b> {_kv_html(prov)}</p>"
    )
    if "traceback" in record.provenance:
        parts.append(f"<pre>{html.escape(str(record.provenance['traceback']))}</pre>")
    parts.append("</details></section>")
    return "\n".join(parts)


def _title(name: str) -> str:
    try:
        return registry.get(name).claim
    except ValueError:
        return ""


def outcome_counts(records: list[Record], missing: Mapping[str, str]) -> dict[str, int]:
    """How many records have each verdict, plus ``not run`` (only outcomes that occur).

    Example:
        >>> outcome_counts([Record("c", {}, {}, {}, "holds")], {"x": "needs data"})
        {'holds': 1, 'not run': 1}
    """
    counts = {v: sum(r.verdict == v for r in records) for v in VERDICTS}
    counts["not run"] = len(missing)
    return {k: n for k, n in counts.items() if n}


def tiers_text(records: list[Record]) -> str:
    """Which tiers the records ran at, e.g. ``quick`` or ``quick (12), full (2)``."""
    found: dict[str, int] = {}
    for r in records:
        found[record_tier(r)] = found.get(record_tier(r), 0) + 1
    if len(found) <= 1:
        return next(iter(found), "none")
    return ", ".join(f"{t} ({n})" for t, n in found.items())


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
        missing: experiments without a (readable) record and why.
        figures: :func:`experiments.report.record_figures` of each record by name (none shown
            when None).
    """
    figures = figures or {}
    rows = []
    for r in records:
        cls = _verdict_class(r.verdict)
        rows.append(
            f'<tr><td><a href="#{html.escape(r.name)}">{html.escape(r.name)}</a></td>'
            f"<td>{html.escape(r.claim)}</td><td>{html.escape(headline_text(r))}</td>"
            f'<td class="{cls}">{html.escape(r.verdict)}</td>'
            f"<td>{html.escape(record_tier(r))}</td></tr>"
        )
    for name, why in missing.items():
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{html.escape(_title(name))}</td>"
            f'<td>{html.escape(why)}</td><td class="na">not run</td><td></td></tr>'
        )
    counts = outcome_counts(records, missing)
    head = ", ".join(f"{n} {v}" for v, n in counts.items()) or "nothing yet"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            "<title>momentum-lab report</title>",
            f"<style>{_CSS}</style></head><body>",
            "<h1>momentum-lab report</h1>",
            f"<p>{len(records)} records: {html.escape(head)}. "
            f"Tier: {html.escape(tiers_text(records))}.</p>",
            "<table><tr><th>experiment</th><th>claim</th><th>headline</th><th>outcome</th>"
            "<th>tier</th></tr>",
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
    """The Markdown summary table as a string (one row per experiment).

    Args:
        records: the finished records.
        missing: experiments without a (readable) record and why.
        out: the results directory; without it no figure is linked.
        figures: :func:`experiments.report.record_figures` of each record by name (none shown
            when None).
    """
    figures = figures if out is not None and figures is not None else {}
    counts = outcome_counts(records, missing)
    lines = [
        "# momentum-lab summary",
        "",
        f"{len(records)} records: {', '.join(f'{n} {v}' for v, n in counts.items()) or 'none'}."
        f" Tier: {tiers_text(records)}.",
        "",
        "| experiment | claim | headline | outcome | tier |",
        "|---|---|---|---|---|",
    ]
    for r in records:
        linked = "figure.png" in figures.get(r.name, {})
        label = f"[{r.name}]({r.name}/figure.png)" if linked else r.name
        cells = [label, r.claim, headline_text(r), r.verdict, record_tier(r)]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    for name, why in missing.items():
        cells = [name, _title(name), why, "not run", ""]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"
