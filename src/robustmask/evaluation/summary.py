"""summary.json, the index of a results folder: its name and its one reader.

`ResultsWriter` writes it; report.html (`html_report`) and `robustmask compare` read it through
`read_summary`, so a malformed file gives the same one-line error everywhere.

Example::

    from robustmask.evaluation.summary import read_summary
    summary = read_summary(Path("runs/reproduce"))
    print(summary["title"], [section["heading"] for section in summary["sections"]])
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from robustmask.errors import RobustmaskError, first_line

__all__ = ["SUMMARY_NAME", "read_summary"]

SUMMARY_NAME = "summary.json"
#: A table or figure name: it becomes a file name under tables/ or figures/.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # the names ResultsWriter accepts: no path separators


def read_summary(folder: Path) -> dict[str, Any]:
    """summary.json as a dict, its sections checked; a one-line RobustmaskError where it cannot be used."""
    path = Path(folder) / SUMMARY_NAME
    if not path.is_file():
        raise RobustmaskError(f"{folder} is not a results folder: it has no {SUMMARY_NAME}")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RobustmaskError(f"{path} cannot be read as JSON ({first_line(exc)})") from None
    if not isinstance(summary, dict):
        raise RobustmaskError(f"{path} holds a JSON {type(summary).__name__}, not an object")
    sections = summary.setdefault("sections", [])
    if not isinstance(sections, list) or not all(isinstance(s, dict) and "heading" in s for s in sections):
        raise RobustmaskError(f"{path}: 'sections' must be a list of objects, each with a 'heading'")
    for section in sections:
        for kind in ("tables", "figures"):
            entries = section.get(kind) or []
            if not isinstance(entries, list) or not all(_named(entry) for entry in entries):
                raise RobustmaskError(
                    f"{path}: section {str(section['heading'])!r} has a malformed {kind!r} "
                    "list (each entry needs a 'name' of letters, digits, '_', '-', '.')"
                )
    return summary


def _named(entry: object) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("name"), str) and bool(_NAME.match(entry["name"]))
