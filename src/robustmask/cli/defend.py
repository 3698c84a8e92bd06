"""``robustmask defend``: train a defence, then compare it with the undefended model under strong attacks."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustmask.cli.commands import add_model_options


if TYPE_CHECKING:  # pragma: no cover
    import argparse

    import pandas as pd

DEFENCES = ("multi-eps", "fast-at", "pgd-at", "trades", "distillation")
TRAINED_AGAINST_EPS = ("fast-at", "pgd-at", "trades")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defend = commands.add_parser(
        "defend",
        help="train a defence (multi-eps, pgd-at, fast-at, trades) and compare it under FGSM, PGD, Square",
        description="Train a defended copy of a model (or, without --model, of robustmask's small face-mask CNN "
        "trained here on the data) and compare both under FGSM, PGD with restarts and Square at the "
        "paper's eps 0.009 and 2/255, 4/255, 8/255. Interrupted, the same command resumes from the last "
        "epoch's checkpoint.",
    )
    defend.add_argument(
        "--defense",
        "--defence",
        dest="defense",
        default="pgd-at",
        help=f"defence name: {', '.join(DEFENCES)} or a plug-in (default: %(default)s)",
    )
    defend.add_argument(
        "--model",
        metavar="PATH",
        help="a .keras, SavedModel or Keras 2 .h5 model to defend (default: train "
        "robustmask.zoo.facemask_cnn from scratch)",
    )
    add_model_options(defend)
    defend.add_argument(
        "--data", metavar="PATH", help="Kaggle face-mask folder (default: the embedded synthetic faces)"
    )
    defend.add_argument("--image-size", type=int, default=48, help="image size without --model (default: 48)")
    defend.add_argument(
        "--n-per-class", type=int, default=500, help="synthetic images per class (default: 500)"
    )
    defend.add_argument("--epochs", type=int, default=30, help="epochs of training (default: 30)")
    defend.add_argument(
        "--eps",
        type=float,
        help="training budget of pgd-at, fast-at, trades and plug-ins (default for the built-ins: 8/255)",
    )
    defend.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="defence parameter, repeatable (e.g. --param steps=10)",
    )
    defend.add_argument(
        "--out", metavar="DIR", default="runs/defend", help="output folder (default: %(default)s)"
    )
    defend.add_argument(
        "--overwrite", action="store_true", help="replace results already in the output folder"
    )
    defend.add_argument("--seed", type=int, default=0)


def defend(args: argparse.Namespace) -> int:
    from robustmask._io import refuse_filled_folder, replaced_folder, write_atomically
    from robustmask.cli.commands import _params, load_model
    from robustmask.defenses.comparison import markdown_table
    from robustmask.defenses.presets import robust_comparison, robust_data, robust_preset

    out = Path(args.out)
    refuse_filled_folder(out, args.overwrite)
    started = time.perf_counter()
    settings = {"epochs": args.epochs, "seed": args.seed, **_params(args.param)}
    if args.eps is not None:
        settings.setdefault("eps", args.eps)
    trainer = robust_preset(args.defense, **settings)  # bad names and parameters fail before any training
    model = load_model(args) if args.model else None
    size = int(model.input_shape[1]) if model is not None else args.image_size
    x_train, x_test, y_train, y_test = robust_data(
        args.data, image_size=size, n_per_class=args.n_per_class, seed=args.seed
    )
    print(f"data: {len(x_train)} train / {len(x_test)} test images at {size} px")
    checkpoints = out.parent / f".{out.name}.checkpoints"  # beside the results: a rerun resumes from it
    print(f"checkpoints in {checkpoints}: the same command resumes after an interruption")
    table, models = robust_comparison(
        x_train,
        x_test,
        y_train,
        y_test,
        [args.defense],
        model=model,
        epochs=args.epochs,
        seed=args.seed,
        defences={args.defense: trainer},
        fit_kwargs={"checkpoint_dir": checkpoints},
    )
    print(markdown_table(table))
    summary = {
        "defence": args.defense,
        "trainer": repr(vars(trainer).get("attack")),
        "data": args.data or "synthetic",
        "image_size": size,
        "train": len(x_train),
        "test": len(x_test),
    }
    with replaced_folder(out, overwrite=args.overwrite) as folder:
        _write_results(folder, args, table, settings, summary, started)
        write_atomically(folder / "defended.keras", models[args.defense].save, suffix=".keras")
        if not args.model:
            write_atomically(folder / "undefended.keras", models["undefended"].save, suffix=".keras")
    shutil.rmtree(checkpoints, ignore_errors=True)
    print(
        f"wrote {out}/ (report.html, tables/comparison.csv, figures/, defended.keras, summary.json) in "
        f"{time.perf_counter() - started:.0f} s"
    )
    return 0


def _write_results(
    folder: Path,
    args: argparse.Namespace,
    table: pd.DataFrame,
    settings: dict[str, Any],
    summary: dict[str, Any],
    started: float,
) -> None:
    """The comparison as a results folder (tables, a figure, summary.json, report.html)."""
    import shlex
    import sys

    from robustmask.evaluation import plots
    from robustmask.evaluation.results import ResultsWriter

    writer = ResultsWriter(
        folder,
        title=f"{args.defense} against the undefended model",
        kind="defend",
        command=shlex.join(["robustmask", *sys.argv[1:]]),
        seed=args.seed,
        settings={**settings, "defense": args.defense, "model": args.model, "data": args.data},
    )
    writer.section(
        "Accuracy under FGSM, PGD and Square",
        (
            "Per model and eps: clean accuracy, accuracy under each attack, and the worst case per image over the "
            "three. A robustness claim holds only under PGD and the gradient-free Square."
        ),
    )
    writer.table("comparison", table, "Accuracy (%) under each attack and the worst case")
    curves = {
        f"{name}, {column[:-4]}": rows[["Epsilon", column]].rename(columns={column: "Accuracy (%)"})
        for name, rows in table.groupby("Defence", sort=False)
        for column in ("PGD (%)", "Worst case (%)")
    }
    writer.figure(
        "accuracy_vs_eps", plots.accuracy_and_loss_vs_eps(curves), "Accuracy under PGD and the worst case"
    )
    writer.finish({**summary, "total_s": round(time.perf_counter() - started, 1)})
