"""Renamed names that still work: one warning, one line, naming the new name.

robustmask spells its identifiers and flags one way ("defense"); the names it used before stay as
aliases that warn (a DeprecationWarning in Python, a line on stderr on the command line).
"""

from __future__ import annotations

import argparse
import functools
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

__all__ = [
    "DeprecatedFlag",
    "add_deprecated_flags",
    "current_names",
    "renamed_keywords",
    "renamed_parameters",
    "warn_renamed",
]


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


_Function = TypeVar("_Function", bound=Callable[..., Any])

#: What an old parameter became: its new name, or (what to use instead, in words; a function from the
#: old value to the new keywords) where one old value says what several new parameters say.
Renamed = str | tuple[str, Callable[[Any], dict[str, Any]]]


def _translate(
    keywords: Mapping[str, Any], renames: Mapping[str, Renamed], where: str, warn: bool
) -> dict[str, Any]:
    result = dict(keywords)
    for old, renamed in renames.items():
        if old not in result:
            continue
        new, convert = (renamed, None) if isinstance(renamed, str) else renamed
        replacement = {new: result[old]} if convert is None else convert(result[old])
        given = sorted(set(replacement) & set(result))
        if given:
            raise TypeError(f"{where} got both {old!r} and {given[0]!r}; give only {given[0]!r}")
        if warn:
            use = f"{new}=..." if convert is None else new
            warn_renamed(f"{where}({old}=...)", use, stacklevel=4)
        del result[old]
        result.update(replacement)
    return result


def renamed_parameters(renames: Mapping[str, Renamed]) -> Callable[[_Function], _Function]:
    """Decorator: the function (a class's ``__init__``) also takes the old keywords of `renames`.

    Each old keyword given warns once (a DeprecationWarning pointing at the caller) and is passed on
    under its new name; an old and a new one that say the same thing, given together, are a one-line
    TypeError. The signature (``inspect.signature``, the registry's parameter lists, the API pages)
    shows the new names only; the renames stay on the function as ``__renamed_parameters__`` for
    `current_names`.

    Example::

        class ARTBIM(ARTAttack):
            @renamed_parameters({"max_iter": "steps"})
            def __init__(self, steps: int = 10, **kwargs: Any) -> None: ...
    """

    def decorate(function: _Function) -> _Function:
        where = function.__qualname__.removesuffix(".__init__")

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return function(*args, **_translate(kwargs, renames, where, warn=True))

        wrapper.__renamed_parameters__ = dict(renames)  # type: ignore[attr-defined]
        return cast("_Function", wrapper)

    return decorate


def current_names(
    factory: Callable[..., Any], keywords: Mapping[str, Any], error: type[Exception] = TypeError
) -> dict[str, Any]:
    """`keywords` as `factory` (a function, or a class through its ``__init__``) names them now: its
    old keywords (`renamed_parameters`) replaced by the new ones, without a warning, so that they can
    be checked against its signature. An old and a new keyword together raise `error`."""
    target = getattr(factory, "__init__", None) if isinstance(factory, type) else factory
    renames = getattr(target, "__renamed_parameters__", None)
    if not renames:
        return dict(keywords)
    where = getattr(factory, "__name__", "the factory")
    try:
        return _translate(keywords, renames, where, warn=False)
    except TypeError as both:
        raise error(str(both)) from None
