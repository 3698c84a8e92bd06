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
from importlib import metadata

from robustmask.errors import AttackError

ENTRY_POINT_GROUP = "robustmask.attacks"

_BUILTIN = {
    # native TensorFlow attacks
    "fgsm": "robustmask.attacks.fgsm:FGSM",
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
    "patch": "robustmask.attacks.art.patch:AdversarialPatch",
}
_REGISTERED: dict = {}


def register(name: str, factory) -> None:
    """Register an attack class or factory under `name` for this process."""
    key = _normalise(name)
    if not callable(factory):
        raise AttackError(f"cannot register {name!r}: {factory!r} is not an Attack class or factory")
    _REGISTERED[key] = factory


def available() -> list[str]:
    """Names `get` accepts: built-in, registered and installed through entry points."""
    return sorted({*_BUILTIN, *_REGISTERED, *(_normalise(e.name) for e in _entry_points())})


def get(name: str, **params):
    """Build the attack called `name` with `params`."""
    from robustmask.attacks.base import Attack

    factory = _resolve(name)
    try:
        attack = factory(**params)
    except TypeError as error:
        raise AttackError(f"attack {name!r} does not take these parameters: {error}") from None
    if not isinstance(attack, Attack):
        raise AttackError(f"attack {name!r} built a {type(attack).__name__}, not a robustmask Attack")
    return attack


def _resolve(name: str):
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
                raise AttackError(f"the plug-in attack {name!r} ({entry.value}) failed to load: {error}") from None
    close = difflib.get_close_matches(key, available(), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise AttackError(f"unknown attack {name!r}{hint}; available: {', '.join(available())}")


def _load(path: str, name: str):
    module, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as error:
        raise AttackError(f"attack {name!r} needs a package that is missing: {error}") from None


def _entry_points():
    return list(metadata.entry_points(group=ENTRY_POINT_GROUP))


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")
