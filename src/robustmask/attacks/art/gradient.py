"""ART's FGSM, BIM and PGD: the twins of the native `FGSM`, `BIM` and `PGD`, to check one against the other.

All are eps-bounded: ``attack(model, x, y, eps=...)`` sets ART's ``eps`` and derives its ``eps_step``
from eps (each class says how; ``abs_stepsize`` overrides with a step in input units). They take the
native attacks' names and step-size rules: ``steps`` (ART's ``max_iter``), ``restarts`` and
``random_start`` (ART's ``num_random_init``), ``rel_stepsize``; see `robustmask.attacks.art.parameters`.
MI-FGSM and ARTAutoPGD, which adapt their steps, are in `robustmask.attacks.art.adaptive` (and importable
from here as before).
"""

from __future__ import annotations

from typing import Any

from robustmask._deprecation import renamed_parameters
from robustmask.attacks.art.adapter import ARTAttack
from robustmask.attacks.art.adaptive import MIFGSM, ARTAutoPGD
from robustmask.attacks.art.parameters import RANDOM_INITS, STEPS, check_steps, num_random_init

__all__ = ["ARTFGSM", "ARTBIM", "ARTPGD", "MIFGSM", "ARTAutoPGD"]


class ARTFGSM(ARTAttack):
    """Fast Gradient Sign Method, ART's implementation (``FastGradientMethod``, norm inf).

    Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015,
    https://arxiv.org/abs/1412.6572. Gives the same images as the native `robustmask.attacks.FGSM`
    (same loss, same gradient); useful to check one against the other.

    eps -> ART ``eps`` (the single step); ``eps_step`` is unused (``minimal=False``).

    Args:
        random_start: step from a uniform random point of the eps ball (ART's ``num_random_init > 0``);
            False (default) is the plain FGSM.
        restarts: runs, each from a random start (>= 1; > 1 needs random_start). ART keeps the run
            that fools the most images of the batch, and returns the batch unperturbed when no run
            fools any. ART's ``num_random_init`` is ``restarts`` with a random start, else 0.
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

        fgsm = robustmask.attacks.ARTFGSM()
        x_adv = fgsm(model, x_test, y_test, eps=0.004)
    """

    single_step = True

    @renamed_parameters({"num_random_init": RANDOM_INITS})
    def __init__(self, random_start: bool = False, restarts: int = 1, **kwargs: Any) -> None:
        from art.attacks.evasion import FastGradientMethod

        inits = num_random_init(restarts, random_start, "ARTFGSM")
        super().__init__(FastGradientMethod, num_random_init=inits, **kwargs)


class ARTBIM(ARTAttack):
    """Basic Iterative Method, ART's implementation (``BasicIterativeMethod``).

    Kurakin, Goodfellow & Bengio, "Adversarial examples in the physical world", ICLR 2017 workshop,
    https://arxiv.org/abs/1607.02533. Starts at x, ``steps`` signed-gradient steps, each projected
    onto the eps ball.

    eps -> ART ``eps``; ``eps_step = 1.25 * eps / steps`` (the native `BIM`'s rule: Kurakin et al.'s
    min(eps + 4, 1.25 eps) iterations of one level add up to 1.25 eps), or ``rel_stepsize * eps``.

    Args:
        steps: iterations (>= 1; ART's ``max_iter``).
        rel_stepsize: ART's ``eps_step`` as a fraction of eps; ``None``: 1.25 / steps.
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

        bim = robustmask.attacks.ARTBIM(steps=10)
        x_adv = bim(model, x_test, y_test, eps=0.004)
    """

    @renamed_parameters(STEPS)
    def __init__(self, steps: int = 10, rel_stepsize: float | None = None, **kwargs: Any) -> None:
        from art.attacks.evasion import BasicIterativeMethod

        steps = check_steps(steps, "steps")
        rel_stepsize = 1.25 / steps if rel_stepsize is None else rel_stepsize
        super().__init__(BasicIterativeMethod, max_iter=steps, rel_stepsize=rel_stepsize, **kwargs)


class ARTPGD(ARTAttack):
    """Projected Gradient Descent with random restarts, ART's implementation (``ProjectedGradientDescent``).

    Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep Learning Models Resistant to Adversarial
    Attacks", ICLR 2018, https://arxiv.org/abs/1706.06083. Starts at a random point of the eps ball
    (``restarts`` runs, ART keeps a successful one), then ``steps`` projected signed-gradient steps, as the
    native `PGD` with the same ``steps``, ``restarts`` and ``random_start``.

    eps -> ART ``eps``; ``eps_step = 2.5 * eps / steps`` (Madry et al.'s rule, as in their
    robustness library: enough to cross the ball from a random start), or ``rel_stepsize * eps``.

    Args:
        steps: iterations per restart (>= 1; ART's ``max_iter``).
        restarts: runs, each from a random start (>= 1; > 1 needs random_start); each image keeps its
            first run unless a later one fools the model. ART's ``num_random_init`` is ``restarts`` with
            a random start, else 0.
        rel_stepsize: ART's ``eps_step`` as a fraction of eps; ``None``: 2.5 / steps.
        random_start: start from a uniform random point of the eps ball (else from x, i.e. BIM).
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

        pgd = robustmask.attacks.ARTPGD(steps=20, restarts=3)
        x_adv = pgd(model, x_test, y_test, eps=0.004)
    """

    @renamed_parameters({**STEPS, "num_random_init": RANDOM_INITS})
    def __init__(
        self,
        steps: int = 10,
        restarts: int = 1,
        rel_stepsize: float | None = None,
        random_start: bool = True,
        **kwargs: Any,
    ) -> None:
        from art.attacks.evasion import ProjectedGradientDescent

        steps = check_steps(steps, "steps")
        inits = num_random_init(restarts, random_start, "ARTPGD")
        rel_stepsize = 2.5 / steps if rel_stepsize is None else rel_stepsize
        super().__init__(
            ProjectedGradientDescent,
            max_iter=steps,
            num_random_init=inits,
            rel_stepsize=rel_stepsize,
            **kwargs,
        )
