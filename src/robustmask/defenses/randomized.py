"""A randomised input transform and Expectation over Transformation (EOT), the attack that beats it.

`RandomResizePad` is Xie et al.'s randomisation defence (Xie, Wang, Zhang, Ren & Yuille, "Mitigating
Adversarial Effects Through Randomization", ICLR 2018, https://arxiv.org/abs/1711.01991), kept to the
model's input size: each image is shrunk to a random size and padded back at a random place, at
inference too. One gradient of such a model is the gradient of one random draw, so an attack that
uses it aims at a moving target and looks weaker than it is.

`eot_model` wraps any (randomised) model in a Keras model whose forward pass averages the
predicted probabilities over ``samples`` random draws (Athalye, Engstrom, Ilyas & Kwok, "Synthesizing
Robust Adversarial Examples", ICML 2018, https://arxiv.org/abs/1707.07397; Athalye, Carlini & Wagner
2018, https://arxiv.org/abs/1802.00420). Its gradient is the gradient of the expected prediction, so
any robustmask gradient attack run on it *is* the EOT attack.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from robustmask._validation import check_positive_int
from robustmask.defenses.transforms import InputTransform
from robustmask.errors import ModelError, RobustmaskError
from robustmask.modelinfo import inspect_model, log_probabilities

__all__ = ["RandomResizePad", "eot_model"]


@keras.saving.register_keras_serializable(package="robustmask")
class RandomResizePad(InputTransform):
    """Shrink each image by a random 0..``max_shrink`` pixels (bilinear) and zero-pad it back at random.

    The output has the input's shape, so the layer goes in front of any model. A new draw is made on
    every call, in training and in inference. The backward pass (``gradient="exact"``) is the gradient
    of the draw that was made; it is a valid but noisy gradient, which `eot_model` averages.

    Args:
        max_shrink: the largest number of pixels taken off height and width (>= 1, below the size).
        gradient: "exact", "none" or "bpda" (see `robustmask.defenses.transforms`).
        seed: seeds the layer's random generator (draws still differ from call to call).
        **kwargs: Keras ``Layer`` arguments (``name``, ``dtype``, ``trainable``...).

    Example::

        defended, _ = InputTransformDefense(RandomResizePad(max_shrink=4)).fit(model, None)
        x_adv = robustmask.attacks.PGD(steps=20)(eot_model(defended, samples=8), x, y, eps=8 / 255)
    """

    def __init__(
        self, max_shrink: int = 4, gradient: str = "exact", seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(gradient, **kwargs)
        self.max_shrink = check_positive_int(max_shrink, "max_shrink")
        self.seed = None if seed is None else check_positive_int(seed, "seed", allow_zero=True)
        self._generator = keras.random.SeedGenerator(self.seed)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        height, width = input_shape[1], input_shape[2]
        if height is None or width is None:
            raise ModelError("RandomResizePad needs images of a fixed height and width")
        if self.max_shrink >= min(height, width):
            raise RobustmaskError(
                f"max_shrink {self.max_shrink} must be below the image size {height}x{width}"
            )

    def transform(self, x: tf.Tensor) -> tf.Tensor:
        height, width = x.shape[1], x.shape[2]
        batch = tf.shape(x)[0]
        sizes = keras.random.randint((batch,), 0, self.max_shrink + 1, seed=self._generator)
        offsets = keras.random.uniform((batch, 2), seed=self._generator)

        def one(args: tuple[tf.Tensor, tf.Tensor, tf.Tensor]) -> tf.Tensor:
            image, shrink, offset = args
            new_h, new_w = height - shrink, width - shrink
            small = tf.image.resize(image, tf.stack([new_h, new_w]), method="bilinear")
            top = tf.cast(tf.floor(offset[0] * tf.cast(shrink + 1, tf.float32)), tf.int32)
            left = tf.cast(tf.floor(offset[1] * tf.cast(shrink + 1, tf.float32)), tf.int32)
            top, left = tf.minimum(top, shrink), tf.minimum(left, shrink)
            padded = tf.pad(small, [[top, shrink - top], [left, shrink - left], [0, 0]])
            return tf.ensure_shape(padded, image.shape)

        return tf.map_fn(
            one,
            (x, tf.cast(sizes, tf.int32), tf.cast(offsets, tf.float32)),
            fn_output_signature=tf.TensorSpec(x.shape[1:], tf.float32),
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_shrink": self.max_shrink, "seed": self.seed}


class _ExpectedLogProbabilities(keras.layers.Layer):
    """log E[p(x)] over `samples` forward passes of a randomised model (log-mean-exp of log-probs)."""

    # Normalised log-probabilities are logits (their softmax is the averaged prediction); this is
    # how robustmask.modelinfo reads a layer's output kind.
    activation = "linear"

    def __init__(self, model: keras.Model, samples: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.samples = samples
        self.info = inspect_model(model)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        x = tf.cast(inputs, tf.float32)
        batch = tf.shape(x)[0]
        tiled = tf.tile(x, tf.concat([[self.samples], tf.ones([tf.rank(x) - 1], tf.int32)], 0))
        log_probs = log_probabilities(self.model(tiled, training=False), self.info)
        log_probs = tf.reshape(log_probs, tf.stack([self.samples, batch, self.info.num_classes]))
        return tf.reduce_logsumexp(log_probs, axis=0) - tf.math.log(float(self.samples))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, int]:
        return (input_shape[0], self.info.num_classes)


def eot_model(model: keras.Model, samples: int = 8) -> keras.Model:
    """A Keras model whose output is ``log(mean over samples draws of model's probabilities)``.

    Run any robustmask gradient attack on it to get the EOT attack on the randomised ``model``: its
    gradient averages ``samples`` random draws. The output is marked as logits (they are normalised
    log-probabilities, so the softmax of them is the averaged prediction). Score the adversarial images
    on the deployed randomised model, not on this wrapper.

    Args:
        model: a Keras classifier with a declared input shape, typically an `InputTransformDefense`
            model with a `RandomResizePad` in front.
        samples: random draws averaged per forward pass (the batch is run ``samples`` times).

    Example::

        defended, _ = InputTransformDefense(RandomResizePad(4)).fit(model, None)
        pgd = robustmask.attacks.PGD(steps=20, seed=0)
        x_naive = pgd(defended, x, y, eps=8 / 255)                       # one draw per gradient
        x_eot = pgd(eot_model(defended, samples=16), x, y, eps=8 / 255)  # the expectation
    """
    samples = check_positive_int(samples, "samples")
    info = inspect_model(model)
    if info.input_shape is None or any(v is None for v in info.input_shape):
        raise ModelError(
            "eot_model needs a model with a declared, fixed input shape (a Functional or "
            "Sequential model, or an InputTransformDefense model)"
        )
    inputs = keras.Input(info.input_shape)
    outputs = _ExpectedLogProbabilities(model, samples, name="expected_log_probabilities")(inputs)
    return keras.Model(inputs, outputs, name=f"eot{samples}_{getattr(model, 'name', 'model')}")
