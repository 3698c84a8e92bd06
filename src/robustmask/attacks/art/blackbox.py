"""Black-box ART attacks: Square (score-based) and HopSkipJump (decision-based).

They never touch the model's gradients: ART gets a ``BlackBoxClassifierNeuralNetwork`` over a predict
function that returns NumPy arrays and counts its queries. After a call, ``attack.queries`` holds the
number of images the model was asked to classify (the labels the attack looked up itself included).
A defence that only masks gradients does not stop them, which makes them a check on gradient masking
(Carlini et al. 2019, "On Evaluating Adversarial Robustness", https://arxiv.org/abs/1902.06705).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robustmask._deprecation import renamed_parameters
from robustmask.attacks.art.adapter import ARTAttack
from robustmask.attacks.art.parameters import STEPS, check_steps

__all__ = ["ARTSquareAttack", "HopSkipJump"]


class ARTSquareAttack(ARTAttack):
    """Square Attack, ART's implementation: random square-shaped updates at the corners of the eps ball.

    Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient black-box adversarial
    attack via random search", ECCV 2020, https://arxiv.org/abs/1912.00049. Score-based: it uses the
    model's output scores (margin of the true class), never its gradients. Untargeted. The native
    `robustmask.attacks.SquareAttack` runs the L-inf attack with a third of the queries per step and
    in a fraction of the time; this adapter is the one with an L2 form.

    eps -> ART ``eps`` (L-inf). ``attack.queries``: model queries of the last call.

    Args:
        steps: iterations (each queries the images still correctly classified once; ART's ``max_iter``).
        p_init: initial fraction of pixels per square update.
        restarts: runs, each on the images still correctly classified (>= 1; ART's ``nb_restarts``).
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

        square = robustmask.attacks.ARTSquareAttack(steps=1000, norm=2)
        x_adv = square(model, x_test, y_test, eps=0.5)
        print(square.queries)
    """

    needs_gradients = False

    @renamed_parameters({**STEPS, "nb_restarts": "restarts"})
    def __init__(self, steps: int = 100, p_init: float = 0.8, restarts: int = 1, **kwargs: Any) -> None:
        from art.attacks.evasion import SquareAttack

        super().__init__(
            SquareAttack,
            max_iter=check_steps(steps, "steps"),
            p_init=float(p_init),
            nb_restarts=check_steps(restarts, "restarts"),
            **kwargs,
        )


class HopSkipJump(ARTAttack):
    """HopSkipJump, ART's implementation: a decision-based attack that needs only the predicted labels.

    Chen, Jordan & Wainwright, "HopSkipJumpAttack: A Query-Efficient Decision-Based Attack", IEEE S&P
    2020, https://arxiv.org/abs/1904.02144. Starts from an image of another class (or noise) and walks
    along the decision boundary towards x, estimating its direction from label queries only.

    It minimises the perturbation instead of respecting a budget, so it takes no eps
    (``eps_bounded = False``); ``norm`` is the distance it minimises (``np.inf`` by default, robustmask's
    threat model; the paper also has 2). Untargeted or targeted (``y`` = targets).
    ``attack.queries``: model queries of the last call.

    Args:
        norm: the distance it minimises: ``np.inf`` (default) or ``2``.
        steps: iterations of the boundary walk (ART's ``max_iter``).
        max_eval: most queries per gradient estimate.
        init_eval: queries of the first gradient estimate.
        init_size: tries to find a starting image of another class.
        **kwargs: the keyword arguments below.

    Keyword Args:
        clip (tuple[float, float] | None): the valid input range, ART's ``clip_values``, default ``(0, 1)``.
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

        hsj = robustmask.attacks.HopSkipJump(steps=20, max_eval=1000)
        x_adv = hsj(model, x_test, y_test)
        print(hsj.queries)
    """

    eps_bounded = False
    needs_gradients = False

    @renamed_parameters(STEPS)
    def __init__(
        self,
        norm: str | float = np.inf,
        steps: int = 50,
        max_eval: int = 10000,
        init_eval: int = 100,
        init_size: int = 100,
        **kwargs: Any,
    ) -> None:
        from art.attacks.evasion import HopSkipJump as ARTHopSkipJump

        super().__init__(
            ARTHopSkipJump,
            norm=norm,
            max_iter=check_steps(steps, "steps"),
            max_eval=int(max_eval),
            init_eval=int(init_eval),
            init_size=int(init_size),
            **kwargs,
        )
