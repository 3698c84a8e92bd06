"""ART attacks that choose their own perturbation size: JSMA, DeepFool, Carlini & Wagner (L2, L-inf).

JSMA and DeepFool are defined here; Carlini & Wagner's two in `robustmask.attacks.art.carlini`, and
re-exported here. They take no eps (``eps_bounded = False``): call them as ``attack(model, x, y)``
and measure what they did with `robustmask.attacks.attack_report` (or compare the L-inf size of each
perturbation with a budget). Passing ``eps`` raises `AttackError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from robustmask._deprecation import renamed_parameters
from robustmask.attacks.art.adapter import ARTAttack
from robustmask.attacks.art.carlini import CarliniL2, CarliniLInf
from robustmask.attacks.art.estimator import art_estimator
from robustmask.attacks.art.parameters import STEPS, check_steps
from robustmask.errors import AttackError

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Model
    from robustmask.modelinfo import ModelInfo

__all__ = ["JSMA", "DeepFool", "CarliniL2", "CarliniLInf"]


def _predictions(model, info, x, attack):
    estimator = art_estimator(model, info, attack.clip)
    estimator.chunk_size = attack.batch_size
    return estimator.predict(x)


class JSMA(ARTAttack):
    """Jacobian-based Saliency Map Attack, ART's ``SaliencyMapMethod``: changes a few pixels a lot (L0).

    Papernot, McDaniel, Jha, Fredrikson, Celik & Swami, "The Limitations of Deep Learning in Adversarial
    Settings", IEEE EuroS&P 2016, https://arxiv.org/abs/1511.07528. Repeatedly picks the pair of input
    features whose increase most raises the target class (the saliency map of the Jacobian) and adds
    ``theta`` to them, until the target class wins or a fraction ``gamma`` of the features changed.

    JSMA is a targeted attack. ``targeted=True``: ``y`` are the targets. Untargeted (default): the
    target of each image is its runner-up class, the most likely class other than its label.

    Args:
        theta: change applied to each chosen feature (clipped to the valid range); the paper's +1 sets
            a feature of a [0, 1] image to its maximum.
        gamma: largest fraction of the features it may change; the paper's 14.5%.
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

        jsma = robustmask.attacks.JSMA(theta=1.0, gamma=0.1)
        x_adv = jsma(model, x_test, y_test)                         # no eps: it chooses its own
        x_tgt = robustmask.attacks.JSMA(targeted=True)(model, x_test, np.full(len(x_test), 0))
    """

    eps_bounded = False
    picks_targets = True

    def __init__(self, theta: float = 1.0, gamma: float = 0.145, **kwargs: Any) -> None:
        from art.attacks.evasion import SaliencyMapMethod

        if not 0.0 < float(gamma) <= 1.0:
            raise AttackError(f"JSMA: gamma is a fraction of the features in (0, 1], got {gamma!r}")
        if float(theta) == 0.0:
            raise AttackError("JSMA: theta must not be 0 (it is the change applied to each chosen feature)")
        super().__init__(SaliencyMapMethod, theta=float(theta), gamma=float(gamma), **kwargs)

    def art_labels(self, model: Model, info: ModelInfo, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.targeted:
            return y
        # Untargeted: aim each image at its runner-up class (never its own label).
        scores = np.where(y > 0.5, -np.inf, _predictions(model, info, x, self))
        return np.eye(info.num_classes, dtype=np.float32)[np.argmax(scores, axis=1)]


class DeepFool(ARTAttack):
    """DeepFool, ART's implementation: the smallest step across the nearest (linearised) class boundary.

    Moosavi-Dezfooli, Fawzi & Frossard, "DeepFool: a simple and accurate method to fool deep neural
    networks", CVPR 2016, https://arxiv.org/abs/1511.04599. Minimal L2 perturbations, then ``overshoot``
    (the paper's 0.02) to land past the boundary. Untargeted only.

    Images the model already misclassifies (prediction != ``y``) are returned unchanged: they are
    adversarial already. ART's DeepFool works on the model's logit differences; it gets them exactly,
    even for a softmax model (see `robustmask.attacks.ARTAttack`).

    Args:
        steps: largest number of linearisation steps (ART's ``max_iter``).
        overshoot: relative overshoot past the boundary (ART's ``epsilon``).
        nb_grads: how many of the most likely classes are considered.
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

        deepfool = robustmask.attacks.DeepFool(steps=50)
        x_adv = deepfool(model, x_test, y_test)               # no eps: it chooses its own
    """

    eps_bounded = False
    default_norm = "2"  # the distance it minimises; ART's class has no norm parameter

    @renamed_parameters(STEPS)
    def __init__(self, steps: int = 50, overshoot: float = 0.02, nb_grads: int = 10, **kwargs: Any) -> None:
        from art.attacks.evasion import DeepFool as ARTDeepFool

        if float(overshoot) < 0:
            raise AttackError(f"DeepFool: overshoot must be >= 0, got {overshoot!r}")
        steps = check_steps(steps, "steps")
        super().__init__(
            ARTDeepFool, max_iter=steps, epsilon=float(overshoot), nb_grads=int(nb_grads), **kwargs
        )

    def run_art(
        self, model: Model, info: ModelInfo, x: np.ndarray, y: np.ndarray, eps: float | None
    ) -> np.ndarray:
        # Only images the model gets right: the others are adversarial already.
        correct = np.argmax(_predictions(model, info, x, self), axis=1) == np.argmax(y, axis=1)
        adv = np.array(x, copy=True)
        if correct.any():
            adv[correct] = super().run_art(model, info, x[correct], y[correct], eps)
        return adv
