"""Basic Iterative Method (iterative FGSM), in any norm."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import tensorflow as tf

from robustmask._validation import check_positive_int, check_positive_number
from robustmask.attacks.gradient_attack import GradientAttack
from robustmask.errors import AttackError

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Model, TensorEps


class BIM(GradientAttack):
    """Basic Iterative Method: FGSM repeated in small steps, projected onto the eps ball after each.

    Kurakin, Goodfellow & Bengio, "Adversarial examples in the physical world", ICLR 2017 workshop,
    https://arxiv.org/abs/1607.02533. ``x_0 = x``, ``x_{k+1} = Clip_{x,eps}(x_k + alpha * sign(grad))``.
    It starts at x (no random start: that is `PGD`). With ``norm=2`` (or 1) each step follows that
    norm's steepest ascent (``g / ||g||_2``) and projects onto its ball (`robustmask.attacks.norms`).

    Step size: Kurakin et al. take alpha = 1 intensity level and min(eps + 4, 1.25 eps) iterations
    (eps in levels), so at large eps the iterations travel 1.25 eps in all. The default keeps that
    total for any eps and step count: ``alpha = 1.25 * eps / steps`` (rel_stepsize = 1.25 / steps).
    ``abs_stepsize=1/255, steps=round(min(eps*255 + 4, 1.25*eps*255))`` is their exact recipe.

    Args:
        steps: gradient steps (>= 1).
        rel_stepsize: alpha as a fraction of eps; ``None`` for 1.25 / steps.
        abs_stepsize: alpha in input units, for every eps; overrides rel_stepsize.
        **kwargs: the keyword arguments below.

    Keyword Args:
        clip (tuple[float, float] | None): the valid input range, default ``(0, 1)``; ``None`` turns clipping
            off.
        norm (str | int): the threat model eps bounds: ``"inf"`` (L-inf, default), ``2`` or ``1``.
        loss (None | str | Callable): ``None`` (cross-entropy from log-probabilities, default), ``"keras"``
            (the paper's clipped loss) or a callable ``loss(y_onehot, log_probs)`` giving one value per
            image.
        from_logits (bool | None): ``None`` (default) detects whether the model ends in softmax or outputs
            logits; True or False says which.
        targeted (bool): ``y`` holds target classes and the attack pushes towards them (default False).
        batch_size (int): images per forward pass (default 128).

    Example::

        bim = robustmask.attacks.BIM(steps=10)
        x_adv = bim(model, x_test, y_test, eps=0.004)
        sweep = bim(model, x_test, y_test, eps=[0.001, 0.002, 0.004])  # (3, n, ...)
    """

    def __init__(
        self,
        steps: int = 10,
        rel_stepsize: float | None = None,
        abs_stepsize: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.steps = check_steps(steps, "steps")
        rel = check_stepsize(rel_stepsize, "rel_stepsize")
        self.abs_stepsize = check_stepsize(abs_stepsize, "abs_stepsize")
        self.rel_stepsize: float = 1.25 / self.steps if rel is None else rel

    def __repr__(self) -> str:
        return f"{self.name}(steps={self.steps}, {self._step_repr()}, norm={self.norm.name!r}, targeted={self.targeted})"

    def _step_repr(self) -> str:
        return (
            f"abs_stepsize={self.abs_stepsize:g}"
            if self.abs_stepsize
            else f"rel_stepsize={self.rel_stepsize:g}"
        )

    def stepsize(self, eps: TensorEps) -> tf.Tensor:
        return (
            tf.constant(self.abs_stepsize, tf.float32)
            if self.abs_stepsize is not None
            else eps * self.rel_stepsize
        )

    def iterate(
        self, model: Model, x_start: tf.Tensor, x: tf.Tensor, y: tf.Tensor, eps: TensorEps
    ) -> tf.Tensor:
        """`steps` steepest-ascent steps from x_start, projected around x: one tf.while_loop, not unrolled."""
        alpha = self.stepsize(eps)

        def step(i: tf.Tensor, x_adv: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return i + 1, self.project(x_adv + alpha * self.norm.step(self.gradient(model, x_adv, y)), x, eps)

        return tf.while_loop(lambda i, _: i < self.steps, step, (tf.constant(0), x_start))[1]

    def run(self, model: Model, x: tf.Tensor, y: tf.Tensor, eps: tf.Tensor) -> tf.Tensor:
        return self.iterate(model, x, x, y, eps)


def check_steps(value: object, name: str) -> int:
    """A step or restart count: a positive integer (an `AttackError` otherwise)."""
    return check_positive_int(value, name, error=AttackError)


def check_stepsize(value: object, name: str) -> float | None:
    """A step size: a positive number, or None (an `AttackError` otherwise)."""
    return check_positive_number(value, name, allow_none=True, error=AttackError)
