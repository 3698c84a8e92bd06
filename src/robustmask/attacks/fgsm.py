"""Fast Gradient Sign Method (L-inf) and the Fast Gradient Method (its L2 and L1 forms)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import tensorflow as tf

from robustmask.attacks.gradient_attack import GradientAttack, LossSpec

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Clip, Model


class FGSM(GradientAttack):
    """Fast Gradient Sign Method: one step of size eps along the sign of the loss gradient.

    Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015,
    https://arxiv.org/abs/1412.6572. It is Algorithm 1 of Sheikh & Zafar (2023): untargeted,
    cross-entropy against the true label, ``x' = x + eps * sign(grad_x loss)``.

    The gradient does not depend on eps, so a sweep over many epsilons costs one gradient per image.
    In another norm the step is that norm's steepest ascent of size eps (``norm=2``:
    ``x' = x + eps * g / ||g||_2``, the Fast Gradient Method; see `FGM`).

    Args:
        clip: valid input range; ``None`` reproduces the paper exactly (no clipping).
        loss: ``None`` for cross-entropy (softmax or logits detected), ``"keras"`` for the paper's
            clipped loss, or a custom loss (see `GradientAttack`).
        **kwargs: the keyword arguments below.

    Keyword Args:
        norm (str | int): the threat model eps bounds: ``"inf"`` (L-inf, default), ``2`` or ``1``.
        from_logits (bool | None): ``None`` (default) detects whether the model ends in softmax or outputs
            logits; True or False says which.
        targeted (bool): ``y`` holds target classes and the attack pushes towards them (default False).
        batch_size (int): images per forward pass (default 128).

    Example::

        fgsm = robustmask.attacks.FGSM()
        x_adv = fgsm(model, x_test, y_test, eps=0.004)                # (n, 224, 224, 3)
        sweep = fgsm(model, x_test, y_test, eps=[0.001, 0.002, 0.003])  # (3, n, 224, 224, 3)
    """

    single_step = True

    def __init__(self, clip: Clip = (0.0, 1.0), loss: LossSpec = None, **kwargs: Any) -> None:
        super().__init__(clip=clip, loss=loss, **kwargs)

    def run(self, model: Model, x: tf.Tensor, y: tf.Tensor, eps: tf.Tensor) -> tf.Tensor:
        return x + eps * self.norm.step(self.gradient(model, x, y))

    def run_many(self, model: Model, x: tf.Tensor, y: tf.Tensor, epsilons: tf.Tensor) -> tf.Tensor:
        return self._step_all(x, self.norm.step(self.gradient(model, x, y)), epsilons)

    def _step_all(self, x: tf.Tensor, direction: tf.Tensor, epsilons: tf.Tensor) -> tf.Tensor:
        eps = tf.reshape(epsilons, [-1] + [1] * x.shape.rank)
        return x[None] + eps * direction[None]

    def _generate(self, model: Model, x: tf.Tensor, y: tf.Tensor, epsilons: tf.Tensor) -> tf.Tensor:
        if type(self).run_many is not FGSM.run_many:  # a subclass sweeps its own way
            return super()._generate(model, x, y, epsilons)
        # One gradient, then the steps of every eps and their projection in one fused XLA loop: the
        # (eps x batch) images are written once, so 10 epsilons cost little more than 1.
        direction = self.norm.step(self.gradient(model, x, y))

        def step_and_project(x: tf.Tensor, direction: tf.Tensor, epsilons: tf.Tensor) -> tf.Tensor:
            return self._project_many(self._step_all(x, direction, epsilons), x, epsilons)

        adversarial = tf.function(step_and_project, jit_compile=self.norm.elementwise)(x, direction, epsilons)
        return tf.ensure_shape(adversarial, [None, *x.shape])


class FGM(FGSM):
    """Fast Gradient Method: one step of size eps along the normalised loss gradient, L2 by default.

    Goodfellow, Shlens & Szegedy, ICLR 2015, https://arxiv.org/abs/1412.6572 (the L2 form of their
    method, as in Foolbox's L2FastGradientAttack and ART's FastGradientMethod(norm=2)):
    ``x' = x + eps * g / ||g||_2``, so ``||x' - x||_2 = eps`` before clipping. ``norm=1`` takes
    Tramer & Boneh's sparse L1 step (see `robustmask.attacks.norms`); ``norm="inf"`` is `FGSM`.

    Args:
        clip: the valid input range, default ``(0, 1)``; ``None`` turns clipping off.
        loss: as for `FGSM`: ``None`` (cross-entropy), ``"keras"`` or a callable.
        norm: ``2`` (default), ``1`` or ``"inf"`` (which is `FGSM`).
        **kwargs: the keyword arguments below.

    Keyword Args:
        from_logits (bool | None): ``None`` (default) detects whether the model ends in softmax or outputs
            logits; True or False says which.
        targeted (bool): ``y`` holds target classes and the attack pushes towards them (default False).
        batch_size (int): images per forward pass (default 128).

    Example::

        fgm = robustmask.attacks.FGM()                     # L2
        x_adv = fgm(model, x_test, y_test, eps=0.5)        # ||x_adv - x||_2 <= 0.5 per image
    """

    def __init__(
        self, clip: Clip = (0.0, 1.0), loss: LossSpec = None, *, norm: str | float = 2, **kwargs: Any
    ) -> None:
        super().__init__(clip=clip, loss=loss, norm=norm, **kwargs)
