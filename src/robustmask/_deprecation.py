"""Renamed names that still work: one warning, one line, naming the new name.

robustmask spells its identifiers and flags one way ("defense"); the names it used before stay as
aliases that warn (a DeprecationWarning in Python, a line on stderr on the command line).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["DeprecatedFlag", "add_deprecated_flags", "renamed_keywords", "warn_renamed"]


def warn_renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn (DeprecationWarning) that `old` is deprecated in favour of `new`."""
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=stacklevel)


def renamed_keywords(keywords: Mapping[str, Any], renames: Mapping[str, str], where: str) -> dict[str, Any]:
    """`keywords` with each old name of `renames` (old -> new) replaced by its new one, warning once per
    old name; giving both the old and the new name is a TypeError."""
    result = dict(keywords)
    for old, new in renames.items():
        if old in result:
            if new in result:
                raise TypeError(f"{where} got both {old!r} and {new!r}; give only {new!r}")
            warn_renamed(f"{where}({old}=...)", f"{new}=...", stacklevel=4)
            result[new] = result.pop(old)
    return result


class DeprecatedFlag(argparse.Action):
    """An old spelling of a flag: stores into the new flag's dest and prints one warning line."""

    def __init__(self, option_strings: Sequence[str], dest: str, new: str = "", **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(f"robustmask: warning: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_deprecated_flags(parser: argparse.ArgumentParser, renames: Mapping[str, str]) -> None:
    """Accept each old flag of `renames` (old -> new, the new one already added): same dest, type,
    choices and nargs as the new one, hidden from --help, warning when used."""
    for old, new in renames.items():
        action = parser._option_string_actions[new]
        same: dict[str, Any] = {"type": action.type, "choices": action.choices, "nargs": action.nargs}
        parser.add_argument(
            old,
            dest=action.dest,
            metavar=action.metavar,
            action=DeprecatedFlag,
            new=new,
            help=argparse.SUPPRESS,
            **same,
        )
