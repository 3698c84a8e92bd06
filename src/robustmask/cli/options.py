"""Options several `robustmask` commands share, defined once: the model (``--model``, ``--inputs``,
``--unsafe``), the data (``--data``, ``--n-per-class``, ``--class-names``), eps values (``8/255``),
and one-line warnings.

Nothing here imports TensorFlow: ``robustmask --help`` stays instant.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from robustmask._deprecation import add_deprecated_flags
from robustmask.errors import RobustmaskError

__all__ = [
    "MODEL_HELP",
    "add_class_names_option",
    "add_data_options",
    "add_model_and_data_options",
    "add_model_options",
    "add_n_per_class_option",
    "check_eps_options",
    "parse_params",
    "refuse_existing_file",
    "eps_value",
    "one_line_warnings",
]

MODEL_HELP = "a .keras file, a SavedModel folder or a Keras 2 .h5 model"
DATA_HELP = "image folder, one sub-folder per class (default: the embedded synthetic faces)"
#: Old spellings of the data options (old -> new): still accepted, with a warning.
RENAMED_DATA_FLAGS = {"--n": "--n-per-class"}

_FRACTION = re.compile(r"\s*([^/\s]+)\s*/\s*([^/\s]+)\s*")


def eps_value(text: str) -> float:
    """An eps as the command line gives it: a number (``0.031``) or a fraction (``8/255``)."""
    match = _FRACTION.fullmatch(text)
    try:
        value = float(match[1]) / float(match[2]) if match else float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(
            f"expected a number or a fraction such as 8/255, got {text!r}"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"eps must be a finite number >= 0, got {text!r}")
    return value


def add_class_names_option(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--class-names NAME [NAME ...]``, the same on every command that takes data or a model."""
    parser.add_argument(
        "--class-names",
        nargs="+",
        metavar="NAME",
        help=help
        or "class folder names in the model's label order (e.g. --class-names with_mask without_mask "
        "for a 2-class model); they pick the classes of --data or of the synthetic faces",
    )


def add_model_options(
    parser: argparse.ArgumentParser, model: str | None = None, required: bool = False
) -> None:
    """``--model PATH`` (with help `model`; None: the command adds its own), ``--inputs`` and ``--unsafe``."""
    if model is not None:
        parser.add_argument("--model", required=required, metavar="PATH", help=model)
    parser.add_argument(
        "--inputs",
        default="auto",
        choices=["auto", "unit", "pixels", "mobilenet_v2"],
        help="pixel range the saved model expects: auto (from its first layers, else [0, 1]), unit [0, 1], "
        "pixels [0, 255], mobilenet_v2 [-1, 1]; robustmask always attacks [0, 1] images (default: auto)",
    )
    parser.add_argument(
        "--unsafe",
        action="store_true",
        help="allow Lambda layers stored as Python code in the model file (runs that code: trusted files only)",
    )


def add_n_per_class_option(parser: argparse.ArgumentParser, default: int | None, help: str) -> None:
    """``--n-per-class N``: how many synthetic faces of each class (``--n`` is its old spelling)."""
    parser.add_argument("--n-per-class", type=int, default=default, metavar="N", help=help)
    add_deprecated_flags(parser, RENAMED_DATA_FLAGS)


def add_data_options(
    parser: argparse.ArgumentParser,
    n_per_class: int | None,
    data: str = DATA_HELP,
    class_names: bool = True,
) -> None:
    """``--data PATH`` (help `data`), ``--n-per-class`` (default `n_per_class`) and ``--class-names``."""
    parser.add_argument("--data", metavar="PATH", help=data)
    shown = "the preset's" if n_per_class is None else n_per_class
    add_n_per_class_option(
        parser, n_per_class, f"synthetic faces per class without --data (default: {shown})"
    )
    if class_names:
        add_class_names_option(parser)


def add_model_and_data_options(parser: argparse.ArgumentParser) -> None:
    """A saved model and the images it runs on (``attack``, ``evaluate``), and ``--seed``."""
    add_model_options(parser, MODEL_HELP, required=True)
    add_data_options(parser, 60)
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and of random attacks")


def parse_params(pairs: Iterable[str], option: str = "--param") -> dict[str, Any]:
    """``KEY=VALUE`` pairs (``--param steps=20``) as a dict, each value a Python literal or a string."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RobustmaskError(f"{option} {pair!r}: expected KEY=VALUE, e.g. {option} steps=20")
        try:
            params[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key.strip()] = value
    return params


def refuse_existing_file(path: str | os.PathLike[str], option: str, overwrite: bool) -> None:
    """Refuse to write over an existing `path` unless --overwrite was given (and it is a file)."""
    path = Path(path)
    if path.is_dir():
        raise RobustmaskError(f"{path} is a folder; give a file path to {option}")
    if path.exists() and not overwrite:
        raise RobustmaskError(
            f"{path} exists; pass --overwrite to replace it, or choose another {option} (nothing was written)"
        )


# Commands whose --eps is an L-inf budget on [0, 1] images unless --norm says otherwise. `scan`
# checks its own (robustmask.camera), where the budget meets the frames.
_EPS_COMMANDS = ("attack", "evaluate", "defend", "universal")


def check_eps_options(args: argparse.Namespace) -> None:
    """Refuse an L-inf ``--eps`` above 1: robustmask attacks [0, 1] images, so 8 must mean 8/255."""
    from robustmask._validation import check_eps_units

    eps = getattr(args, "eps", None)
    if args.command not in _EPS_COMMANDS or eps is None:
        return
    check_eps_units(eps, getattr(args, "norm", None) or "inf", name="--eps", error=RobustmaskError)


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """Show Python warnings as ``robustmask: warning: ...`` lines, without a source path."""

    def format_warning(message: Any, category: Any, filename: str, lineno: int, line: Any = None) -> str:
        return "robustmask: warning: " + " ".join(str(message).split()) + "\n"

    saved = warnings.formatwarning
    warnings.formatwarning = format_warning
    try:
        yield
    finally:
        warnings.formatwarning = saved
