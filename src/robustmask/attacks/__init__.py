"""Attacks: native TensorFlow attacks, ART adapters and the name registry.

Every attack is called the same way, ``attack(model, x, y, eps)``, and works in the same Evaluator.
Attacks that live in optional modules (the ART adapters) are imported on first use.
"""

from robustmask._lazy import lazy_attributes
from typing import Any

from robustmask.attacks import norms
from robustmask.attacks.base import Attack
from robustmask.attacks.fgsm import FGSM, FGM
from robustmask.attacks.gradient_attack import GradientAttack
from robustmask.attacks.registry import (
    ENTRY_POINT_GROUP,
    AttackInfo,
    available,
    catalogue,
    describe,
    get,
    register,
)

_LAZY: dict[str, str] = {}  # public class name -> module, filled from the registry's built-in table below


def _lazy_table() -> None:
    from robustmask.attacks.registry import _BUILTIN

    for path in _BUILTIN.values():
        module, _, attr = path.partition(":")
        _LAZY.setdefault(attr, module)
    _LAZY.setdefault("ARTAttack", "robustmask.attacks.art.adapter")
    _LAZY.setdefault("attack_report", "robustmask.attacks.report")
    _LAZY.setdefault("perturbation_norms", "robustmask.attacks.report")
    _LAZY.setdefault("margin_loss", "robustmask.attacks.losses")


_lazy_table()

__all__ = sorted(
    {
        "Attack",
        "GradientAttack",
        "FGSM",
        "FGM",
        "norms",
        "ENTRY_POINT_GROUP",
        "AttackInfo",
        "available",
        "catalogue",
        "describe",
        "get",
        "register",
        *_LAZY,
    }
)


__getattr__ = lazy_attributes(__name__, _LAZY)
