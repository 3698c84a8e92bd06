"""Split a model with a frozen base into (base features, trainable head).

A frozen base (the paper's MobileNetV2) runs in inference mode, so the features it gives an image
never change during training. Training the head on features computed once is then the same
training as fitting the whole model, at the cost of one pass through the base instead of one per
epoch. The split is checked numerically before it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - keras and tensorflow are imported where they are used
    import keras
    import tensorflow as tf


def split_frozen_prefix(
    model: keras.Model, sample: np.ndarray | tf.Tensor | None = None, atol: float = 1e-4
) -> tuple[keras.Model, keras.Model] | None:
    """Return ``(features, head)`` Keras models with ``head(features(x)) == model(x)``, or None.

    The prefix is the longest run of leading layers without trainable weights, holding at least
    one frozen weight (a base, not just a rescaling layer); the head is the
    remaining layers, which must form a chain (each layer feeding the next). ``head`` shares its
    layers with `model`, so training it trains `model`. None when the model has no such split.
    """
    import keras
    import tensorflow as tf

    layers = [
        layer for layer in getattr(model, "layers", []) if not isinstance(layer, keras.layers.InputLayer)
    ]
    prefix_end = 0
    while prefix_end < len(layers) and not layers[prefix_end].trainable_weights:
        prefix_end += 1
    if prefix_end == len(layers) or not any(layer.weights for layer in layers[:prefix_end]):
        return None  # nothing frozen in front (a rescaling layer alone is no base)
    try:
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        features = keras.Model(inputs, layers[prefix_end - 1].output)
        head = keras.Sequential([keras.Input(layers[prefix_end - 1].output.shape[1:]), *layers[prefix_end:]])
    except (AttributeError, ValueError, TypeError):  # subclassed or branching models
        return None
    if sample is None:
        shape = tuple(d or 32 for d in model.input_shape[1:])
        sample = np.random.default_rng(0).uniform(0, 1, (2, *shape)).astype(np.float32)
    direct = np.asarray(model(sample, training=False))  # the model itself must run: its errors are raised
    try:
        split = np.asarray(head(features(sample, training=False), training=False))
    except (ValueError, TypeError, tf.errors.InvalidArgumentError):
        # What layers that do not chain raise: a merge layer given one tensor (ValueError), a layer
        # given the wrong number of inputs (TypeError), a shape the layer was not built for.
        return None
    if direct.shape != split.shape or not np.allclose(direct, split, atol=atol):
        return None
    return features, head
