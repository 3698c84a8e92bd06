"""Things by name: built-ins by import path, run-time registrations, third-party entry points.

Attacks (``robustmask.attacks.get``) and defences (``robustmask.defenses.get``) share this. Naming a
built-in imports only its module, and a plug-in is loaded only when it is asked for.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

from robustmask._deprecation import current_names


class Registry:
    """Names to classes (or factories) of one kind, each with optional metadata.

    Args:
        kind: "attack" or "defence", for messages.
        group: the entry-point group third-party packages add to.
        builtin: name -> "module:attribute", or -> ("module:attribute", metadata).
        base_path: "module:attribute" of the class every built object must be an instance of.
        error: the exception class for user errors.
    """

    def __init__(
        self,
        kind: str,
        group: str,
        builtin: Mapping[str, str | tuple[str, Any]],
        base_path: str,
        error: type[Exception],
    ) -> None:
        self.kind, self.group, self.base_path, self.error = kind, group, base_path, error
        self.builtin = {
            name: entry if isinstance(entry, str) else entry[0] for name, entry in builtin.items()
        }
        self.builtin_info = {
            name: entry[1]
            for name, entry in builtin.items()
            if not isinstance(entry, str) and entry[1] is not None
        }
        # name -> (factory, metadata or None): one table, so a test can swap it for an empty one.
        self.registered: dict[str, tuple[Callable[..., Any], Any]] = {}

    def register(self, name: str, factory: Callable[..., Any], info: Any = None) -> None:
        if not callable(factory):
            base = self.base_path.rpartition(":")[2]
            article = "an" if base[:1].lower() in "aeiou" else "a"
            raise self.error(
                f"cannot register {name!r}: {factory!r} is not {article} {base} class or factory"
            )
        self.registered[normalise(name)] = (factory, info)

    def available(self) -> list[str]:
        return sorted({*self.builtin, *self.registered, *(normalise(e.name) for e in self._entry_points())})

    def info(self, name: str) -> Any:
        """The metadata `name` was registered with (a run-time registration first), or None."""
        key = normalise(name)
        if key in self.registered:
            return self.registered[key][1]
        return self.builtin_info.get(key)

    def get(self, name: str, **params: Any) -> Any:
        factory = self.resolve(name)
        # Check the parameters against the signature first: a TypeError raised inside the
        # constructor is a bug to see, not a bad parameter to report.
        self._check_params(factory, name, params)
        try:
            built = factory(**params)
        except TypeError as error:
            if not _rejects_a_given_keyword(error, factory, params):
                raise  # raised inside the constructor: a bug to see, not a bad parameter
            unknown = re.findall(r"keyword argument '(\w+)'", str(error))
            raise self.error(unknown_parameters_message(name, factory, unknown)) from None
        base = _load(self.base_path)
        if not isinstance(built, base):
            raise self.error(
                f"{self.kind} {name!r} built a {type(built).__name__}, not a robustmask {base.__name__}"
            )
        return built

    def _check_params(self, factory: Callable[..., Any], name: str, params: dict[str, Any]) -> None:
        """Parameters the factory cannot take, or required ones missing, are the user's error."""
        params = current_names(factory, params, self.error)  # a deprecated name is checked as its new one
        unknown = _unaccepted(factory, params)
        if unknown:
            raise self.error(unknown_parameters_message(name, factory, unknown))
        try:
            signature = inspect.signature(factory)
        except (TypeError, ValueError):  # no signature to read (a builtin): the call decides
            return
        try:
            signature.bind(**params)
        except TypeError as error:
            raise self.error(f"{self.kind} {name!r}: {error}") from None

    def resolve(self, name: str) -> Callable[..., Any]:
        """The class or factory called `name` (imported, or loaded from its plug-in, now)."""
        if not isinstance(name, str):
            raise self.error(f"{self.kind} names are strings, got {name!r}")
        key = normalise(name)
        if key in self.registered:
            return self.registered[key][0]
        if key in self.builtin:
            try:
                return _load(self.builtin[key])
            except ImportError as error:
                raise self.error(f"{self.kind} {key!r} needs a package that is missing: {error}") from None
        for entry in self._entry_points():
            if normalise(entry.name) == key:
                try:
                    return entry.load()
                except Exception as error:  # noqa: BLE001 - a broken plug-in must not hide the others
                    raise self.error(
                        f"the plug-in {self.kind} {name!r} ({entry.value}) failed to load: "
                        f"{type(error).__name__}: {error}"
                    ) from None
        close = difflib.get_close_matches(key, self.available(), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise self.error(f"unknown {self.kind} {name!r}{hint}; available: {', '.join(self.available())}")

    def _entry_points(self) -> list[metadata.EntryPoint]:
        return list(metadata.entry_points(group=self.group))


def _rejects_a_given_keyword(error: TypeError, factory: Callable[..., Any], params: dict[str, Any]) -> bool:
    """Whether `error` is Python refusing one of `params` at a constructor the factory hands them on to.

    Attacks and defences take ``**kwargs`` and pass them to their base class (``BIM(steps, **kwargs)``
    -> ``Attack.__init__``), so the signature check cannot see an unknown name there; Python's own
    "X.__init__() got an unexpected keyword argument 'name'" for a given name, raised at a class
    of the factory's hierarchy, is that case. Any other TypeError is the constructor's own.
    """
    match = re.fullmatch(r"([\w.<>]+)\(\) got an unexpected keyword argument '(\w+)'", str(error))
    if match is None or match[2] not in params or not match[1].endswith("__init__"):
        return False
    if not isinstance(factory, type):
        return True  # a factory function handing the parameters on to a constructor
    owner = match[1].rpartition(".")[0]
    return any(cls.__qualname__ == owner for cls in factory.__mro__)


def _unaccepted(factory: Callable[..., Any], params: dict[str, Any]) -> list[str]:
    """Names in `params` that `factory` cannot take, following ``**kwargs`` up a class's bases."""
    owners = (
        [k for k in inspect.getmro(factory) if "__init__" in vars(k)]
        if inspect.isclass(factory)
        else [factory]
    )
    remaining = set(params)
    for owner in owners:
        try:
            signature = inspect.signature(owner.__init__ if inspect.isclass(owner) else owner)
        except (TypeError, ValueError):  # no signature to read (a builtin): let the call decide
            return []
        kinds = {p.kind for p in signature.parameters.values()}
        remaining -= {
            n for n, p in signature.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        if inspect.Parameter.VAR_KEYWORD not in kinds:
            return sorted(remaining)
        if not inspect.isclass(factory):
            return []
    return []


def parameter_names(factory: Callable[..., Any]) -> list[str]:
    """The keyword parameters `factory` takes, following ``**kwargs`` up a class's bases, in order."""
    owners = (
        [k for k in inspect.getmro(factory) if "__init__" in vars(k)]
        if inspect.isclass(factory)
        else [factory]
    )
    names: list[str] = []
    for owner in owners:
        try:
            signature = inspect.signature(owner.__init__ if inspect.isclass(owner) else owner)
        except (TypeError, ValueError):
            break
        parameters = signature.parameters.values()
        names += [
            p.name
            for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name != "self"
            and p.name not in names
        ]
        if all(p.kind is not p.VAR_KEYWORD for p in parameters):
            break
    return names


def unknown_parameters_message(name: str, factory: Callable[..., Any], unknown: list[str]) -> str:
    """One line: "pgd has no parameter 'stepz' (did you mean steps?); its parameters: steps, ..."."""
    known = parameter_names(factory)
    words = ", ".join(repr(u) for u in unknown)
    close = [m for u in unknown for m in difflib.get_close_matches(u, known, n=1)]
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    listed = f"; its parameters: {', '.join(known)}" if known else ""
    return f"{name} has no parameter{'s' if len(unknown) > 1 else ''} {words}{hint}{listed}"


def normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)
