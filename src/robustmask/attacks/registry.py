"""Attacks by name: ``robustmask.attacks.get("pgd", steps=20)``, ``available()`` and ``describe()``.

Built-in attacks are listed below by import path, so naming one imports only its module (ART is
not imported for a native attack), each with what it is (`AttackInfo`: kind, default norm, single
step or iterative). Adding an attack is its own module plus one line in that table, or one call::

    robustmask.attacks.register("my-attack", MyAttack, AttackInfo("gradient", "inf", "iterative"))

Third-party packages add theirs through the entry-point group ``robustmask.attacks``; in their
pyproject.toml::

    [project.entry-points."robustmask.attacks"]
    my-attack = "my_package.attacks:MyAttack"

The entry point names an `Attack` subclass (or a factory returning an `Attack`); what it is comes
from the built attack's attributes (`info_of`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from robustmask._registry import Registry
from robustmask.errors import AttackError

if TYPE_CHECKING:  # pragma: no cover - naming an attack imports only its own module
    from robustmask.attacks.base import Attack

__all__ = [
    "ENTRY_POINT_GROUP",
    "AttackInfo",
    "available",
    "catalogue",
    "describe",
    "get",
    "info_of",
    "register",
]

ENTRY_POINT_GROUP = "robustmask.attacks"

KINDS = ("gradient", "gradient-free", "self-sized", "universal", "patch")
STEPS = ("single-step", "iterative")


@dataclass(frozen=True)
class AttackInfo:
    """What an attack is, as ``robustmask attacks`` lists it.

    Attributes:
        kind: "gradient" (eps-bounded, white-box), "gradient-free" (queries predictions only),
            "self-sized" (minimal perturbation: it chooses its own size, e.g. DeepFool, C&W),
            "universal" (one perturbation for every image) or "patch".
        norm: the default norm, as ``norm=`` takes it: "inf", "2" or "1".
        steps: "single-step" or "iterative".
        name: the registry name (filled by `describe`).
    """

    kind: str
    norm: str
    steps: str
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise AttackError(f"AttackInfo kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.steps not in STEPS:
            raise AttackError(f"AttackInfo steps must be one of {', '.join(STEPS)}, got {self.steps!r}")


_GRADIENT_LINF_1 = AttackInfo("gradient", "inf", "single-step")
_GRADIENT_LINF = AttackInfo("gradient", "inf", "iterative")
_REGISTRY = Registry(
    "attack",
    ENTRY_POINT_GROUP,
    {
        # native TensorFlow attacks
        "fgsm": ("robustmask.attacks.fgsm:FGSM", _GRADIENT_LINF_1),
        "fgm": ("robustmask.attacks.fgsm:FGM", AttackInfo("gradient", "2", "single-step")),
        "bim": ("robustmask.attacks.bim:BIM", _GRADIENT_LINF),
        "pgd": ("robustmask.attacks.pgd:PGD", _GRADIENT_LINF),
        "square": ("robustmask.attacks.square:SquareAttack", AttackInfo("gradient-free", "inf", "iterative")),
        "autopgd": ("robustmask.attacks.apgd:AutoPGD", _GRADIENT_LINF),
        # adapters over IBM's adversarial-robustness-toolbox
        "art-fgsm": ("robustmask.attacks.art.gradient:ARTFGSM", _GRADIENT_LINF_1),
        "art-bim": ("robustmask.attacks.art.gradient:ARTBIM", _GRADIENT_LINF),
        "art-pgd": ("robustmask.attacks.art.gradient:ARTPGD", _GRADIENT_LINF),
        "mifgsm": ("robustmask.attacks.art.adaptive:MIFGSM", _GRADIENT_LINF),
        "art-autopgd": ("robustmask.attacks.art.adaptive:ARTAutoPGD", _GRADIENT_LINF),
        "jsma": ("robustmask.attacks.art.minimal:JSMA", AttackInfo("self-sized", "inf", "iterative")),
        "deepfool": ("robustmask.attacks.art.minimal:DeepFool", AttackInfo("self-sized", "2", "iterative")),
        "cw-l2": ("robustmask.attacks.art.carlini:CarliniL2", AttackInfo("self-sized", "2", "iterative")),
        "cw-linf": (
            "robustmask.attacks.art.carlini:CarliniLInf",
            AttackInfo("self-sized", "inf", "iterative"),
        ),
        "art-square": (
            "robustmask.attacks.art.blackbox:ARTSquareAttack",
            AttackInfo("gradient-free", "inf", "iterative"),
        ),
        "hopskipjump": (
            "robustmask.attacks.art.blackbox:HopSkipJump",
            AttackInfo("gradient-free", "inf", "iterative"),
        ),
        "universal": (
            "robustmask.attacks.art.universal:UniversalPerturbation",
            AttackInfo("universal", "inf", "iterative"),
        ),
        "universal-sgd": (
            "robustmask.attacks.universal:SGDUniversalPerturbation",
            AttackInfo("universal", "inf", "iterative"),
        ),
        "patch": ("robustmask.attacks.art.patch:AdversarialPatch", AttackInfo("patch", "inf", "iterative")),
    },
    "robustmask.attacks.base:Attack",
    AttackError,
)
_BUILTIN = _REGISTRY.builtin  # name -> "module:Class": the one table robustmask.attacks exports from


def register(name: str, factory: Callable[..., Attack], info: AttackInfo | None = None) -> None:
    """Register an attack class or factory under `name` for this process, with what it is.

    Without `info`, `describe` reads it from the attack the factory builds (`info_of`).
    """
    if info is not None and not isinstance(info, AttackInfo):
        raise AttackError(f"cannot register {name!r}: info must be an AttackInfo, got {info!r}")
    _REGISTRY.register(name, factory, info)


def available() -> list[str]:
    """Names `get` accepts: built-in, registered and installed through entry points."""
    return _REGISTRY.available()


def get(name: str, **params: Any) -> Attack:
    """Build the attack called `name` with `params`."""
    attack: Attack = _REGISTRY.get(name, **params)
    return attack


def resolve(name: str) -> Callable[..., Any]:
    """The class or factory called `name`, imported (or loaded from its plug-in) now."""
    return _REGISTRY.resolve(name)


def describe(name: str) -> AttackInfo:
    """What the attack called `name` is: its registered `AttackInfo`, or one read from the attack
    it builds with no parameters (`info_of`), for plug-ins registered without one."""
    info = _REGISTRY.info(name)
    if info is None:
        factory = resolve(name)
        try:
            info = info_of(get(name))
        except AttackError:
            if not isinstance(factory, type):
                raise
            info = _class_info(factory)  # it needs parameters: what its class says
    key = name.strip().lower().replace("_", "-")
    return dataclasses.replace(info, name=key)


def catalogue() -> dict[str, AttackInfo]:
    """`describe` of every available attack that loads (a missing package or a broken plug-in is left
    out: ``describe(name)`` says why)."""
    table = {}
    for name in available():
        try:
            table[name] = describe(name)
        except AttackError:
            continue
    return table


def info_of(attack: Attack) -> AttackInfo:
    """What an attack is, read from its attributes (the rule `evaluation.sanity.attack_kind` uses).

    Gradient-free: ``needs_gradients`` is False. Self-sized: ``eps_bounded`` is False. Single-step:
    ``single_step`` is True (FGSM, FGM, ARTFGSM and their subclasses), or ``steps`` (native) or ART's
    ``max_iter`` is 1. Anything else is an iterative gradient attack.
    """
    kind = _kind(attack.needs_gradients, attack.eps_bounded)
    steps = getattr(attack, "steps", None) or getattr(attack, "art_params", {}).get("max_iter")
    single = bool(getattr(attack, "single_step", False)) or steps == 1
    norm = getattr(getattr(attack, "norm", None), "name", None) or "inf"
    return AttackInfo(kind, str(norm), "single-step" if single else "iterative")


def _class_info(cls: type) -> AttackInfo:
    """`info_of` for an attack class that cannot be built without parameters."""
    kind = _kind(getattr(cls, "needs_gradients", True), getattr(cls, "eps_bounded", True))
    steps = "single-step" if getattr(cls, "single_step", False) else "iterative"
    return AttackInfo(kind, str(getattr(cls, "default_norm", "inf")), steps)


def _kind(needs_gradients: bool, eps_bounded: bool) -> str:
    if not needs_gradients:
        return "gradient-free"
    return "gradient" if eps_bounded else "self-sized"
