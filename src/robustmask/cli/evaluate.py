"""``robustmask evaluate``: Table 4/5 of a saved model under one attack, or the standard suite's worst case.

The worst case it prints and writes (the headline of report.html) is over every attack it ran: the
one attack, or each attack of AutoAttack's suite (Croce & Hein 2020, https://arxiv.org/abs/2003.01690).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import TYPE_CHECKING, Any

from robustmask.cli.options import add_model_and_data_options, eps_value, parse_params
from robustmask.cli.shards import SUITE_CHUNK, add_shard_arguments, write_shard
from robustmask.errors import RobustmaskError

if TYPE_CHECKING:  # pragma: no cover - the command imports TensorFlow only when it runs
    import numpy as np
    import pandas as pd

    from robustmask.attacks.base import Attack

NAME = "evaluate"
SUITES = ("standard",)
SUITE_EPSILONS = (0.009, 8 / 255)  # the paper's largest eps and the usual image budget


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    evaluate = commands.add_parser(
        NAME,
        help="Table 4/5 of a saved model under an attack, or the worst case over the standard suite",
        description="Accuracy and loss of a saved model under an attack, one row per eps; or, with --suite standard, "
        "robust accuracy under AutoAttack's suite (APGD-CE, APGD-DLR, Square), each attack on the "
        "images still robust. --out writes a results folder with report.html.",
    )
    add_model_and_data_options(evaluate)
    evaluate.add_argument("--attack", default=None, help="attack name (default: fgsm)")
    evaluate.add_argument(
        "--suite", choices=SUITES, help="instead of one attack, the worst case over a suite"
    )
    evaluate.add_argument(
        "--eps",
        type=eps_value,
        nargs="+",
        default=None,
        metavar="EPS",
        help="epsilons, numbers or fractions such as 8/255 (default: the paper's ten; 0.009 and 8/255 "
        "with --suite)",
    )
    evaluate.add_argument(
        "--norm", metavar="inf|2|1", help="threat model of eps: inf (default, the paper's), 2 or 1"
    )
    evaluate.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="attack parameter; with --suite, a standard_suite parameter (apgd_iter, square_queries)",
    )
    evaluate.add_argument(
        "--stream",
        action="store_true",
        help="read --data from disk batch by batch (tf.data) instead of loading it into memory: the same "
        "table for a deterministic attack such as fgsm (random starts are drawn per batch, and the "
        "batches hold other images); with --shard, each shard decodes only its own files; with --suite, each batch of 64 files is one "
        "chunk of the suite",
    )
    evaluate.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars")
    evaluate.add_argument(
        "--out", metavar="DIR", help="write a results folder (tables, figures, report.html)"
    )
    evaluate.add_argument(
        "--overwrite", action="store_true", help="replace an existing --csv file or --out folder"
    )
    add_shard_arguments(evaluate)
    return evaluate


def run(args: argparse.Namespace) -> int:
    from robustmask.cli._data import data_for, load_model
    from robustmask.cli.attack import attacker_for
    from robustmask.cli.options import refuse_existing_file

    _refuse_existing_outputs(args, refuse_existing_file)  # before the sweep's time is spent
    if args.suite and args.attack:
        raise RobustmaskError("give --attack or --suite, not both")
    if args.suite is None:
        args.attack = args.attack or "fgsm"
        attacker = attacker_for(args)  # a typo fails before the model loads
    if not args.eps and args.norm not in (None, "inf"):
        raise RobustmaskError(f"--norm {args.norm}: give --eps (the paper's defaults are L-inf budgets)")
    if getattr(args, "stream", False):
        from robustmask.cli._data import check_stream_data

        check_stream_data(args)  # before the model loads
        if args.suite:
            return _suite_stream(args, load_model(args))
        return _evaluate_stream(args, attacker, load_model(args))
    model = load_model(args)
    x, y, names = data_for(model, args)
    if args.shard:
        return write_shard(
            args, model, (x, y), _shard_job(args, attacker if args.suite is None else None, names)
        )
    if not args.suite:
        return _print_attack_table(args, attacker, *_attack_table(attacker, args, model, x, y, names), len(x))
    table, title = _suite_table(args, model, (x, y), len(names))
    return _print_suite_table(args, table, title, len(names))


def _print_suite_table(args: argparse.Namespace, table: pd.DataFrame, title: str, num_classes: int) -> int:
    from robustmask.evaluation.headline import headline, headline_lines

    warnings: list = _suite_warnings(table, num_classes)
    covered = headline(table, model=args.model)
    print(title)
    print(table.to_string(index=False))
    print("\n".join(headline_lines(covered)))
    # the suite's warnings (an attack's sweep shows the Evaluator's as Python warnings, as they come)
    print("\n".join(f"warning: {warning}" for warning in warnings), end="\n" if warnings else "")
    _write(args, table, title, warnings, covered)
    return 0


def _print_attack_table(
    args: argparse.Namespace, attacker: Attack, table: pd.DataFrame, warnings: list, examples: int
) -> int:
    from robustmask.evaluation.headline import headline_lines, sweep_headline

    title = f"{attacker.name} ({attacker.norm.label}) on {args.model}: {examples} images"
    covered = sweep_headline(table, attacker.name, model=args.model)
    covered["examples"] = examples
    print(title)
    print(table.to_string(index=False))
    print("\n".join(headline_lines(covered)))
    _write(args, table, title, warnings, covered)
    return 0


def _suite_stream(args: argparse.Namespace, model: Any) -> int:
    """The standard suite over --data read batch by batch (each batch of SUITE_CHUNK files one chunk:
    the table of the in-memory path); with --shard, this process's shard of it."""
    import warnings as python_warnings

    from robustmask.cli._data import stream_for, stream_skips_warning

    stream, names = stream_for(model, args, SUITE_CHUNK)  # the class count checked here
    with python_warnings.catch_warnings():  # reported once, after the pass, as the in-memory loader does
        python_warnings.filterwarnings("ignore", message=r"skipped .* while streaming ")
        if args.shard:
            written = write_shard(args, model, stream, _shard_job(args, None, names))
        else:
            table, title = _suite_table(args, model, stream, len(names))
    stream_skips_warning(stream)
    return written if args.shard else _print_suite_table(args, table, title, len(names))


def _evaluate_stream(args: argparse.Namespace, attacker: Attack, model: Any) -> int:
    """The attack's sweep over --data read batch by batch: the table of the in-memory path; with --shard,
    this process's shard of it (its blocks of files: `robustmask.evaluation.shards`)."""
    import warnings as python_warnings

    import robustmask
    from robustmask.cli._data import stream_for, stream_skips_warning
    from robustmask.cli.shards import write_shard
    from robustmask.evaluation import named_norm
    from robustmask.paper import EPSILONS as PAPER_EPSILONS

    evaluator = robustmask.Evaluator(attacker, args.eps or list(PAPER_EPSILONS))
    stream, names = stream_for(model, args, evaluator.batch_size)  # the class count checked here
    evaluator.class_names = names
    with python_warnings.catch_warnings():  # reported once, after the pass, as the in-memory loader does
        python_warnings.filterwarnings("ignore", message=r"skipped .* while streaming ")
        if args.shard:
            written = write_shard(args, model, stream, evaluator)
        else:
            result = evaluator.evaluate(model, stream, progress=not args.no_progress, details=True)
    stream_skips_warning(stream)
    if args.shard:
        return written
    table = named_norm(result.table)
    return _print_attack_table(args, attacker, table, list(result.warnings), int(table.attrs["examples"]))


def _refuse_existing_outputs(args: argparse.Namespace, refuse_existing_file: Any) -> None:
    if args.csv:
        refuse_existing_file(args.csv, "--csv", args.overwrite)
    if args.out:
        from robustmask._io import refuse_filled_folder

        refuse_filled_folder(args.out, args.overwrite)


def _attack_table(
    attacker: Attack, args: argparse.Namespace, model: Any, x: np.ndarray, y: np.ndarray, names: list[str]
) -> tuple[pd.DataFrame, list]:
    import robustmask
    from robustmask.evaluation import named_norm
    from robustmask.paper import EPSILONS as PAPER_EPSILONS

    evaluator = robustmask.Evaluator(attacker, args.eps or list(PAPER_EPSILONS), class_names=names)
    result = evaluator.evaluate(model, (x, y), progress=not args.no_progress, details=True)
    return named_norm(result.table), list(result.warnings)


def _suite_table(
    args: argparse.Namespace, model: Any, data: tuple[np.ndarray, np.ndarray] | Any, num_classes: int
) -> tuple[pd.DataFrame, str]:
    """The suite's table on (x, y) in SUITE_CHUNK chunks, or on a stream of SUITE_CHUNK-file batches."""
    from robustmask.evaluation import named_norm

    spec = _suite_spec(args, num_classes)
    table = spec.table(model, data, progress=not args.no_progress, description="standard suite")
    title = (
        f"standard suite ({', '.join(spec.attacks)}; {table.attrs['norm']}, each attack on the images still "
        f"robust) on {args.model}: {table.attrs['examples']} images"
    )
    return named_norm(table), title


def _suite_spec(args: argparse.Namespace, num_classes: int) -> Any:
    """The standard suite of --norm/--param at --eps, cascaded, in SUITE_CHUNK chunks: the one spec that
    the one-process table and every --shard evaluate."""
    from robustmask.evaluation import standard_suite
    from robustmask.evaluation.shards import RobustnessSpec

    suite = standard_suite(norm=args.norm or "inf", num_classes=num_classes, **parse_params(args.param))
    return RobustnessSpec(suite, args.eps or list(SUITE_EPSILONS), protocol="cascade", chunk_size=SUITE_CHUNK)


def _shard_job(args: argparse.Namespace, attacker: Attack | None, names: list[str]) -> Any:
    """What `--shard` evaluates: the Evaluator of --attack, or the suite's table in SUITE_CHUNK chunks."""
    import robustmask
    from robustmask.paper import EPSILONS as PAPER_EPSILONS

    if attacker is not None:
        return robustmask.Evaluator(attacker, args.eps or list(PAPER_EPSILONS), class_names=names)
    return _suite_spec(args, len(names))


def _suite_warnings(table: pd.DataFrame, num_classes: int) -> list:
    from robustmask.evaluation.results import unnamed_norm
    from robustmask.evaluation.sanity_suite import suite_warnings

    from robustmask.evaluation.sanity import check_below_chance

    found = list(suite_warnings(unnamed_norm(table), num_classes))
    clean = table["Clean (%)"] if "Clean (%)" in table.columns else None
    if clean is not None and len(clean):
        below = check_below_chance(float(clean.iloc[0]), num_classes, table.attrs.get("examples"))
        found += [below] if below is not None else []
    return found


def _write(
    args: argparse.Namespace,
    table: pd.DataFrame,
    title: str,
    warnings: list,
    covered: dict[str, Any],
) -> None:
    from robustmask._io import replaced_folder, write_text_atomically

    if args.csv:
        write_text_atomically(args.csv, table.to_csv(index=False))
    if not args.out:
        return
    from robustmask.evaluation.accuracy_section import write_accuracy_section
    from robustmask.evaluation.results import ResultsWriter

    settings = {key: value for key, value in vars(args).items() if key not in ("func", "overwrite")}
    with replaced_folder(args.out, overwrite=args.overwrite) as folder:
        writer = ResultsWriter(
            folder,
            title=title,
            kind="evaluate",
            seed=args.seed,
            settings=settings,
            command=shlex.join(["robustmask", *sys.argv[1:]]),
        )
        write_accuracy_section(
            writer,
            table,
            heading="Accuracy under attack",
            name="evaluation",
            caption=title,
            figure_caption="Accuracy (and loss) against eps",
        )
        writer.warn(warnings)
        report = writer.finish({"headline": covered})
    print(f"wrote {args.out}/ ({report.name}, tables/, figures/, summary.json)")
