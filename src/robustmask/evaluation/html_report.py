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
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from robustmask._io import write_text_atomically
from robustmask.errors import RobustmaskError, first_line
import robustmask.evaluation._html_parts as parts
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
        f"<h1>{parts.esc(title)}</h1>",
        parts.header(summary),
        parts.headline(summary.get("headline")),
        parts.warnings(summary.get("warnings")),
        *(_section(folder, section) for section in summary["sections"]),
        parts.notes(summary.get("notes")),
        parts.rerun(summary),
        # not the folder's name: commands write into a staging folder that is renamed when complete
        f"<footer>Written by robustmask from the {SUMMARY_NAME} beside this page.</footer>",
    ]
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{parts.esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
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


def _section(folder: Path, section: Mapping[str, Any]) -> str:
    lines = [f"<section>\n<h2>{parts.esc(section['heading'])}</h2>"]
    lines += [
        f"<p>{parts.esc(paragraph.strip())}</p>"
        for paragraph in re.split(r"\n\s*\n", str(section.get("text") or ""))
        if paragraph.strip()
    ]
    lines += [_table(folder, entry) for entry in section.get("tables") or []]
    lines += [_figure(folder, entry) for entry in section.get("figures") or []]
    return "\n".join(lines) + "\n</section>"


def _table(folder: Path, entry: Mapping[str, Any]) -> str:
    import pandas as pd

    path = _required(folder / "tables" / f"{entry['name']}.csv", "table")
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:  # EmptyDataError is a ValueError
        raise RobustmaskError(f"table {path} cannot be read as CSV ({first_line(exc)})") from None
    formatters: dict[Any, Callable[[Any], str]] = {
        column: parts.epsilon if str(column).lower().startswith("eps") else parts.number
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
    return f'<figure class="table"><div class="scroll">{table}</div>{parts.caption(entry)}</figure>'


def _figure(folder: Path, entry: Mapping[str, Any]) -> str:
    path = _required(folder / "figures" / f"{entry['name']}.png", "figure")
    data = path.read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        raise RobustmaskError(f"figure {path} is not a PNG file")
    alt = str(entry.get("caption") or entry["name"])
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return f'<figure class="image"><img src="{uri}" alt="{parts.esc(alt)}">{parts.caption(entry)}</figure>'
