"""ART's attack classes, their parameters, and robustmask's names for those parameters.

What the adapters know about an ART evasion attack class before building one: whether it takes one
step, only queries predictions or reads probabilities; the class a name means; its constructor's
parameters; the ``eps_step / eps`` ratio it defaults to; and the parameters robustmask sets itself.

One vocabulary
--------------
The named adapters (`ARTPGD`, `ARTAutoPGD`, `ARTSquareAttack`...) take the names of robustmask's native
attacks, which mean the same there; the generic ``ARTAttack(cls, **params)`` passes ART's own names
through unchanged. robustmask's name -> ART's:

* ``eps`` -> ``eps`` (given at call time); ``rel_stepsize`` -> ``eps_step / eps``; ``abs_stepsize``
  -> ``eps_step`` (in input units).
* ``steps`` -> ``max_iter``: iterations on each image (per run).
* ``restarts`` -> ``num_random_init`` (FGSM, PGD), ``nb_random_init`` (ARTAutoPGD), ``nb_restarts``
  (Square): runs, a successful one kept. ART's three loops each run ``max(1, n)`` times and native
  `robustmask.attacks.PGD` runs ``restarts`` times, so ``restarts=3`` is three runs everywhere.
* ``random_start`` -> ``num_random_init > 0`` (FGSM, PGD): ART's ``num_random_init=0`` (one run from
  x) is ``random_start=False``.
* ``epochs`` -> ``max_iter`` of the universal perturbation and the patch: passes over all the
  images of a call, as for native `robustmask.attacks.SGDUniversalPerturbation` and the trainers.

The old names (``max_iter``, ``nb_restarts``, ``num_random_init``, ``nb_random_init``) still work
and warn (`robustmask._deprecation.renamed_parameters`).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from robustmask._validation import check_positive_int
from robustmask.attacks import norms
from robustmask.attacks.art.estimator import OUTPUTS
from robustmask.attacks.bim import check_steps
from robustmask.errors import AttackError

if TYPE_CHECKING:  # pragma: no cover - ART is imported when an attack is built
    from art.attacks.attack import EvasionAttack

__all__ = [
    "BLACK_BOX_ART_ATTACKS",
    "EPOCHS",
    "PROBABILITY_ART_ATTACKS",
    "RANDOM_INITS",
    "SINGLE_STEP_ART_ATTACKS",
    "STEPS",
    "art_capabilities",
    "art_default_ratio",
    "art_outputs",
    "art_parameters",
    "check_art_params",
    "check_steps",
    "num_random_init",
    "resolve_art_class",
]

# ART attacks (by class name) that take one gradient step: ARTAttack("FastGradientMethod") is single-step.
SINGLE_STEP_ART_ATTACKS = frozenset({"FastGradientMethod"})
# ART attacks (by class name) that only query predictions: given a black-box estimator by default.
BLACK_BOX_ART_ATTACKS = frozenset(
    {
        "SquareAttack",
        "HopSkipJump",
        "BoundaryAttack",
        "GeoDA",
        "SignOPTAttack",
        "SimBA",
        "ZooAttack",
        "PixelAttack",
        "ThresholdAttack",
    }
)
# ART attacks that read the estimator's outputs as probabilities: they see probabilities, not
# log-probabilities (VirtualAdversarialMethod refuses anything else).
PROBABILITY_ART_ATTACKS = frozenset({"NewtonFool", "VirtualAdversarialMethod"})

# Parameters robustmask sets itself, and what to do instead of passing them.
RESERVED = {
    "eps": "pass eps when calling the attack: attack(model, x, y, eps=...)",
    "eps_step": "use rel_stepsize (a fraction of eps) or abs_stepsize",
    "estimator": "the estimator is built from the Keras model",
    "classifier": "the estimator is built from the Keras model",
}

# The old names of the named adapters' parameters (see the module docstring), for `renamed_parameters`.
STEPS = {"max_iter": "steps"}
EPOCHS = {"max_iter": "epochs"}


def random_inits(old: object) -> dict[str, Any]:
    """ART's old ``num_random_init`` as ``restarts`` and ``random_start`` (0: one run from x)."""
    count = check_positive_int(old, "num_random_init", allow_zero=True, error=AttackError)
    return {"restarts": max(1, count), "random_start": count > 0}


RANDOM_INITS = ("restarts=... (and random_start=False for 0)", random_inits)


def num_random_init(restarts: object, random_start: bool, where: str) -> int:
    """ART's ``num_random_init`` for `restarts` runs from a random start (0: one run from x)."""
    runs = check_steps(restarts, "restarts")
    if runs > 1 and not random_start:
        raise AttackError(
            f"{where}: restarts > 1 needs random_start=True: without it every restart is the same"
        )
    return runs if random_start else 0


def resolve_art_class(art_attack_class: type[EvasionAttack] | str) -> type[EvasionAttack]:
    """The ART evasion attack class given, or the one of that name in ``art.attacks.evasion``."""
    if isinstance(art_attack_class, str):
        import art.attacks.evasion as evasion

        cls = getattr(evasion, art_attack_class, None)
        if cls is None:
            raise AttackError(f"art.attacks.evasion has no attack called {art_attack_class!r}")
        return cls
    if not inspect.isclass(art_attack_class):
        raise AttackError(f"ARTAttack needs an ART evasion attack class, got {art_attack_class!r}")
    from art.attacks.attack import EvasionAttack

    if not issubclass(art_attack_class, EvasionAttack):
        raise AttackError(
            f"{art_attack_class.__name__} is not an ART evasion attack (art.attacks.EvasionAttack)"
        )
    return art_attack_class


def art_parameters(cls: type[EvasionAttack]) -> dict[str, Any]:
    """The ART constructor's parameters (after the estimator) and their defaults."""
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]
    return {p.name: p.default for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def art_default_ratio(signature: dict[str, Any]) -> float:
    """ART's own ``eps_step / eps`` from its defaults (1/3 where it has none)."""
    eps, step = signature.get("eps"), signature.get("eps_step")
    if isinstance(eps, (int, float)) and isinstance(step, (int, float)) and eps > 0 and step > 0:
        return float(step) / float(eps)
    return 1.0 / 3.0


def art_capabilities(
    cls: type[EvasionAttack], black_box: bool | None, needs_gradients: bool = True
) -> tuple[bool, bool, bool]:
    """What an ART class is: (eps-bounded, needs gradients, single-step). Black box when asked
    (`black_box`), else when the adapter says so (``needs_gradients=False``) or the class is known to be."""
    if black_box is None:
        black_box = not needs_gradients or cls.__name__ in BLACK_BOX_ART_ATTACKS
    return "eps" in art_parameters(cls), not black_box, cls.__name__ in SINGLE_STEP_ART_ATTACKS


def art_outputs(where: str, cls: type[EvasionAttack], outputs: str | None) -> str:
    """What ART sees the model output (`robustmask.attacks.art.estimator.OUTPUTS`): `outputs`, or by
    default probabilities for the attacks that read them and log-probabilities for the others."""
    if outputs is None:
        return "probabilities" if cls.__name__ in PROBABILITY_ART_ATTACKS else "log_probabilities"
    if outputs not in OUTPUTS:
        raise AttackError(f"{where}: outputs must be one of {', '.join(OUTPUTS)}, got {outputs!r}")
    return outputs


def check_art_params(
    where: str,
    cls: type[EvasionAttack],
    params: dict[str, Any],
    targeted: bool = False,
    norm: norms.Norm | None = None,
    default_norm: str = "inf",
) -> None:
    """Refuse, in one line, parameters robustmask sets itself or the ART class does not take, a
    targeted attack (`targeted`: robustmask does not pick the targets) of a class without a targeted
    mode, and a `norm` other than `default_norm` for a class without a norm parameter."""
    signature = art_parameters(cls)
    for reserved, use in RESERVED.items():
        if reserved in params:
            raise AttackError(f"{where}: do not pass {reserved}= to {cls.__name__}; {use}")
    unknown = sorted(set(params) - set(signature))
    if unknown:
        raise AttackError(
            f"{where}: {cls.__name__} has no parameter(s) {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(signature)) or 'none'}"
        )
    for own in ("targeted", "norm"):
        if own in params:
            raise AttackError(f"{where}: pass {own}= as robustmask's own argument, not among ART's params")
    if targeted and "targeted" not in signature:
        raise AttackError(f"{where}: {cls.__name__} has no targeted mode; use targeted=False")
    only = norms.get(default_norm)
    if norm is not None and "norm" not in signature and norm != only:
        raise AttackError(
            f"{where}: {cls.__name__} has no norm parameter and works in {only.label} only; "
            f"use norm={default_norm!r}"
        )
