"""The parts of report.html (`robustmask.evaluation.html_report`) drawn from summary.json alone, and
the escaping and number formats every part uses: the header, the headline, the sanity checks, the
notes and the "how to rerun" section. Every text from the folder goes through `esc`.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from robustmask.evaluation.labels import eps_label


# ---------------------------------------------------------------------------------------- parts
def header(summary: Mapping[str, Any]) -> str:
    seed = summary.get("seed")
    rows = [
        ("Kind", summary.get("kind") or "?"),
        ("Created", summary.get("created") or "?"),
        ("Command", summary.get("command") or "(not recorded)"),
        ("Seed", "none" if seed is None else seed),
    ]
    items = "".join(
        f"<dt>{name}</dt><dd>{code(value) if name == 'Command' else esc(value)}</dd>" for name, value in rows
    )
    return f'<dl class="meta">{items}</dl>'


def headline(headline: object) -> str:
    """The run's headline numbers: per model and eps, clean accuracy and the worst case, and what it covers."""
    if not isinstance(headline, Mapping):
        return ""
    rows = [row for row in headline.get("rows") or [] if isinstance(row, Mapping)]
    notes = "".join(f"<li>{esc(note)}</li>" for note in headline.get("notes") or [])
    parts = ['<section class="headline" id="summary"><h2>Summary</h2>']
    if rows:
        examples = f" on {esc(headline['examples'])} images" if headline.get("examples") else ""
        cells = "".join(
            f"<tr><td>{esc(row.get('model', ''))}</td><td>{esc(epsilon(row.get('epsilon')))}</td>"
            f"<td>{number(row.get('clean'))}</td><td><strong>{number(row.get('worst_case'))}</strong></td></tr>"
            for row in rows
        )
        parts += [
            f"<p>Worst case over {esc(headline.get('covers') or 'the attacks run')}{examples}: an image "
            "counts as robust only if every one of these attacks failed on it.</p>",
            '<div class="scroll"><table class="summary" id="table-headline"><thead><tr><th>Model</th>'
            f"<th>Epsilon ({esc(headline.get('norm') or 'L-inf')})</th><th>Clean (%)</th>"
            f"<th>Worst case (%)</th></tr></thead><tbody>{cells}</tbody></table></div>",
        ]
    return "".join(parts) + (f"<ul>{notes}</ul>" if notes else "") + "</section>"


def warnings(warnings: object) -> str:
    items = [
        f"<li><strong>{esc(check)}</strong>: {esc(without_prefix(message, check))}</li>"
        if check
        else f"<li>{esc(message)}</li>"
        for check, message in warning_items(warnings)
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


def warning_items(warnings: object) -> Iterator[tuple[str, str]]:
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


def notes(notes: object) -> str:
    items = [notes] if isinstance(notes, str) else list(notes) if isinstance(notes, list) else []
    if not items:
        return ""
    return (
        "<section>\n<h2>Notes</h2><ul>"
        + "".join(f"<li>{esc(note)}</li>" for note in items)
        + "</ul>\n</section>"
    )


def rerun(summary: Mapping[str, Any]) -> str:
    command = summary.get("command") or "(the command was not recorded)"
    settings = dict(flatten(mapping(summary.get("settings"))))
    versions = {str(package): version for package, version in mapping(summary.get("versions")).items()}
    return (
        '<section id="rerun">\n<h2>How to rerun</h2>\n'
        f"<pre><code>{esc(command)}</code></pre>\n"
        f"<h3>Settings</h3>\n{key_table(settings, 'settings', ('Setting', 'Value'))}\n"
        f"<h3>Versions</h3>\n{key_table(versions, 'versions', ('Package', 'Version'))}\n"
        "</section>"
    )


def mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def flatten(settings: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested settings as (dotted.key, value) pairs, in order: {"a": {"b": 1}} gives ("a.b", 1)."""
    for key, value in settings.items():
        if isinstance(value, Mapping) and value:
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def key_table(pairs: Mapping[str, Any], kind: str, headings: tuple[str, str]) -> str:
    if not pairs:
        return f"<p>No {kind} recorded.</p>"
    rows = "".join(
        f"<tr><td>{esc(key)}</td><td>{esc(setting_text(value))}</td></tr>" for key, value in pairs.items()
    )
    head = "".join(f"<th>{heading}</th>" for heading in headings)
    return (
        f'<div class="scroll"><table class="keys {kind}"><thead><tr>{head}</tr>'
        f"</thead><tbody>{rows}</tbody></table></div>"
    )


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def code(value: object) -> str:
    return f"<code>{esc(value)}</code>"


def caption(entry: Mapping[str, Any]) -> str:
    return f"<figcaption>{esc(entry['caption'])}</figcaption>" if entry.get("caption") else ""


def setting_text(value: object) -> str:
    """A setting as a reader writes it: strings bare, everything else as JSON (null, true, [0.1, 0.2])."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def number(value: Any) -> str:
    """2 decimals, or 3 significant digits where that would hide the value (1e-05, 0.00392, 1.5e+07)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    return f"{value:.2f}" if value == 0 or 0.01 <= abs(value) < 1e6 else f"{value:.3g}"


def epsilon(value: Any) -> str:
    """An epsilon as a reader knows it: "0 (clean)", "8/255", else 0.0042 (the Markdown tables' labels)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or not 0 <= float(value) <= 1:
        return number(value)
    return eps_label(float(value))


def without_prefix(message: str, check: str) -> str:
    """The message without a leading "check: " (the name is shown in bold already)."""
    for prefix in (f"{check}: ",):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message
