"""The `robustmask` command: one module per sub-command, dispatched from `COMMANDS`.

Each command module has ``NAME``, ``add_parser(subparsers)`` and ``run(args) -> int``, and imports
TensorFlow only inside ``run``, so ``robustmask --help`` answers at once. Errors about the user's
input are printed as one line (``robustmask: error: ...``), exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from robustmask import __version__
from robustmask.cli import (
    attack,
    attacks,
    compare,
    defend,
    evaluate,
    merge,
    report,
    reproduce,
    scan,
    seed_weights,
    synthetic,
    universal,
)
from robustmask.cli.options import check_eps_options, one_line_warnings

#: Every sub-command, in the order `robustmask --help` lists them.
COMMANDS: tuple[ModuleType, ...] = (
    reproduce,
    attack,
    evaluate,
    merge,
    defend,
    report,
    compare,
    scan,
    universal,
    attacks,
    seed_weights,
    synthetic,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robustmask",
        description="Adversarial attacks and defences for face-mask (and any Keras) image classifiers.",
    )
    parser.add_argument("--version", action="version", version=f"robustmask {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from robustmask.errors import RobustmaskError

    command = next(command for command in COMMANDS if command.NAME == args.command)
    try:
        check_eps_options(args)  # 8 meant as 8/255, before anything loads
        with one_line_warnings():
            return int(command.run(args))
    except RobustmaskError as error:
        print(f"robustmask: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("robustmask: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
