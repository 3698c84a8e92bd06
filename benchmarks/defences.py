"""Every defence against the undefended model, under FGSM, PGD and Square: the table in docs/defences.md.

One command, rerunnable; it rewrites the table between the markers in docs/defences.md:

    python benchmarks/defences.py                       # robust preset: 48 px, 500 faces a class, 30 epochs
    python benchmarks/defences.py --epochs 3 --n-per-class 60 --no-write   # a smoke run
    python benchmarks/defences.py --defences distillation --append         # add one defence's rows

Data: the embedded synthetic faces (or --data, the Kaggle folder), split 88/12 with a fixed seed.
Model: robustmask.zoo.facemask_cnn trained from scratch (the undefended model), then each defence
trained from it. Attacks: FGSM, PGD-20 with a random start and 3 restarts (seeded), Square (1,000 iterations); the
worst case counts an image robust only if it resists all three.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from robustmask.defenses.comparison import markdown_table
from robustmask.defenses.presets import DEFENCE_NAMES, robust_comparison, robust_data
from robustmask.evaluation import standard_attacks

DOC = Path(__file__).resolve().parents[1] / "docs" / "defences.md"
BEGIN, END = "<!-- defences table: begin -->", "<!-- defences table: end -->"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="Kaggle folder (default: synthetic faces)")
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--n-per-class", type=int, default=500)
    parser.add_argument(
        "--epochs", type=int, default=30, help="epochs of every training, undefended included"
    )
    parser.add_argument("--defences", nargs="*", default=list(DEFENCE_NAMES))
    parser.add_argument("--pgd-restarts", type=int, default=3)
    parser.add_argument("--square-queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-write", action="store_true", help="print the table, leave docs/defences.md alone"
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="keep the documented rows of other defences (and of the undefended model): "
        "replace or add only the rows of --defences",
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    x_train, x_test, y_train, y_test = robust_data(
        args.data, image_size=args.image_size, n_per_class=args.n_per_class, seed=args.seed
    )
    print(f"data: {len(x_train)} train / {len(x_test)} test images at {args.image_size} px")
    attacks = standard_attacks(pgd_restarts=args.pgd_restarts, square_queries=args.square_queries)
    table, _ = robust_comparison(
        x_train, x_test, y_train, y_test, args.defences, epochs=args.epochs, seed=args.seed, attacks=attacks
    )
    text = markdown_table(table)
    command = "python benchmarks/defences.py " + " ".join(argv if argv is not None else sys.argv[1:])
    footer = (
        f"\n`{command.strip()}`: {len(x_train)} train / {len(x_test)} test images, {args.image_size} px, "
        f"{args.epochs} epochs, {time.perf_counter() - started:.0f} s in all on this machine.\n"
    )
    print(text + footer)
    if args.append:  # the kept rows keep the commands that measured them
        documented = documented_table()
        kept_footers = "".join(
            f"\n{line}\n" for line in documented.splitlines() if line.startswith("`python ")
        )
        text, footer = merge_rows(documented, text, args.defences), kept_footers + footer
    if not args.no_write:
        write_table(text + footer)
    return 0


def documented_table() -> str:
    document = DOC.read_text(encoding="utf-8")
    if BEGIN not in document or END not in document:
        raise SystemExit(f"{DOC} has no '{BEGIN}' ... '{END}' markers to write between")
    return document.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


def merge_rows(documented: str, measured: str, names) -> str:
    """The documented table with the rows of `names` replaced by (or added from) the measured ones.

    The undefended rows stay as documented unless the table has none: the same seed and settings
    train the same undefended model, so they are the baseline the new rows are compared with.
    """
    old = [line for line in documented.splitlines() if line.startswith("|")]
    new = [line for line in measured.splitlines() if line.startswith("|")]
    if not old or old[0] != new[0]:
        raise SystemExit("the documented table has other columns: rerun every defence without --append")

    def defence(row: str) -> str:
        return row.split("|")[1].strip()

    def scores(rows):  # the accuracy cells (after Defence and Train time) of the undefended rows
        return [row.split("|")[3:] for row in rows if defence(row) == "undefended"]

    has_undefended = any(defence(row) == "undefended" for row in old[2:])
    if has_undefended and scores(old[2:]) != scores(new[2:]):
        print(
            "note: this run's undefended model scores differently from the documented one; the table keeps "
            "the documented baseline (rerun without --append to refresh every row)"
        )
    kept = [row for row in old[2:] if defence(row) not in names]
    added = [
        row
        for row in new[2:]
        if defence(row) in names or (defence(row) == "undefended" and not has_undefended)
    ]
    return "\n".join(old[:2] + kept + added) + "\n"


def write_table(text: str) -> None:
    document = DOC.read_text(encoding="utf-8")
    updated = re.sub(
        re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: f"{BEGIN}\n{text}{END}", document, flags=re.S
    )
    DOC.write_text(updated, encoding="utf-8")
    print(f"wrote the table into {DOC}")


if __name__ == "__main__":
    sys.exit(main())
