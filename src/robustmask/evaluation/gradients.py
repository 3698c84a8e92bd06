"""How many images give an attack nothing to follow: exactly zero input gradients.

A gradient attack moves an image only along its loss gradient. Where that gradient is exactly zero
(a saturated softmax under Keras' clipped cross-entropy, a rounding preprocessor, a distilled model
at temperature 1) FGSM and PGD leave the image as it was, and the model looks robust without being
so: gradient masking (Athalye et al. 2018, arXiv 1802.00420). The share of such images is the first
thing to check when a defended model resists FGSM too well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from robustmask._validation import check_images, check_labels, check_positive_int
from robustmask.attacks.base import Attack
from robustmask.attacks.gradient_attack import GradientAttack
from robustmask.errors import RobustmaskError
from robustmask.modelinfo import cross_entropy, log_probabilities

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Images, Labels, Model


def attack_gradient(attack: Attack, model: Model, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """The input gradient an attack follows: its own loss for a native attack, cross-entropy for an
    ART one (ART's estimator ascends the cross-entropy of the log-probabilities robustmask gives it)."""
    if isinstance(attack, GradientAttack):
        return attack.gradient(model, x, y)
    info = attack.model_info(model)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = cross_entropy(y, log_probabilities(model(x, training=False), info))
    return tape.gradient(loss, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)


def zero_gradient_share(attack: Attack, model: Model, x: Images, y: Labels, batch_size: int = 128) -> float:
    """Percentage of images whose input gradient of `attack`'s loss is exactly zero everywhere.

    Example::

        zero_gradient_share(FGSM(loss="keras"), model, x_test, y_test)   # the paper's loss
        zero_gradient_share(FGSM(), model, x_test, y_test)               # robustmask's
    """
    if not attack.needs_gradients:
        raise RobustmaskError(
            f"{attack.name} uses no gradients: the share of zero gradients says nothing about it"
        )
    batch_size = check_positive_int(batch_size, "batch_size")
    x = check_images(x, attack.clip)
    info = attack.model_info(model, x)
    labels = check_labels(y, len(x), info.num_classes)
    zero = 0
    for start in range(0, len(x), batch_size):
        x_batch = tf.convert_to_tensor(x[start : start + batch_size], tf.float32)
        y_batch = tf.one_hot(labels[start : start + batch_size], info.num_classes)
        gradient = attack_gradient(attack, model, x_batch, y_batch).numpy()
        zero += int(np.sum(~gradient.reshape(len(gradient), -1).any(axis=1)))
    return 100.0 * zero / len(x)
