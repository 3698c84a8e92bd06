"""Gradient attacks from ART that adapt their steps: MI-FGSM (momentum) and ARTAutoPGD (the step size).

Both are eps-bounded, L-inf by default: ``attack(model, x, y, eps=...)`` sets ART's ``eps`` and
derives its ``eps_step`` from eps (each class says how; ``abs_stepsize`` overrides with a step in
input units). They take the native attacks' names: ``steps`` (ART's ``max_iter``), ``restarts``
(ARTAutoPGD: ART's ``nb_random_init``), ``rel_stepsize``; see `robustmask.attacks.art.parameters`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robustmask._deprecation import renamed_parameters
from robustmask.attacks.art.adapter import ARTAttack
from robustmask.attacks.art.estimator import art_estimator
from robustmask.attacks.art.parameters import STEPS, check_steps
from robustmask.errors import AttackError

if TYPE_CHECKING:  # pragma: no cover
    from art.attacks.attack import EvasionAttack
    from art.estimators.estimator import BaseEstimator

    from robustmask._types import Model
    from robustmask.modelinfo import ModelInfo

__all__ = ["MIFGSM", "ARTAutoPGD"]


class MIFGSM(ARTAttack):
    """Momentum Iterative FGSM, ART's ``MomentumIterativeMethod``.

    Dong, Liao, Pang, Su, Zhu, Hu & Li, "Boosting Adversarial Attacks with Momentum", CVPR 2018,
    https://arxiv.org/abs/1710.06081. Accumulates a velocity of L1-normalised gradients (decay ``mu``)
    and steps along its sign; transfers better to other models than BIM.

    eps -> ART ``eps``; ``eps_step = eps / steps`` (the paper's alpha = eps / T), or
    ``rel_stepsize * eps``. Defaults are the paper's: T = 10, mu = 1.0.

    Args:
        steps: iterations T (>= 1; the paper's 10; ART's ``max_iter``).
        decay: the momentum's decay mu (the paper's 1.0).
        rel_stepsize: ART's ``eps_step`` as a fraction of eps; ``None``: 1 / steps.
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

        mifgsm = robustmask.attacks.MIFGSM(steps=10, decay=1.0)
        x_adv = mifgsm(model, x_test, y_test, eps=0.004)
    """

    @renamed_parameters(STEPS)
    def __init__(
        self, steps: int = 10, decay: float = 1.0, rel_stepsize: float | None = None, **kwargs: Any
    ) -> None:
        from art.attacks.evasion import MomentumIterativeMethod

        steps = check_steps(steps, "steps")
        rel_stepsize = 1.0 / steps if rel_stepsize is None else rel_stepsize
        super().__init__(
            MomentumIterativeMethod, max_iter=steps, decay=float(decay), rel_stepsize=rel_stepsize, **kwargs
        )

    def make_art_attack(self, estimator: BaseEstimator, eps: float | None) -> EvasionAttack:
        # ART 1.20 disables momentum in its TensorFlow implementation (ART issue #2439) and picks that one
        # for a TensorFlow estimator; its NumPy implementation is correct: use it.
        from art.attacks.evasion.projected_gradient_descent.projected_gradient_descent_numpy import (
            ProjectedGradientDescentNumpy,
        )

        attack = super().make_art_attack(estimator, eps)
        if not isinstance(getattr(attack, "_attack", None), ProjectedGradientDescentNumpy):
            kwargs = self.art_kwargs(eps)
            attack._attack = ProjectedGradientDescentNumpy(
                estimator=estimator,
                norm=self.norm.order,
                eps=kwargs["eps"],
                eps_step=kwargs["eps_step"],
                decay=kwargs["decay"],
                max_iter=kwargs["max_iter"],
                targeted=kwargs["targeted"],
                num_random_init=0,
                batch_size=kwargs["batch_size"],
                verbose=kwargs["verbose"],
            )
        return attack


_APGD_LOSSES = {
    "ce": "cross_entropy",
    "cross_entropy": "cross_entropy",
    "dlr": "difference_logits_ratio",
    "difference_logits_ratio": "difference_logits_ratio",
}


class ARTAutoPGD(ARTAttack):
    """Auto-PGD, ART's ``AutoProjectedGradientDescent``: PGD with a step size it adapts by itself.

    Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020, https://arxiv.org/abs/2003.01690 (APGD-CE and APGD-DLR of
    AutoAttack), in L-inf, L2 or L1. For L-inf use the native `robustmask.attacks.AutoPGD`: ART's
    loop keeps only its last iterate, so an image the search fooled and then left counts as robust
    here (the paper's attack counts it as fooled), and it runs in NumPy.

    eps -> ART ``eps``; ``eps_step = 2 * eps`` (the paper's initial step, which APGD then halves as
    needed), or ``rel_stepsize * eps``.

    Args:
        loss_type: ``"ce"`` (cross-entropy, default) or ``"dlr"`` (Difference of Logits Ratio, which is
            invariant to the scale of the logits). DLR needs logits and at least 3 classes. ART sees
            log-probabilities, which differ from the logits by one constant per image, and DLR is
            invariant to that constant: so DLR works on softmax models too, but not on 2-class models
            (it needs a third-largest logit); that is checked at call time.
        steps: iterations per restart (the paper: 100; ART's ``max_iter``).
        restarts: runs, each from a random start on the images not yet fooled (>= 1; ART's
            ``nb_random_init``).
        rel_stepsize: the initial step as a fraction of eps; ``None``: 2.
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

        apgd = robustmask.attacks.ARTAutoPGD(loss_type="dlr", steps=100, norm=2)
        x_adv = apgd(model, x_test, y_test, eps=0.004)
    """

    @renamed_parameters({**STEPS, "nb_random_init": "restarts"})
    def __init__(
        self,
        loss_type: str = "ce",
        steps: int = 100,
        restarts: int = 1,
        rel_stepsize: float | None = None,
        **kwargs: Any,
    ) -> None:
        from art.attacks.evasion import AutoProjectedGradientDescent

        if loss_type not in _APGD_LOSSES:
            raise AttackError(f"ARTAutoPGD: loss_type must be 'ce' or 'dlr', got {loss_type!r}")
        self.loss_type = loss_type
        self._loss = _APGD_LOSSES[loss_type]
        super().__init__(
            AutoProjectedGradientDescent,
            max_iter=check_steps(steps, "steps"),
            nb_random_init=check_steps(restarts, "restarts"),
            rel_stepsize=2.0 if rel_stepsize is None else rel_stepsize,
            **kwargs,
        )

    def estimator(self, model: Model, info: ModelInfo) -> BaseEstimator:
        # ART's own loss_type path builds a fresh, uncompiled estimator on every call; an estimator whose
        # loss is already CE or DLR (compiled, cached) is given instead, with ART's loss_type=None.
        estimator = art_estimator(model, info, self.clip, loss=self._loss)
        estimator.chunk_size = self.batch_size
        return estimator

    def check_model(self, model: Model, info: ModelInfo) -> None:
        if self._loss == "difference_logits_ratio" and info.num_classes < 3:
            raise AttackError(
                f"ARTAutoPGD(loss_type='dlr') needs a model with at least 3 classes (DLR divides by the gap between "
                f"the largest and third-largest logit); this model has {info.num_classes}: use loss_type='ce'"
            )
