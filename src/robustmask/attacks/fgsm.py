"""Fast Gradient Sign Method."""

from __future__ import annotations

import tensorflow as tf

from robustmask.attacks.base import Attack


class FGSM(Attack):
    """Fast Gradient Sign Method: one step of size eps along the sign of the loss gradient.

    Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015,
    https://arxiv.org/abs/1412.6572. It is Algorithm 1 of Sheikh & Zafar (2023): untargeted,
    cross-entropy against the true label, ``x' = x + eps * sign(grad_x loss)``.

    The gradient does not depend on eps, so a sweep over many epsilons costs one gradient per image.

    Args:
        clip: valid input range; ``None`` reproduces the paper exactly (no clipping).
        loss: ``None`` for cross-entropy (softmax or logits detected), or a custom loss.
        **kwargs: ``from_logits``, ``targeted``, ``batch_size`` (see `Attack`).

    Example::

        fgsm = robustmask.attacks.FGSM()
        x_adv = fgsm(model, x_test, y_test, eps=0.004)                # (n, 224, 224, 3)
        sweep = fgsm(model, x_test, y_test, eps=[0.001, 0.002, 0.003])  # (3, n, 224, 224, 3)
    """

    def __init__(self, clip=(0.0, 1.0), loss=None, **kwargs):
        super().__init__(clip=clip, loss=loss, **kwargs)

    def run(self, model, x, y, eps):
        return x + eps * tf.sign(self.gradient(model, x, y))

    def run_many(self, model, x, y, epsilons):
        direction = tf.sign(self.gradient(model, x, y))
        eps = tf.reshape(epsilons, [-1] + [1] * x.shape.rank)
        return x[None] + eps * direction[None]
