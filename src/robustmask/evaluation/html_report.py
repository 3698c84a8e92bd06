"""One self-contained ``report.html`` from a results folder: opens offline in any browser.

The page is built from the folder `ResultsWriter` fills (``summary.json``, ``tables/NAME.csv``,
``figures/NAME.png``). It opens with the run's headline (``summary.json["headline"]``,
`robustmask.evaluation.headline`): per model and eps, clean accuracy and the worst case over every
attack run, and which attacks those were; then the sanity checks, then the details. Everything it shows is inside the one file: the CSS is inline, every figure
is a base64 ``data:`` URI, and there are no scripts, fonts or links to fetch. All text from the
folder is HTML-escaped, so a caption or table cell reading ``<script>`` is shown, never run.

Example::

    >>> from robustmask.evaluation.html_report import write_html_report
    >>> write_html_report("runs/fgsm")                      # doctest: +SKIP
    PosixPath('runs/fgsm/report.html')

A table or figure a section names but the folder lacks, or a missing or malformed summary.json,
raises `RobustmaskError` with a one-line message that names the file.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from robustmask._io import write_text_atomically
from robustmask.errors import RobustmaskError, first_line
from robustmask.evaluation.labels import eps_label
from robustmask.evaluation.summary import SUMMARY_NAME, read_summary

__all__ = ["REPORT_NAME", "render_html", "write_html_report"]

REPORT_NAME = "report.html"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_CSS = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --zebra: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--ink); line-height: 1.5;
       font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 62rem; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
h1 { font-size: 1.9rem; margin: 0 0 .5rem; line-height: 1.2; }
h2 { font-size: 1.35rem; margin: 2.2rem 0 .6rem; padding-bottom: .3rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
pre { background: var(--zebra); border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem;
      white-space: pre-wrap; word-break: break-all; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0 0 1.2rem;
          color: var(--muted); }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; word-break: break-all; }
.checks { border: 1px solid; border-left-width: 6px; border-radius: 6px; padding: .6rem 1rem; margin: 1rem 0; }
.checks.fired { background: #fff8c5; border-color: #d4a72c; }
.checks.quiet { background: #dafbe1; border-color: #4ac26b; }
.checks h2 { border: 0; margin: .2rem 0 .3rem; font-size: 1.1rem; }
.checks ul { margin: .3rem 0; padding-left: 1.3rem; }
.headline { border: 1px solid var(--line); border-radius: 6px; padding: .6rem 1rem; margin: 1rem 0; }
.headline h2 { border: 0; margin: .2rem 0 .3rem; font-size: 1.1rem; }
figure { margin: 1.2rem 0; }
figcaption { color: var(--muted); font-size: .92rem; margin-top: .35rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .92rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #eaeef2; }
tbody tr:nth-child(even) { background: var(--zebra); }
table.keys td:first-child { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); }
footer { margin-top: 3rem; color: var(--muted); font-size: .85rem; }
"""


def write_html_report(folder: str | os.PathLike, *, output: str | os.PathLike | None = None) -> Path:
    """Write the report of results `folder` to `output` (default ``folder/report.html``) atomically; return its path."""
    page = render_html(folder)
    return write_text_atomically(Path(folder) / REPORT_NAME if output is None else Path(output), page)


def render_html(folder: str | os.PathLike) -> str:
    """The report of results `folder` as one self-contained HTML page."""
    folder = Path(folder)
    summary = read_summary(folder)
    title = str(summary.get("title") or folder.resolve().name)
    body = [
        f"<h1>{_esc(title)}</h1>",
        _header(summary),
        _headline(summary.get("headline")),
        _warnings(summary.get("warnings")),
        *(_section(folder, section) for section in summary["sections"]),
        _notes(summary.get("notes")),
        _rerun(summary),
        f"<footer>Written by robustmask from {_esc(folder.resolve().name)}/{SUMMARY_NAME}.</footer>",
    ]
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(part for part in body if part)
        + "\n</main>\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------------------------------- reading


def _required(path: Path, kind: str) -> Path:
    if not path.is_file():
        raise RobustmaskError(
            f"{kind} {path} named in {SUMMARY_NAME} is missing; rerun the command that wrote the folder"
        )
    return path


# ---------------------------------------------------------------------------------------- parts
def _header(summary: Mapping[str, Any]) -> str:
    seed = summary.get("seed")
    rows = [
        ("Kind", summary.get("kind") or "?"),
        ("Created", summary.get("created") or "?"),
        ("Command", summary.get("command") or "(not recorded)"),
        ("Seed", "none" if seed is None else seed),
    ]
    items = "".join(
        f"<dt>{name}</dt><dd>{_code(value) if name == 'Command' else _esc(value)}</dd>"
        for name, value in rows
    )
    return f'<dl class="meta">{items}</dl>'


def _headline(headline: object) -> str:
    """The run's headline numbers: per model and eps, clean accuracy and the worst case, and what it covers."""
    if not isinstance(headline, Mapping):
        return ""
    rows = [row for row in headline.get("rows") or [] if isinstance(row, Mapping)]
    notes = "".join(f"<li>{_esc(note)}</li>" for note in headline.get("notes") or [])
    parts = ['<section class="headline" id="summary"><h2>Summary</h2>']
    if rows:
        examples = f" on {_esc(headline['examples'])} images" if headline.get("examples") else ""
        cells = "".join(
            f"<tr><td>{_esc(row.get('model', ''))}</td><td>{_esc(_epsilon(row.get('epsilon')))}</td>"
            f"<td>{_number(row.get('clean'))}</td><td><strong>{_number(row.get('worst_case'))}</strong></td></tr>"
            for row in rows
        )
        parts += [
            f"<p>Worst case over {_esc(headline.get('covers') or 'the attacks run')}{examples}: an image "
            "counts as robust only if every one of these attacks failed on it.</p>",
            '<div class="scroll"><table class="summary" id="table-headline"><thead><tr><th>Model</th>'
            f"<th>Epsilon ({_esc(headline.get('norm') or 'L-inf')})</th><th>Clean (%)</th>"
            f"<th>Worst case (%)</th></tr></thead><tbody>{cells}</tbody></table></div>",
        ]
    return "".join(parts) + (f"<ul>{notes}</ul>" if notes else "") + "</section>"


def _warnings(warnings: object) -> str:
    items = [
        f"<li><strong>{_esc(check)}</strong>: {_esc(_without_prefix(message, check))}</li>"
        if check
        else f"<li>{_esc(message)}</li>"
        for check, message in _warning_items(warnings)
    ]
    if not items:
        return (
            '<section class="checks quiet" id="warnings"><h2>Sanity checks</h2>'
            "<p>No sanity check fired.</p></section>"
        )
    plural = "s" if len(items) != 1 else ""
    return (
        f'<section class="checks fired" id="warnings"><h2>Sanity checks: {len(items)} warning{plural}</h2>'
        f"<ul>{''.join(items)}</ul></section>"
    )


def _warning_items(warnings: object) -> Iterator[tuple[str, str]]:
    """(check, message) pairs from a list of {"check", "message"} or strings (or a dict of check -> messages)."""
    if isinstance(warnings, Mapping):
        for check, messages in warnings.items():
            for message in messages if isinstance(messages, list) else [messages]:
                yield str(check), str(message)
    elif isinstance(warnings, list):
        for warning in warnings:
            if isinstance(warning, Mapping):
                yield str(warning.get("check") or ""), str(warning.get("message", warning))
            else:
                yield "", str(warning)


def _section(folder: Path, section: Mapping[str, Any]) -> str:
    parts = [f"<section>\n<h2>{_esc(section['heading'])}</h2>"]
    parts += [
        f"<p>{_esc(paragraph.strip())}</p>"
        for paragraph in re.split(r"\n\s*\n", str(section.get("text") or ""))
        if paragraph.strip()
    ]
    parts += [_table(folder, entry) for entry in section.get("tables") or []]
    parts += [_figure(folder, entry) for entry in section.get("figures") or []]
    return "\n".join(parts) + "\n</section>"


def _table(folder: Path, entry: Mapping[str, Any]) -> str:
    import pandas as pd

    path = _required(folder / "tables" / f"{entry['name']}.csv", "table")
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:  # EmptyDataError is a ValueError
        raise RobustmaskError(f"table {path} cannot be read as CSV ({first_line(exc)})") from None
    formatters: dict[Any, Callable[[Any], str]] = {
        column: _epsilon if str(column).lower().startswith("eps") else _number
        for column in frame.columns
        if pd.api.types.is_float_dtype(frame[column])
    }
    table = frame.to_html(
        index=False,
        escape=True,
        border=0,
        na_rep="–",
        formatters=formatters,
        classes="data",
        table_id=f"table-{entry['name']}",
    )
    return f'<figure class="table"><div class="scroll">{table}</div>{_caption(entry)}</figure>'


def _figure(folder: Path, entry: Mapping[str, Any]) -> str:
    path = _required(folder / "figures" / f"{entry['name']}.png", "figure")
    data = path.read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        raise RobustmaskError(f"figure {path} is not a PNG file")
    alt = str(entry.get("caption") or entry["name"])
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return f'<figure class="image"><img src="{uri}" alt="{_esc(alt)}">{_caption(entry)}</figure>'


def _notes(notes: object) -> str:
    items = [notes] if isinstance(notes, str) else list(notes) if isinstance(notes, list) else []
    if not items:
        return ""
    return (
        "<section>\n<h2>Notes</h2><ul>"
        + "".join(f"<li>{_esc(note)}</li>" for note in items)
        + "</ul>\n</section>"
    )


def _rerun(summary: Mapping[str, Any]) -> str:
    command = summary.get("command") or "(the command was not recorded)"
    settings = dict(_flatten(_mapping(summary.get("settings"))))
    versions = {str(package): version for package, version in _mapping(summary.get("versions")).items()}
    return (
        '<section id="rerun">\n<h2>How to rerun</h2>\n'
        f"<pre><code>{_esc(command)}</code></pre>\n"
        f"<h3>Settings</h3>\n{_key_table(settings, 'settings', ('Setting', 'Value'))}\n"
        f"<h3>Versions</h3>\n{_key_table(versions, 'versions', ('Package', 'Version'))}\n"
        "</section>"
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _flatten(settings: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested settings as (dotted.key, value) pairs, in order: {"a": {"b": 1}} gives ("a.b", 1)."""
    for key, value in settings.items():
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _key_table(pairs: Mapping[str, Any], kind: str, headings: tuple[str, str]) -> str:
    if not pairs:
        return f"<p>No {kind} recorded.</p>"
    rows = "".join(
        f"<tr><td>{_esc(key)}</td><td>{_esc(_value(value))}</td></tr>" for key, value in pairs.items()
    )
    head = "".join(f"<th>{heading}</th>" for heading in headings)
    return (
        f'<div class="scroll"><table class="keys {kind}"><thead><tr>{head}</tr>'
        f"</thead><tbody>{rows}</tbody></table></div>"
    )


# ---------------------------------------------------------------------------------------- formatting
def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _code(value: object) -> str:
    return f"<code>{_esc(value)}</code>"


def _caption(entry: Mapping[str, Any]) -> str:
    return f"<figcaption>{_esc(entry['caption'])}</figcaption>" if entry.get("caption") else ""


def _value(value: object) -> str:
    """A setting as a reader writes it: strings bare, everything else as JSON (null, true, [0.1, 0.2])."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _number(value: Any) -> str:
    """2 decimals, or 3 significant digits where that would hide the value (1e-05, 0.00392, 1.5e+07)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    return f"{value:.2f}" if value == 0 or 0.01 <= abs(value) < 1e6 else f"{value:.3g}"


def _epsilon(value: Any) -> str:
    """An epsilon as a reader knows it: "0 (clean)", "8/255", else 0.0042 (the Markdown tables' labels)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or not 0 <= float(value) <= 1:
        return _number(value)
    return eps_label(float(value))


def _without_prefix(message: str, check: str) -> str:
    """The message without a leading "check: " (the name is shown in bold already)."""
    for prefix in (f"{check}: ",):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message
