"""The Keras model that trains a teacher or a student of `robustmask.defenses.distillation` at temperature T.

Its own module so that the distributed loop (`robustmask.defenses.distributed`) can name it without
importing the distillation defence, which imports the loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from robustmask.defenses._training_step import one_hot

if TYPE_CHECKING:  # pragma: no cover
    from robustmask.modelinfo import ModelInfo


class DistillationTrainingModel(keras.Model):
    """Trains a logits model at temperature T: on the labels (the teacher), or on a teacher's
    ``softmax(z / T)`` computed batch by batch (the student).

    Keras' fit calls its `train_step`; under a strategy robustmask's loop calls `training_batch`
    on each replica's slice, as it does for the adversarial trainers' `AdversarialTrainingModel`.

    Example::

        trainer = DistillationTrainingModel(student_logits, info, 100.0, teacher=teacher_logits)
        trainer.compile(keras.optimizers.Adam(1e-3), trainer.distillation_loss)
    """

    groups = 1  # images a step holds per clean image: no copies
    paired = False

    def __init__(
        self, model: keras.Model, info: ModelInfo, temperature: float, teacher: keras.Model | None = None
    ) -> None:
        super().__init__(name=f"{model.name}_distillation")
        self.model, self.info, self.temperature = model, info, float(temperature)
        # Bypass Keras' attribute tracking: the frozen teacher's weights are not this model's.
        object.__setattr__(self, "teacher", teacher)

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.model(x, training=training)

    def train_step(self, data: tuple[tf.Tensor, ...]) -> dict[str, Any]:
        return super().train_step(self.training_batch(data[0], data[1]))

    def training_batch(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(images, targets)``: one-hot labels for the teacher, the teacher's soft labels for the student."""
        x = tf.cast(x, tf.float32)
        if self.teacher is None:
            return x, one_hot(y, self.info)
        soft = tf.nn.softmax(self.teacher(x, training=False) / self.temperature, axis=-1)
        return x, tf.stop_gradient(soft)

    def distillation_loss(self, targets: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        """Per-image cross-entropy of the targets against ``softmax(logits / T)``."""
        return keras.losses.categorical_crossentropy(targets, logits / self.temperature, from_logits=True)
