"""Every defence against the undefended model, under FGSM, PGD and Square: the table in docs/defences.md.

One command, rerunnable; it rewrites the table between the markers in docs/defences.md:

    python benchmarks/defences.py                       # robust preset: 48 px, 500 faces a class, 30 epochs
    python benchmarks/defences.py --epochs 3 --n-per-class 60 --no-write   # a smoke run

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
    parser.add_argument("--epochs", type=int, default=30, help="epochs of every training, undefended included")
    parser.add_argument("--defences", nargs="*", default=list(DEFENCE_NAMES))
    parser.add_argument("--pgd-restarts", type=int, default=3)
    parser.add_argument("--square-queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print the table, leave docs/defences.md alone")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    x_train, x_test, y_train, y_test = robust_data(args.data, image_size=args.image_size,
                                                   n_per_class=args.n_per_class, seed=args.seed)
    print(f"data: {len(x_train)} train / {len(x_test)} test images at {args.image_size} px")
    attacks = standard_attacks(pgd_restarts=args.pgd_restarts, square_queries=args.square_queries)
    table, _ = robust_comparison(x_train, x_test, y_train, y_test, args.defences, epochs=args.epochs,
                                 seed=args.seed, attacks=attacks)
    text = markdown_table(table)
    command = "python benchmarks/defences.py " + " ".join(argv if argv is not None else sys.argv[1:])
    footer = (f"\n`{command.strip()}`: {len(x_train)} train / {len(x_test)} test images, {args.image_size} px, "
              f"{args.epochs} epochs, {time.perf_counter() - started:.0f} s in all on this machine.\n")
    print(text + footer)
    if not args.no_write:
        write_table(text + footer)
    return 0


def write_table(text: str) -> None:
    document = DOC.read_text(encoding="utf-8")
    if BEGIN not in document or END not in document:
        raise SystemExit(f"{DOC} has no '{BEGIN}' ... '{END}' markers to write between")
    updated = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: f"{BEGIN}\n{text}{END}", document,
                     flags=re.S)
    DOC.write_text(updated, encoding="utf-8")
    print(f"wrote the table into {DOC}")


if __name__ == "__main__":
    sys.exit(main())
