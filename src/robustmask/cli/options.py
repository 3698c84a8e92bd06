"""Options several `robustmask` commands share: eps values (``8/255``), ``--class-names``, warnings.

Nothing here imports TensorFlow: ``robustmask --help`` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import re
import warnings
from collections.abc import Iterator
from typing import Any

from robustmask.errors import RobustmaskError

__all__ = ["add_class_names_option", "check_eps_options", "eps_value", "one_line_warnings"]

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
