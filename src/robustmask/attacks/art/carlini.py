"""Carlini & Wagner's attacks through ART (L2, L-inf): they choose their own perturbation size.

Like the other attacks of `robustmask.attacks.art.minimal` they take no eps (``eps_bounded = False``):
call them as ``attack(model, x, y)`` and measure what they did with `robustmask.attacks.attack_report`.
Passing ``eps`` raises `AttackError`.
"""

from __future__ import annotations

from typing import Any

from robustmask._deprecation import renamed_parameters
from robustmask.attacks.art.adapter import ARTAttack
from robustmask.attacks.art.parameters import STEPS, check_steps

__all__ = ["CarliniL2", "CarliniLInf"]


class CarliniL2(ARTAttack):
    """Carlini & Wagner L2 attack, ART's ``CarliniL2Method``: small L2 perturbations by optimisation.

    Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017,
    https://arxiv.org/abs/1608.04644. Minimises ``||delta||_2^2 + c * f(x + delta)`` in tanh space, with
    f the logit-margin loss and c found by binary search. Untargeted or targeted (``y`` = targets).

    Args:
        confidence: margin (in logits) by which the adversarial class must win (the paper's kappa).
        learning_rate: the inner optimiser's step.
        binary_search_steps: steps of the search for c.
        steps: the inner optimiser's iterations for each c (ART's ``max_iter``).
        initial_const: the first c of that search.
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

        cw = robustmask.attacks.CarliniL2(binary_search_steps=5, steps=20)
        x_adv = cw(model, x_test, y_test)                     # no eps: it chooses its own
    """

    eps_bounded = False
    default_norm = "2"  # the distance it minimises; ART's class has no norm parameter

    @renamed_parameters(STEPS)
    def __init__(
        self,
        confidence: float = 0.0,
        learning_rate: float = 0.01,
        binary_search_steps: int = 10,
        steps: int = 10,
        initial_const: float = 0.01,
        **kwargs: Any,
    ) -> None:
        from art.attacks.evasion import CarliniL2Method

        super().__init__(
            CarliniL2Method,
            confidence=float(confidence),
            learning_rate=float(learning_rate),
            binary_search_steps=int(binary_search_steps),
            max_iter=check_steps(steps, "steps"),
            initial_const=float(initial_const),
            **kwargs,
        )


class CarliniLInf(ARTAttack):
    """Carlini & Wagner L-inf attack, ART's ``CarliniLInfMethod``: the smallest L-inf perturbation it finds.

    Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017,
    https://arxiv.org/abs/1608.04644. Shrinks an L-inf bound tau by ``decrease_factor`` while the
    attack still succeeds. ART's version takes no budget, so it is not eps-bounded: call it without
    eps and compare the size of its perturbations with a budget.

    Cost: ART runs it one image at a time; for each tau (starting at 1, times ``decrease_factor``
    while it succeeds, down to 1/256) it tries every c from ``initial_const`` to ``largest_const``
    (times ``const_factor``), each with ``steps`` optimiser steps. With the paper's defaults that is
    thousands of gradient computations per image; ``learning_rate=0.1, initial_const=0.5,
    largest_const=2.0, decrease_factor=0.5`` is a quick approximation.

    Args:
        confidence: margin (in logits) by which the adversarial class must win.
        learning_rate: the inner optimiser's step.
        steps: the inner optimiser's iterations for each c (ART's ``max_iter``).
        decrease_factor: how tau shrinks while the attack succeeds.
        initial_const: the first c tried.
        largest_const: the largest c tried.
        const_factor: how c grows.
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

        cw = robustmask.attacks.CarliniLInf(steps=10)
        x_adv = cw(model, x_test, y_test)
    """

    eps_bounded = False

    @renamed_parameters(STEPS)
    def __init__(
        self,
        confidence: float = 0.0,
        learning_rate: float = 0.01,
        steps: int = 10,
        decrease_factor: float = 0.9,
        initial_const: float = 1e-5,
        largest_const: float = 20.0,
        const_factor: float = 2.0,
        **kwargs: Any,
    ) -> None:
        from art.attacks.evasion import CarliniLInfMethod

        super().__init__(
            CarliniLInfMethod,
            confidence=float(confidence),
            learning_rate=float(learning_rate),
            max_iter=check_steps(steps, "steps"),
            decrease_factor=float(decrease_factor),
            initial_const=float(initial_const),
            largest_const=float(largest_const),
            const_factor=float(const_factor),
            **kwargs,
        )
