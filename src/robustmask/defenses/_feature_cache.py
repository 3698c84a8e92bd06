"""Adversarial training of a frozen-base model on cached base features.

With a frozen base and copies made once against the undefended model (the paper's Algorithm 2),
the base gives every image of D' the same features in every epoch: D' is made once and only its
features are kept (1,280 floats an image for MobileNetV2, not 150,528 pixels), and every epoch
trains the head alone. The same training, many times faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from robustmask._batching import is_dataset
from robustmask.defenses._training_step import attack_labels
from robustmask.errors import ModelError, RobustmaskError
from robustmask.frozen_features import split_frozen_prefix

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from robustmask.defenses._data import CleanBatches
    from robustmask.defenses.adversarial_training import AdversarialTrainer
    from robustmask.modelinfo import ModelInfo


def fit_on_features(
    trainer: AdversarialTrainer,
    model: keras.Model,
    defended: keras.Model,
    clean: CleanBatches,
    info: ModelInfo,
    *,
    epochs: int,
    validation_data: Any,
    callbacks: Sequence[keras.callbacks.Callback] | None,
    verbose: str | int,
) -> keras.callbacks.History:
    """Make D' once against `model`, keep its base features, fit `defended`'s head on them."""
    split = split_frozen_prefix(defended, clean.sample[:2])
    if split is None:
        raise ModelError(
            "cache='features' needs a model whose leading layers are frozen and whose trainable "
            "layers form a chain (as robustmask.zoo.facemask_mobilenetv2); use cache='none'"
        )
    features, head = split
    compute = tf.function(lambda x: features(x, training=False), reduce_retracing=True)
    epsilons = tf.constant(trainer.eps, tf.float32)
    n = len(trainer.eps)
    with_clean = trainer.ratio < 1.0
    # The same weights as the training step's: mean 1, the copies carrying `ratio` of the loss.
    group_weights = (
        [(1.0 - trainer.ratio) * (n + 1)] + [trainer.ratio * (n + 1) / n] * n if with_clean else [1.0] * n
    )
    feature_batches, label_batches, weight_batches = [], [], []
    for x, y in clean.dataset:  # the clean subset once; each batch with its copies, as features
        adversarial = trainer.attack.generate(
            model, x, attack_labels(model, x, y, trainer.labels, info), epsilons
        )
        images = tf.concat([x[None], adversarial], axis=0) if with_clean else adversarial
        feature_batches.append(
            compute(tf.reshape(images, tf.concat([[-1], tf.shape(x)[1:]], axis=0))).numpy()
        )
        label_batches.append(np.tile(y.numpy(), (len(group_weights),) + (1,) * (y.shape.rank - 1)))
        weight_batches.append(np.repeat(np.asarray(group_weights, np.float32), len(x)))
    if validation_data is not None:
        if is_dataset(validation_data):
            raise RobustmaskError("with cache='features', give validation_data as (x, y) arrays")
        validation_data = (features.predict(validation_data[0], batch_size=64, verbose=0), validation_data[1])
    head.compile(
        optimizer=trainer._optimizer(model, None, epochs),
        loss=trainer._loss(model, info),
        metrics=["accuracy"],
    )
    return head.fit(
        np.concatenate(feature_batches),
        np.concatenate(label_batches),
        epochs=epochs,
        sample_weight=np.concatenate(weight_batches),
        batch_size=trainer.batch_size,
        shuffle=True,
        validation_data=validation_data,
        callbacks=callbacks,
        verbose=verbose,
    )
