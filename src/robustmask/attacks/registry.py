"""Attacks by name: ``robustmask.attacks.get("pgd", steps=20)`` and ``available()``.

Built-in attacks are listed below by import path, so naming one imports only its module (ART is
not imported for a native attack). Third-party packages add theirs through the entry-point group
``robustmask.attacks``; in their pyproject.toml::

    [project.entry-points."robustmask.attacks"]
    my-attack = "my_package.attacks:MyAttack"

The entry point names an `Attack` subclass (or a factory returning an `Attack`).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING, Any

from robustmask._registry import _unaccepted, unknown_parameters_message
from robustmask.errors import AttackError

if TYPE_CHECKING:  # pragma: no cover - naming an attack imports only its own module
    from robustmask.attacks.base import Attack

ENTRY_POINT_GROUP = "robustmask.attacks"

_BUILTIN = {
    # native TensorFlow attacks
    "fgsm": "robustmask.attacks.fgsm:FGSM",
    "fgm": "robustmask.attacks.fgsm:FGM",
    "bim": "robustmask.attacks.bim:BIM",
    "pgd": "robustmask.attacks.pgd:PGD",
    # adapters over IBM's adversarial-robustness-toolbox
    "art-fgsm": "robustmask.attacks.art.gradient:ARTFGSM",
    "art-bim": "robustmask.attacks.art.gradient:ARTBIM",
    "art-pgd": "robustmask.attacks.art.gradient:ARTPGD",
    "mifgsm": "robustmask.attacks.art.gradient:MIFGSM",
    "autopgd": "robustmask.attacks.art.gradient:AutoPGD",
    "jsma": "robustmask.attacks.art.minimal:JSMA",
    "deepfool": "robustmask.attacks.art.minimal:DeepFool",
    "cw-l2": "robustmask.attacks.art.minimal:CarliniL2",
    "cw-linf": "robustmask.attacks.art.minimal:CarliniLInf",
    "square": "robustmask.attacks.art.blackbox:SquareAttack",
    "hopskipjump": "robustmask.attacks.art.blackbox:HopSkipJump",
    "universal": "robustmask.attacks.art.universal:UniversalPerturbation",
    "universal-sgd": "robustmask.attacks.universal:SGDUniversalPerturbation",
    "patch": "robustmask.attacks.art.patch:AdversarialPatch",
}
_REGISTERED: dict[str, Callable[..., Any]] = {}


def register(name: str, factory: Callable[..., Attack]) -> None:
    """Register an attack class or factory under `name` for this process."""
    key = _normalise(name)
    if not callable(factory):
        raise AttackError(f"cannot register {name!r}: {factory!r} is not an Attack class or factory")
    _REGISTERED[key] = factory


def available() -> list[str]:
    """Names `get` accepts: built-in, registered and installed through entry points."""
    return sorted({*_BUILTIN, *_REGISTERED, *(_normalise(e.name) for e in _entry_points())})


def get(name: str, **params: Any) -> Attack:
    """Build the attack called `name` with `params`."""
    from robustmask.attacks.base import Attack

    factory = _resolve(name)
    _check_params(factory, name, params)
    try:
        attack = factory(**params)
    except TypeError as error:
        if not _rejects_a_given_keyword(error, factory, params):
            raise  # raised inside the constructor: a bug to see, not a bad parameter
        unknown = re.findall(r"keyword argument '(\w+)'", str(error))
        raise AttackError(unknown_parameters_message(name, factory, unknown)) from None
    if not isinstance(attack, Attack):
        raise AttackError(f"attack {name!r} built a {type(attack).__name__}, not a robustmask Attack")
    return attack


def _check_params(factory: Callable[..., Any], name: str, params: dict[str, Any]) -> None:
    """Parameters the factory's signature cannot take are the user's error, named before the call."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # no signature to read (a builtin): the call decides
        return
    try:
        signature.bind(**params)
    except TypeError as error:
        unknown = _unaccepted(factory, params)
        if not unknown:
            raise AttackError(f"attack {name!r}: {error}") from None
        raise AttackError(unknown_parameters_message(name, factory, unknown)) from None


def _rejects_a_given_keyword(error: TypeError, factory: Callable[..., Any], params: dict[str, Any]) -> bool:
    """Whether `error` is Python refusing one of `params` at a constructor the factory hands them on to.

    Attacks take ``**kwargs`` and pass them to their base class (``BIM(steps, **kwargs)`` ->
    ``Attack.__init__``), so the signature check cannot see an unknown name there; Python's own
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


def _resolve(name: str) -> Callable[..., Any]:
    if not isinstance(name, str):
        raise AttackError(f"attack names are strings, got {name!r}")
    key = _normalise(name)
    if key in _REGISTERED:
        return _REGISTERED[key]
    if key in _BUILTIN:
        return _load(_BUILTIN[key], key)
    for entry in _entry_points():
        if _normalise(entry.name) == key:
            try:
                return entry.load()
            except Exception as error:  # a broken plug-in must not hide the others
                raise AttackError(
                    f"the plug-in attack {name!r} ({entry.value}) failed to load: "
                    f"{type(error).__name__}: {error}"
                ) from None
    close = difflib.get_close_matches(key, available(), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise AttackError(f"unknown attack {name!r}{hint}; available: {', '.join(available())}")


def _load(path: str, name: str) -> Callable[..., Any]:
    module, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as error:
        raise AttackError(f"attack {name!r} needs a package that is missing: {error}") from None


def _entry_points() -> list[metadata.EntryPoint]:
    return list(metadata.entry_points(group=ENTRY_POINT_GROUP))


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")
