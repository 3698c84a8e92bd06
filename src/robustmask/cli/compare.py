"""``robustmask compare``: two results folders side by side (tables, figure, report.html)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustmask.errors import RobustmaskError
from robustmask.evaluation.summary import read_summary

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

NAME = "compare"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    compare = commands.add_parser(
        NAME,
        help="two results folders side by side (tables, figure, report.html)",
        description="Put the tables two runs share side by side, plot their accuracy "
        "against eps together, list the settings that differ, and write it "
        "all as a results folder with report.html.",
    )
    compare.add_argument("run_a", metavar="RUN_A")
    compare.add_argument("run_b", metavar="RUN_B")
    compare.add_argument(
        "--out", metavar="DIR", default="runs/compare", help="output folder (default: %(default)s)"
    )
    compare.add_argument(
        "--overwrite", action="store_true", help="replace results already in the output folder"
    )
    return compare


def run(args: argparse.Namespace) -> int:
    from robustmask._io import refuse_filled_folder, replaced_folder
    from robustmask.evaluation import plots
    from robustmask.evaluation.results import ResultsWriter, unnamed_norm

    runs = {_label(args.run_a): Path(args.run_a), _label(args.run_b): Path(args.run_b)}
    if len(runs) < 2:
        runs = {f"A: {args.run_a}": Path(args.run_a), f"B: {args.run_b}": Path(args.run_b)}
    summaries = {label: read_summary(folder) for label, folder in runs.items()}
    out = Path(args.out)
    refuse_filled_folder(out, args.overwrite)
    shared = _shared_tables(summaries)
    if not shared:
        raise RobustmaskError(f"{args.run_a} and {args.run_b} have no table in common: nothing to compare")
    (label_a, a), (label_b, b) = summaries.items()
    with replaced_folder(out, overwrite=args.overwrite) as folder:
        writer = ResultsWriter(
            folder,
            title=f"{label_a} against {label_b}",
            kind="compare",
            command=shlex.join(["robustmask", *sys.argv[1:]]),
            settings={"run_a": str(runs[label_a]), "run_b": str(runs[label_b])},
        )
        writer.section("Settings that differ", _settings_text(a.get("settings", {}), b.get("settings", {})))
        for name, caption in shared.items():
            tables = {label: _read_table(runs[label], name) for label in runs}
            writer.section(caption)
            writer.table(name, side_by_side(tables), f"{caption}: {label_a} | {label_b}")
            if all("Accuracy (%)" in table.columns for table in tables.values()):
                curves = {label: unnamed_norm(table) for label, table in tables.items()}
                writer.figure(
                    f"{name}_accuracy", plots.accuracy_and_loss_vs_eps(curves), f"{caption}, both runs"
                )
        for label, summary in summaries.items():
            writer.warn(
                f"{label}: {w['message'] if isinstance(w, dict) else w}" for w in summary.get("warnings", [])
            )
        path = writer.finish()
    print(f"compared {len(shared)} table(s); wrote {path}")
    return 0


def side_by_side(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Tables of two runs joined row by row, each measured column once per run.

    Rows are matched on their label columns: the first column (the epsilons of a sweep), then each
    next text column both tables share (universal's Attack, then Set) until a label names one row.
    Rows whose labels still repeat are matched in order, so a repeated label never multiplies rows.
    """
    (label_a, a), (label_b, b) = tables.items()
    key = a.columns[0]
    if b.columns[0] != key:
        raise RobustmaskError(
            f"the two runs' tables start with different columns ({key!r}, {b.columns[0]!r})"
        )
    keys = _row_labels(a, b)
    a, b = (t.assign(**{_OCCURRENCE: t.groupby(keys, dropna=False).cumcount()}) for t in (a, b))
    merged = a.merge(
        b, on=[*keys, _OCCURRENCE], how="outer", suffixes=(f" [{label_a}]", f" [{label_b}]"), sort=True
    )
    return merged.drop(columns=_OCCURRENCE)


_OCCURRENCE = "__occurrence__"  # the n-th row with the same labels, so repeats pair up in order


def _row_labels(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """The first column, then each next shared text column, until the labels name one row in both."""
    keys = [str(a.columns[0])]
    for column in a.columns[1:]:
        unique = not (a.duplicated(keys).any() or b.duplicated(keys).any())
        if unique or column not in b.columns or a[column].dtype.kind in "biufc":
            break  # a number is a measurement, not a label
        keys.append(str(column))
    return keys


def _label(folder: str) -> str:
    return Path(folder).resolve().name


def _shared_tables(summaries: dict[str, dict[str, Any]]) -> dict[str, str]:
    listed = [
        {
            table["name"]: table["caption"]
            for section in summary.get("sections", [])
            for table in section.get("tables", [])
        }
        for summary in summaries.values()
    ]
    return {name: caption for name, caption in listed[0].items() if name in listed[1]}


def _read_table(folder: Path, name: str) -> pd.DataFrame:
    import pandas as pd

    path = folder / "tables" / f"{name}.csv"
    if not path.is_file():
        raise RobustmaskError(f"{path} is missing: the results folder is incomplete")
    return pd.read_csv(path)


def _settings_text(a: dict[str, Any], b: dict[str, Any]) -> str:
    differ = [
        f"{key}: {a.get(key, '(unset)')} | {b.get(key, '(unset)')}"
        for key in sorted({*a, *b})
        if a.get(key) != b.get(key)
    ]
    return "\n\n".join(differ) if differ else "The two runs have the same settings."
