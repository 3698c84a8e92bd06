"""``robustmask report``: (re)write the report.html of a results folder."""

from __future__ import annotations

import argparse

NAME = "report"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    report = commands.add_parser(
        NAME,
        help="write report.html of a results folder",
        description="(Re)write the self-contained report.html of a results folder made by "
        "reproduce, evaluate --out, defend or compare.",
    )
    report.add_argument("folder", metavar="RESULTS_DIR")
    return report


def run(args: argparse.Namespace) -> int:
    from robustmask.evaluation.html_report import write_html_report

    print(f"wrote {write_html_report(args.folder)}")
    return 0
