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
    "defense",
    ENTRY_POINT_GROUP,
    {
        # name: (import path, one line on what it is)
        "multi-eps": (
            "robustmask.defenses.multi_epsilon:MultiEpsilonAdversarialTrainer",
            "retraining on clean images plus adversarial copies at several eps (the paper's Algorithm 2)",
        ),
        "pgd-at": (
            "robustmask.defenses.pgd_training:PGDAdversarialTrainer",
            "PGD adversarial training (Madry et al. 2018): the worst case in the eps ball, every step",
        ),
        "fast-at": (
            "robustmask.defenses.fast_training:FastAdversarialTrainer",
            "FGSM adversarial training from a random start (Wong et al. 2020), guarded against overfitting",
        ),
        "trades": (
            "robustmask.defenses.trades:TRADESTrainer",
            "TRADES (Zhang et al. 2019): clean accuracy plus beta times the KL to the PGD maximiser",
        ),
        "distillation": (
            "robustmask.defenses.distillation:DefensiveDistillation",
            "defensive distillation (Papernot et al. 2016): a student trained at temperature T",
        ),
    },
    "robustmask.defenses.base:Defense",
    RobustmaskError,
)


def register(name: str, factory: Callable[..., Defense], description: str | None = None) -> None:
    """Register a defence class or factory under `name` for this process, with a one-line description
    (default: the first line of its docstring)."""
    _REGISTRY.register(name, factory, description)


def describe(name: str) -> str:
    """One line on what the defence called `name` is: its registered description, or the first line
    of its class's (or factory's) docstring."""
    description = _REGISTRY.info(name)
    if description is None:
        doc = (_REGISTRY.resolve(name).__doc__ or "").strip()
        description = doc.splitlines()[0] if doc else ""
    return str(description)


def available() -> list[str]:
    """Names `get` accepts: built-in, registered and installed through entry points."""
    return _REGISTRY.available()


def get(name: str, **params: Any) -> Defense:
    """Build the defence called `name` with `params`."""
    return _REGISTRY.get(name, **params)
