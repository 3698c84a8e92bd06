"""One results folder for every command: tables, figures, summary.json and report.html.

`ResultsWriter` is the one place results are written. ``robustmask reproduce``, ``evaluate``,
``defend``, ``scan`` and ``universal`` all fill a folder of the same layout, which `robustmask report`
and `robustmask compare` read back::

    summary.json            title, kind, command, seed, settings, versions, warnings, notes, sections
    tables/NAME.csv         every table, also as NAME.md (Markdown) and NAME.tex (LaTeX)
    figures/NAME.png        every figure
    report.html             one self-contained page (images inlined; opens offline)

Example::

    writer = ResultsWriter(folder, title="FGSM on my model", kind="evaluate", command="robustmask evaluate ...")
    writer.section("Accuracy under attack", "One row per epsilon.")
    writer.table("fgsm", table, "Accuracy and loss under FGSM")
    writer.figure("accuracy", plots.accuracy_and_loss_vs_eps({"FGSM": table}), "Accuracy against eps")
    writer.finish()                                   # summary.json and report.html
"""

from __future__ import annotations

import json
import platform
import re
import sys
import time
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustmask._io import write_text_atomically
from robustmask.errors import RobustmaskError
from robustmask.evaluation.labels import eps_label
from robustmask.evaluation.summary import SUMMARY_NAME

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["ResultsWriter", "markdown_table", "eps_label", "unnamed_norm", "versions", "SUMMARY_NAME"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PACKAGES = (
    "robustmask",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "numpy",
    "pandas",
    "scikit-learn",
    "adversarial-robustness-toolbox",
    "matplotlib",
)


class ResultsWriter:
    """Writes one results folder (the folder must exist; replacing an old one is the caller's job).

    Args:
        folder: where to write.
        title: the report's title.
        kind: what made it: "reproduce", "evaluate", "defend", "scan", "universal", "compare".
        command: the command line that reproduces it.
        seed: the seed of the run, if any.
        settings: every setting needed to rerun it (JSON-serialisable; others are written as str).
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        title: str,
        kind: str,
        command: str | None = None,
        seed: int | None = None,
        settings: Mapping[str, Any] | None = None,
    ):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise RobustmaskError(f"results folder {self.folder} does not exist")
        self.summary: dict[str, Any] = {
            "title": title,
            "kind": kind,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": command or "",
            "seed": seed,
            "settings": dict(settings or {}),
            "versions": versions(),
            "warnings": [],
            "notes": [],
            "sections": [],
        }
        self._names: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ content
    def section(self, heading: str, text: str = "") -> None:
        """Start a section: the tables and figures that follow go under this heading."""
        self.summary["sections"].append({"heading": heading, "text": text, "tables": [], "figures": []})

    def table(self, name: str, table: pd.DataFrame, caption: str) -> Path:
        """Write ``tables/NAME.csv``, ``.md`` and ``.tex`` and list the table in the current section."""
        folder = self._entry("tables", name, caption)
        write_text_atomically(folder / f"{name}.csv", table.to_csv(index=False))
        write_text_atomically(folder / f"{name}.md", markdown_table(table))
        write_text_atomically(
            folder / f"{name}.tex",
            table.to_latex(index=False, float_format="%.4g", caption=caption, label=f"tab:{name}"),
        )
        return folder / f"{name}.csv"

    def figure(self, name: str, figure: Figure, caption: str) -> Path:
        """Write ``figures/NAME.png`` and list the figure in the current section."""
        from robustmask.evaluation.plots import save_figure

        folder = self._entry("figures", name, caption)
        return save_figure(figure, folder / f"{name}.png")

    def warn(self, warnings: Iterable[object], context: str = "") -> None:
        """Record sanity warnings (named checks keep their name); `context` says what they are about."""
        for warning in warnings:
            check = getattr(warning, "check", "")
            message = str(warning)
            if check and message.startswith(f"{check}: "):
                message = message[len(check) + 2 :]
            self.summary["warnings"].append(
                {"check": check, "message": f"{context}: {message}" if context else message}
            )

    def note(self, text: str) -> None:
        self.summary["notes"].append(text)

    # ------------------------------------------------------------------ finishing
    def finish(self, extra: Mapping[str, Any] | None = None, *, report: bool = True) -> Path:
        """Write summary.json (with ``extra`` keys) and report.html; return the report's path (or the summary's)."""
        self.summary.update(extra or {})
        summary = self.folder / SUMMARY_NAME
        write_text_atomically(summary, json.dumps(self.summary, indent=2, default=str))
        if not report:
            return summary
        from robustmask.evaluation.html_report import write_html_report

        return write_html_report(self.folder)

    def _entry(self, kind: str, name: str, caption: str) -> Path:
        if not _NAME.match(name):
            raise RobustmaskError(f"{kind[:-1]} name {name!r}: use letters, digits, '_', '-' and '.' only")
        if (kind, name) in self._names:
            raise RobustmaskError(f"{kind[:-1]} {name!r} is written twice into {self.folder}")
        self._names.add((kind, name))
        if not self.summary["sections"]:
            self.section(self.summary["title"])
        self.summary["sections"][-1][kind].append({"name": name, "caption": caption})
        folder = self.folder / kind
        folder.mkdir(exist_ok=True)
        return folder


def unnamed_norm(table: pd.DataFrame) -> pd.DataFrame:
    """A table whose first column is ``Epsilon (L2)`` (as written to CSV) with ``Epsilon`` back and the
    norm in ``attrs["norm"]``: the inverse of `robustmask.evaluation.named_norm`."""
    first = str(table.columns[0])
    match = re.fullmatch(r"Epsilon \((.+)\)", first)
    if match is None:
        return table
    out = table.rename(columns={first: "Epsilon"})
    out.attrs["norm"] = match.group(1)
    return out


def markdown_table(table: pd.DataFrame, *, percent_digits: int = 2) -> str:
    """A DataFrame as a Markdown table: epsilons labelled, percentages and seconds with `percent_digits`
    decimals, other numbers (losses) with 4 significant digits, missing values as an empty cell."""
    columns = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table.itertuples(index=False):
        cells = (_cell(column, value, percent_digits) for column, value in zip(columns, row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(column: str, value: object, percent_digits: int) -> str:
    if isinstance(value, float) and value != value:
        return ""
    if column.startswith("Epsilon") and isinstance(value, (int, float)):
        return eps_label(float(value))
    if isinstance(value, float):
        return f"{value:.{percent_digits}f}" if "%" in column or "(s)" in column else f"{value:.4g}"
    return str(value)


def versions() -> dict[str, str]:
    """Python, platform and the versions of the packages a result depends on."""
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for package in _PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found
