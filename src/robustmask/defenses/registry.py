"""Defences by name: ``robustmask.defenses.get("pgd-at", eps=8 / 255)`` and ``available()``.

Third-party packages add theirs through the entry-point group ``robustmask.defenses``::

    [project.entry-points."robustmask.defenses"]
    my-defence = "my_package.defences:MyDefence"

The entry point names a `Defense` subclass (or a factory returning one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from robustmask._registry import Registry
from robustmask.errors import RobustmaskError

if TYPE_CHECKING:  # pragma: no cover - the defences are imported when they are asked for
    from robustmask.defenses.base import Defense

ENTRY_POINT_GROUP = "robustmask.defenses"

_REGISTRY = Registry(
    "defence",
    ENTRY_POINT_GROUP,
    {
        "multi-eps": "robustmask.defenses.multi_epsilon:MultiEpsilonAdversarialTrainer",
        "pgd-at": "robustmask.defenses.pgd_training:PGDAdversarialTrainer",
        "fast-at": "robustmask.defenses.fast_training:FastAdversarialTrainer",
        "trades": "robustmask.defenses.trades:TRADESTrainer",
        "distillation": "robustmask.defenses.distillation:DefensiveDistillation",
    },
    "robustmask.defenses.base:Defense",
    RobustmaskError,
)


def register(name: str, factory: Callable[..., Defense]) -> None:
    """Register a defence class or factory under `name` for this process."""
    _REGISTRY.register(name, factory)


def available() -> list[str]:
    """Names `get` accepts: built-in, registered and installed through entry points."""
    return _REGISTRY.available()


def get(name: str, **params: Any) -> Defense:
    """Build the defence called `name` with `params`."""
    return _REGISTRY.get(name, **params)
