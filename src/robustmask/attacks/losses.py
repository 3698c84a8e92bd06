"""Attack losses for evaluating defences: the Carlini & Wagner margin.

robustmask attacks ascend ``loss(y_onehot, log_probs)`` (see `robustmask.Attack`). Cross-entropy's
gradient vanishes on a saturated softmax (defensive distillation makes every softmax saturate), the
margin's does not: on log-probabilities it equals the logit margin exactly, since
``log p_j - log p_y = z_j - z_y``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import tensorflow as tf

from robustmask.errors import AttackError

__all__ = ["margin_loss"]


def margin_loss(confidence: float = math.inf) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """The C&W margin, ``max_{j != y} log p_j - log p_y``, capped at ``confidence``, per example.

    Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017,
    https://arxiv.org/abs/1608.04644, objective f_6. Positive means misclassified; the cap (their
    kappa, in logit units) stops an untargeted attack from pushing further once the wrong class
    leads by ``confidence``, which leaves the gradient free for other terms of an objective. Use
    the default (no cap) for targeted attacks.

    Example::

        pgd = robustmask.attacks.PGD(steps=40, loss=margin_loss())
        x_adv = pgd(distilled_model, x, y, eps=8 / 255)
    """
    try:
        confidence = float(confidence)
    except (TypeError, ValueError):
        raise AttackError(f"confidence must be a number (or math.inf), got {confidence!r}") from None
    if math.isnan(confidence) or confidence < 0:
        raise AttackError(f"confidence must be >= 0, got {confidence!r}")

    def margin(y_onehot: tf.Tensor, log_probs: tf.Tensor) -> tf.Tensor:
        is_true = tf.cast(y_onehot, log_probs.dtype) > 0.5
        true = tf.reduce_sum(tf.where(is_true, log_probs, tf.zeros_like(log_probs)), axis=-1)
        other = tf.reduce_max(tf.where(is_true, tf.fill(tf.shape(log_probs), -math.inf), log_probs), axis=-1)
        value = other - true
        return value if math.isinf(confidence) else tf.minimum(value, confidence)

    margin.__name__ = "margin_loss"
    return margin
