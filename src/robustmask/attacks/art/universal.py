"""Universal adversarial perturbation: one perturbation that fools the model on most images."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import numpy as np

from robustmask._deprecation import renamed_parameters
from robustmask.attacks.art.adapter import ARTAttack
from robustmask.attacks.art.parameters import EPOCHS, check_steps
from robustmask.attacks.art.whole_set import WholeSetAttack
from robustmask.attacks.whole_set import AppliesUniversalPerturbation
from robustmask.errors import AttackError

if TYPE_CHECKING:  # pragma: no cover
    from art.attacks.attack import EvasionAttack


__all__ = ["UniversalPerturbation"]

# Per-image attackers with an eps budget: by default they get the universal eps (and BIM/PGD 10 steps
# of 2.5 * eps / 10, the rule of `robustmask.attacks.ARTPGD`).
_BUDGETED = ("fgsm", "bim", "pgd")


class UniversalPerturbation(AppliesUniversalPerturbation, WholeSetAttack, ARTAttack):
    """Universal adversarial perturbation, ART's ``UniversalPerturbation``: one perturbation for all images.

    Moosavi-Dezfooli, Fawzi, Fawzi & Frossard, "Universal adversarial perturbations", CVPR 2017,
    https://arxiv.org/abs/1610.08401. Goes over the images, adds to the shared perturbation the
    (DeepFool, by default) step that fools the model on each image it does not fool yet, and projects
    it onto the eps ball, until it fools a fraction ``1 - delta`` of the images or ``epochs`` passes
    are done. It is the "one matrix for all images" that Sheikh & Zafar (2023) name as future work.

    eps -> ART ``eps``, the radius of the universal perturbation in ``norm`` (L-inf by default). One call computes one
    perturbation from all the images it is given (the call is not split into batches). Afterwards:

    * ``attack.perturbation``: the perturbation, shape of one image (of the last eps in the call);
    * ``attack.fooling_rate``: the fraction of the given images it fooled;
    * ``attack.apply(x)``: the perturbation added to new images, clipped to the valid range.

    Args:
        attacker: ART's name of the per-image attack: ``"deepfool"`` (the paper), ``"fgsm"``, ``"pgd"``...
        attacker_params: its parameters, by ART's names (``verbose=False`` is added where it has one).
            ``"fgsm"``, ``"bim"`` and ``"pgd"`` get ``eps`` = the universal eps unless given (BIM/PGD also
            ``max_iter=10`` steps of ``eps_step = 2.5 * eps / 10``).
        delta: stop once a fraction ``1 - delta`` of the images is fooled.
        epochs: passes over the images (ART's ``max_iter``), as for `SGDUniversalPerturbation`.
        **kwargs: the keyword arguments below.

    Keyword Args:
        clip (tuple[float, float] | None): the valid input range, ART's ``clip_values``, default ``(0, 1)``.
        norm (str | int | None): ART's ``norm`` (``"inf"``, ``2`` or ``1``) where the ART attack has one;
            ``None``: the class's default.
        from_logits (bool | None): ``None`` (default) detects whether the model ends in softmax or outputs
            logits; True or False says which.
        targeted (bool): ``y`` holds target classes and the attack pushes towards them (default False).
        batch_size (int | None): images per ART call and forward pass, and ART's ``batch_size`` (default
            128).
        rel_stepsize (float | None): ART's ``eps_step`` as a fraction of eps (default: the rule above; unused
            without eps).
        abs_stepsize (float | None): ART's ``eps_step`` in input units, for every eps; overrides
            rel_stepsize.
        black_box (bool | None): give ART only the model's predictions; ``None`` (default) decides from the
            attack class.
        outputs (str | None): what ART sees the model output: ``"log_probabilities"`` or ``"probabilities"``;
            ``None`` picks.
        loss (None): not supported (ART attacks use their own loss): anything but None raises `AttackError`.
        **params (Any): any other parameter of the ART attack class, passed on unchanged (checked against its
            signature).

    Example::

        uap = robustmask.attacks.UniversalPerturbation(epochs=5)
        x_adv = uap(model, x_train[:500], y_train[:500], eps=0.02)
        x_test_adv = uap.apply(x_test)            # the same perturbation on unseen images
    """

    @renamed_parameters(EPOCHS)
    def __init__(
        self,
        attacker: str = "deepfool",
        attacker_params: dict[str, Any] | None = None,
        delta: float = 0.2,
        epochs: int = 10,
        **kwargs: Any,
    ) -> None:
        from art.attacks.evasion import UniversalPerturbation as ARTUniversalPerturbation

        inner = ARTUniversalPerturbation.attacks_dict.get(attacker)
        if inner is None:
            raise AttackError(
                f"UniversalPerturbation: unknown attacker {attacker!r}; ART offers "
                f"{', '.join(sorted(ARTUniversalPerturbation.attacks_dict))}"
            )
        module, _, name = inner.rpartition(".")
        inner_cls = getattr(importlib.import_module(module), name)
        params = dict(attacker_params or {})
        if "verbose" in getattr(inner_cls, "attack_params", ()) and "verbose" not in params:
            params["verbose"] = False
        if not 0.0 <= float(delta) <= 1.0:
            raise AttackError(f"UniversalPerturbation: delta must be in [0, 1], got {delta!r}")
        super().__init__(
            ARTUniversalPerturbation,
            attacker=attacker,
            attacker_params=params,
            delta=float(delta),
            max_iter=check_steps(epochs, "epochs"),
            **kwargs,
        )
        self.perturbation: np.ndarray | None = None
        self.fooling_rate: float | None = None

    def art_kwargs(self, eps: float | None) -> dict[str, Any]:
        kwargs = super().art_kwargs(eps)
        params = dict(kwargs["attacker_params"])
        if self.art_params["attacker"] in _BUDGETED and eps is not None:
            # A budgeted per-image attack gets the universal budget unless told otherwise.
            params.setdefault("eps", float(eps))
            params.setdefault("norm", self.norm.order)
            if self.art_params["attacker"] != "fgsm":
                params.setdefault("max_iter", 10)
                params.setdefault("eps_step", 2.5 * params["eps"] / params["max_iter"])
            kwargs["attacker_params"] = params
        return kwargs

    def after_run(self, art_attack: EvasionAttack, x: np.ndarray, adv: np.ndarray) -> None:
        noise = art_attack.noise
        self.perturbation = (
            np.zeros(x.shape[1:], np.float32) if noise is None else np.asarray(noise[0], np.float32)
        )
        self.fooling_rate = art_attack.fooling_rate
