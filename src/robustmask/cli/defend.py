"""``robustmask defend``: train a defence, then compare it with the undefended model under strong attacks.

Both models run FGSM, PGD-20 and Square, each on every image, and (unless ``--suite none``)
AutoAttack's standard suite as a cascade (Croce & Hein 2020, https://arxiv.org/abs/2003.01690); the
table, the log, summary.json and report.html give one worst case per model and eps over all of them.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustmask._deprecation import add_deprecated_flags
from robustmask.cli.options import add_data_options, add_model_options, eps_value, parse_params

if TYPE_CHECKING:  # pragma: no cover
    import argparse

    import numpy as np
    import pandas as pd

    from robustmask.attacks.base import Attack


class _DefenseHelp(str):
    """The --defense help: every name `robustmask.defenses.available()` holds (plug-ins included),
    read when the help is shown, so building the parser imports no defence (nor TensorFlow)."""

    def __mod__(self, params: Any) -> str:
        from robustmask.defenses import available

        return str.__mod__(str(self).replace("{names}", ", ".join(available())), params)


NAME = "defend"
DEFENSE_HELP = _DefenseHelp("defense name: {names} (default: %(default)s)")

#: The old spelling of --defense: still accepted, with a warning.
_RENAMED_FLAGS = {"--defence": "--defense"}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    defend = commands.add_parser(
        NAME,
        help="train a defence (multi-eps, pgd-at, fast-at, trades) and compare it under FGSM, PGD, Square "
        "and AutoAttack's suite",
        description="Train a defended copy of a model (or, without --model, of robustmask's small face-mask CNN "
        "trained here on the data) and compare both under FGSM, PGD and Square and AutoAttack's standard "
        "suite (APGD-CE, APGD-DLR, Square: 100 iterations, 5,000 queries) at the paper's eps 0.009 and "
        "2/255, 4/255, 8/255, with one worst case per image over every attack. Interrupted, the same "
        "command resumes from the last epoch's checkpoint.",
    )
    defend.add_argument(
        "--defense",
        dest="defense",
        default="pgd-at",
        help=DEFENSE_HELP,
    )
    add_deprecated_flags(defend, _RENAMED_FLAGS)
    add_model_options(
        defend,
        "a .keras, SavedModel or Keras 2 .h5 model to defend (default: train "
        "robustmask.zoo.facemask_cnn from scratch)",
    )
    add_data_options(
        defend,
        500,
        data="training images, one sub-folder per class (default: the embedded synthetic faces); without "
        "--test-data a stratified share of at least 12%% (about 50 images) is held out for testing",
    )
    _add_test_and_stream_options(defend)
    defend.add_argument("--image-size", type=int, default=48, help="image size without --model (default: 48)")
    defend.add_argument("--epochs", type=int, default=30, help="epochs of training (default: 30)")
    defend.add_argument(
        "--eps",
        type=eps_value,
        metavar="EPS",
        help="training budget of pgd-at, fast-at, trades and plug-ins, e.g. 8/255 (default for the "
        "built-ins: 8/255)",
    )
    defend.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="defence parameter, repeatable (e.g. --param steps=10)",
    )
    _add_suite_options(defend)
    defend.add_argument("--no-progress", action="store_true", help="no progress bars")
    defend.add_argument(
        "--out", metavar="DIR", default="runs/defend", help="output folder (default: %(default)s)"
    )
    defend.add_argument(
        "--overwrite", action="store_true", help="replace results already in the output folder"
    )
    defend.add_argument("--seed", type=int, default=0)
    return defend


def _add_test_and_stream_options(defend: argparse.ArgumentParser) -> None:
    defend.add_argument(
        "--test-data",
        metavar="DIR",
        help="a separate folder of test images, the same class folders (default: a share of --data)",
    )
    defend.add_argument(
        "--stream",
        action="store_true",
        help="read --data's training images from disk batch by batch (tf.data) instead of loading them "
        "into memory, for folders larger than memory; the test images (--test-data, or a held-out share "
        "of --data's files) are loaded",
    )


def _add_suite_options(defend: argparse.ArgumentParser) -> None:
    defend.add_argument(
        "--suite",
        choices=("standard", "none"),
        default="standard",
        help="also run AutoAttack's standard suite on both models, in the worst case (default: %(default)s)",
    )
    defend.add_argument(
        "--suite-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="standard_suite parameter, repeatable: apgd_iter (default 100), square_queries (default 5000)",
    )


def run(args: argparse.Namespace) -> int:
    from robustmask._io import refuse_filled_folder, replaced_folder, write_atomically
    from robustmask.cli._data import defend_inputs, load_model
    from robustmask.datasets.streaming import stream_report
    from robustmask.defenses.presets import robust_preset

    out = Path(args.out)
    refuse_filled_folder(out, args.overwrite)
    started = time.perf_counter()
    settings = {"epochs": args.epochs, "seed": args.seed, **parse_params(args.param)}
    if args.eps is not None:
        settings.setdefault("eps", args.eps)
    trainer = robust_preset(args.defense, **settings)  # bad names and parameters fail before any training
    suite_settings = parse_params(args.suite_param, "--suite-param")
    _suite(args.suite, suite_settings, 3)
    model = load_model(args) if args.model else None
    size = int(model.input_shape[1]) if model is not None else args.image_size
    data, names, data_warnings = defend_inputs(args, model, size)
    checkpoints = out.parent / f".{out.name}.checkpoints"  # beside the results: a rerun resumes from it
    print(f"checkpoints in {checkpoints}: the same command resumes after an interruption")
    table, models, warnings = _compare(args, trainer, model, data, checkpoints, suite_settings, len(names))
    warnings = data_warnings + warnings
    summary = {
        "defense": args.defense,
        "trainer": repr(vars(trainer).get("attack")),
        "data": args.data or "synthetic",
        "test_data": args.test_data or "held out from the data",
        "classes": names,
        "image_size": size,
        "train": len(data[0]) if data[2] is not None else stream_report(data[0]).readable,
        "test": len(data[1]),
        "streamed": bool(args.stream),
    }
    settings.update(suite=args.suite, **suite_settings)
    with replaced_folder(out, overwrite=args.overwrite) as folder:
        _write_results(folder, args, table, warnings, settings, summary, started)
        write_atomically(folder / "defended.keras", models[args.defense].save, suffix=".keras")
        if not args.model:
            write_atomically(folder / "undefended.keras", models["undefended"].save, suffix=".keras")
    shutil.rmtree(checkpoints, ignore_errors=True)
    print(
        f"wrote {out}/ (report.html, tables/comparison.csv, figures/, defended.keras, summary.json) in "
        f"{time.perf_counter() - started:.0f} s"
    )
    return 0


def _suite(name: str, settings: dict[str, Any], num_classes: int) -> dict[str, Attack] | None:
    """AutoAttack's standard suite with `settings` (``--suite-param``), or None for ``--suite none``."""
    from robustmask.errors import RobustmaskError
    from robustmask.evaluation.worst_case import standard_suite

    if name == "none":
        return None
    try:
        return standard_suite(num_classes=num_classes, **settings)
    except TypeError as error:
        raise RobustmaskError(f"--suite-param: {error} (it takes apgd_iter and square_queries)") from None


def _compare(
    args: argparse.Namespace,
    trainer: Any,
    model: Any,
    data: tuple[Any, np.ndarray, np.ndarray | None, np.ndarray],
    checkpoints: Path,
    suite_settings: dict[str, Any],
    num_classes: int,
) -> tuple[pd.DataFrame, dict[str, Any], list]:
    """Train, attack both models with every attack, print the table, the headline and the warnings."""
    import warnings as python_warnings

    from robustmask.cli._data import stream_skips_warning
    from robustmask.defenses.comparison import comparison_warnings, markdown_table
    from robustmask.defenses.presets import robust_comparison
    from robustmask.evaluation.headline import headline, headline_lines

    x_train, x_test, y_train, y_test = data
    with python_warnings.catch_warnings():  # a stream's bad files: reported once, after training
        python_warnings.filterwarnings("ignore", message=r"skipped .* while streaming ")
        table, models = robust_comparison(
            x_train,
            x_test,
            y_train,
            y_test,
            [args.defense],
            model=model,
            epochs=args.epochs,
            seed=args.seed,
            defenses={args.defense: trainer},
            fit_kwargs={"checkpoint_dir": checkpoints},
            suite=_suite(args.suite, suite_settings, num_classes),
            progress=not args.no_progress,
        )
    if args.stream:
        stream_skips_warning(x_train)
    warnings = comparison_warnings(table, num_classes) + _below_chance(table, num_classes, len(y_test))
    print(markdown_table(table))
    print("\n".join(headline_lines(headline(table)) + [f"warning: {warning}" for warning in warnings]))
    return table, models, warnings


def _below_chance(table: pd.DataFrame, num_classes: int, examples: int) -> list:
    """``below-chance`` warnings on each model's clean accuracy (labels or class names swapped)."""
    from robustmask.evaluation.sanity import check_below_chance

    found = []
    for model, rows in table.groupby("Defense", sort=False):
        warning = check_below_chance(
            float(rows["Clean (%)"].iloc[0]), num_classes, examples, model=str(model)
        )
        if warning is not None:
            found.append(warning)
    return found


def _write_results(
    folder: Path,
    args: argparse.Namespace,
    table: pd.DataFrame,
    warnings: list,
    settings: dict[str, Any],
    summary: dict[str, Any],
    started: float,
) -> None:
    """The comparison as a results folder (tables, a figure, summary.json, report.html)."""
    import shlex
    import sys

    from robustmask.evaluation.accuracy_section import write_accuracy_section
    from robustmask.evaluation.headline import headline
    from robustmask.evaluation.results import ResultsWriter

    writer = ResultsWriter(
        folder,
        title=f"{args.defense} against the undefended model",
        kind="defend",
        command=shlex.join(["robustmask", *sys.argv[1:]]),
        seed=args.seed,
        settings={
            **settings,
            "defense": args.defense,
            "model": args.model,
            "data": args.data,
            "test_data": args.test_data,
            "class_names": args.class_names,
        },
    )
    covered = headline(table)
    write_accuracy_section(
        writer,
        table,
        heading="Accuracy under every attack",
        name="comparison",
        caption="Accuracy (%) under each attack and the one worst case",
        figure_caption="Accuracy under PGD and the worst case over every attack",
    )
    writer.warn(warnings, "comparison")
    writer.finish({**summary, "headline": covered, "total_s": round(time.perf_counter() - started, 1)})
