"""The model's predicted class of each image: one definition for every output robustmask supports.

Clean and robust accuracy, attack success and fooling rates all count predicted classes, so they
are all computed here. The top class of a row of outputs is its largest entry (softmax
probabilities or logits alike), except for a model with a single output unit scoring class 1
(``Dense(1, activation="sigmoid")``, a common with/without-mask design), where it is class 1 when
the output is above 0.5 (a probability) or above 0 (a logit), and class 0 otherwise. An argmax over
that one column would read every image as class 0. `robustmask.modelinfo.inspect_model` tells which
kind of output a model has.

Example::

    from robustmask.predictions import predict_labels

    accuracy = (predict_labels(model, x_test) == y_test).mean()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from robustmask._validation import check_positive_int
from robustmask.modelinfo import ModelInfo, _as_output_tensor, inspect_model

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Model

__all__ = ["predict_labels", "top_classes"]


def top_classes(outputs: Any, info: ModelInfo) -> tf.Tensor:
    """The top class (int64, shape (batch,)) of each row of a model's raw outputs. Graph-safe.

    ``info``: the model's `ModelInfo` (a single unit is thresholded at 0.5 for a probability, at 0
    for a logit; wider outputs take their argmax).
    """
    outputs = _as_output_tensor(outputs)
    if info.single_unit:
        threshold = 0.0 if info.from_logits else 0.5
        return tf.cast(outputs[:, 0] > tf.cast(threshold, outputs.dtype), tf.int64)
    return tf.argmax(outputs, axis=-1, output_type=tf.int64)


def predict_labels(
    model: Model, x: np.ndarray | tf.Tensor, info: ModelInfo | None = None, batch_size: int = 256
) -> np.ndarray:
    """The model's predicted class of each image in ``x`` (int64, shape (n,)), batch by batch.

    Args:
        model: a Keras classifier (softmax, logits, or one sigmoid or logit unit).
        x: images, (n, ...), as the model takes them.
        info: the model's `ModelInfo`; ``None`` detects it (`inspect_model`, from the images).
        batch_size: images per forward pass.

    Example::

        changed = predict_labels(model, x_adv) != predict_labels(model, x)
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    n = int(x.shape[0])
    if n == 0:
        return np.zeros(0, np.int64)
    if info is None:
        info = inspect_model(model, None, x[:16])
    # Direct calls, not model.predict: callers predict on subsets of ever-changing size, and Keras'
    # predict function retraces (and warns) for each new final batch size.
    return np.concatenate(
        [
            top_classes(
                model(tf.convert_to_tensor(x[start : start + batch_size], tf.float32), training=False), info
            ).numpy()
            for start in range(0, n, batch_size)
        ]
    )
