"""What AutoAttack's cascade saves: the standard suite against its strongest single attack, in one run.

A model is attacked by the standard suite (APGD-CE, APGD-DLR, Square) two ways: each attack alone
on every clean-correct test image (``protocol="individual"``), and as a cascade in which each attack
runs only on the images still robust (``protocol="cascade"``). The target (issue 8): the cascade
costs at most 1.5x the slowest single attack. Two models: the quick preset's undefended one
(MobileNetV2 at 96 px on the embedded synthetic faces, trained as ``robustmask reproduce`` trains
it; APGD-CE fools it all, so the cascade costs what APGD-CE costs), and the shipped
``zoo.robust_mobilenetv2()`` on the first faces of its card's test set (the later attacks get the
images APGD-CE could not fool). It prints a Markdown table and, with --write, puts it between the
model's markers in docs/evaluation.md.

    python benchmarks/suite_cost.py                 # about 10 minutes on 2 cores
    python benchmarks/suite_cost.py --write         # and record it in docs/evaluation.md
    python benchmarks/suite_cost.py --model robust-mobilenetv2 --test-faces 64 --write
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from _doc_markers import write_between  # noqa: E402

from robustmask import reproduce  # noqa: E402
from robustmask.evaluation.results import eps_label, markdown_table  # noqa: E402
from robustmask.evaluation.worst_case import robustness_table, standard_suite  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "evaluation.md"
MARKERS = {  # the model's block in docs/evaluation.md
    "quick-preset": ("<!-- suite cost: begin -->", "<!-- suite cost: end -->"),
    "robust-mobilenetv2": ("<!-- suite cost robust: begin -->", "<!-- suite cost robust: end -->"),
}
TARGET = 1.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eps", type=float, nargs="*", default=[8 / 255], help="budgets (default: 8/255)")
    parser.add_argument("--apgd-iter", type=int, default=100, help="APGD iterations (AutoAttack: 100)")
    parser.add_argument(
        "--square-queries", type=int, default=1000, help="Square iterations (AutoAttack: 5000)"
    )
    parser.add_argument("--model", choices=sorted(MARKERS), default="quick-preset", help="the model attacked")
    parser.add_argument("--test-faces", type=int, default=None, help="the first N test faces (default: all)")
    parser.add_argument("--write", action="store_true", help="record the table in docs/evaluation.md")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    model, x_test, y_test = quick_preset_model() if args.model == "quick-preset" else robust_model()
    x_test, y_test = x_test[: args.test_faces], y_test[: args.test_faces]
    print(f"model {args.model}: {len(x_test)} test images at {x_test.shape[1]} px")
    rows, seconds = [], {}
    for protocol in ("individual", "cascade"):
        keras.utils.set_random_seed(0)  # APGD's start and Square draw from NumPy's generator
        suite = standard_suite(num_classes=3, apgd_iter=args.apgd_iter, square_queries=args.square_queries)
        table = robustness_table(model, (x_test, y_test), suite, args.eps, protocol=protocol)
        seconds[protocol] = table.attrs["seconds"]
        for _, row in table.iterrows():
            rows.append(
                {
                    "Protocol": protocol,
                    "Epsilon": row["Epsilon"],
                    **{column: row[column] for column in table.columns[1:]},
                    **{f"{name} (s)": round(s, 1) for name, s in table.attrs["seconds"].items()},
                }
            )
        print(f"{protocol}: {table.attrs['seconds']}")
    slowest = max(seconds["individual"], key=seconds["individual"].get)
    cascade, single = sum(seconds["cascade"].values()), seconds["individual"][slowest]
    ratio = cascade / single
    verdict = "met" if ratio <= TARGET else "missed"
    each = ", ".join(f"{cascade / s:.2f}x {name}" for name, s in seconds["individual"].items())
    text = (
        markdown_table(_frame(rows), percent_digits=1) + "\n"
        f"The cascade took {cascade:.1f} s, the slowest single attack ({slowest}, alone on every clean-correct "
        f"image) {single:.1f} s: **{ratio:.2f}x** (target at most {TARGET}x: {verdict}); against each attack "
        f"alone: {each}.\n\n"
        f"`python benchmarks/suite_cost.py {' '.join(argv if argv is not None else sys.argv[1:])}` "
        f"(model {args.model}, {len(x_test)} test faces, eps {', '.join(eps_label(e) for e in args.eps)}, APGD "
        f"{args.apgd_iter} iterations, Square {args.square_queries} queries): {time.perf_counter() - started:.0f} s "
        f"in all on {platform.machine()}, {os.cpu_count()} CPU cores, Python {sys.version.split()[0]}.\n"
    )
    print(text)
    if args.write:
        write_between(DOC, *MARKERS[args.model], text)
        print(f"wrote the table into {DOC}")
    return 0


def quick_preset_model():
    """The undefended model of ``robustmask reproduce``'s quick preset, and its test split."""
    config = reproduce.StudyConfig.quick()
    keras.utils.set_random_seed(config.seed)
    with tempfile.TemporaryDirectory() as folder:
        weights = reproduce.resolve_weights(config.weights, Path(folder))
        data = reproduce._load_data(config, log=print)
        model = reproduce._build_model(config, len(data.class_names), weights)
    reproduce._train_undefended(model, data, config, progress=False, log=print)
    return model, data.x_test, data.y_test


def robust_model():
    """The shipped robust MobileNetV2 and its card's 300 test faces (seed 1, never trained on)."""
    from robustmask.datasets import synthetic_face_masks
    from robustmask.zoo import robust_mobilenetv2

    x_test, y_test = synthetic_face_masks(n_per_class=100, image_size=96, seed=1)
    return robust_mobilenetv2(), x_test, y_test


def _frame(rows):
    import pandas as pd

    return pd.DataFrame(rows)


if __name__ == "__main__":
    sys.exit(main())
