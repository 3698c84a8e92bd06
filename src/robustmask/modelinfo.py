"""What every attack, defence and evaluator needs to know about a classifier.

Face-mask models in the wild end in softmax far more often than in logits, many are 2-class, and a few
end in a single sigmoid unit. `inspect_model` finds out which, once per model, so that the loss is
always computed from log-probabilities without taking the log of a softmax twice, and without the
probability clipping that zeroes gradients on confidently classified images.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from robustmask._output_kind import (  # noqa: F401  (_as_output_tensor: modelinfo was its home)
    PASSTHROUGH_LAYERS,
    _as_output_tensor,
    _declared_input_shape,
    _declared_output_width,
    _detect_output_kind,
)
from robustmask.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover - keras is imported where it is used
    import keras

OUTPUT_KINDS = ("probabilities", "logits")
# Smallest probability whose log we take when a model only gives probabilities; far below the 1e-7
# that Keras clips to, so gradients survive on images the model is very sure about.
_TINY = 1e-30


@dataclass(frozen=True)
class ModelInfo:
    """A classifier's outputs, as robustmask sees them.

    Attributes:
        num_classes: number of classes; 2 for a single-unit (sigmoid) model.
        output: "probabilities" (softmax or sigmoid at the end) or "logits".
        single_unit: the model has one output unit scoring class 1 (binary classifier).
        input_shape: the shape of one input (no batch axis) where the model declares it, else None.
    """

    num_classes: int
    output: str
    single_unit: bool = False
    input_shape: tuple[int | None, ...] | None = None

    @property
    def from_logits(self) -> bool:
        return self.output == "logits"


# model -> {(from_logits,): (info, whether it was checked against a sample)}
_CACHE: weakref.WeakKeyDictionary[Any, dict[tuple[bool | None], tuple[ModelInfo, bool]]] = (
    weakref.WeakKeyDictionary()
)


def inspect_model(
    model: keras.Model, from_logits: bool | None = None, sample: np.ndarray | tf.Tensor | None = None
) -> ModelInfo:
    """Return a model's `ModelInfo`, detecting softmax vs logits unless `from_logits` says.

    Detection walks back from the output (Sequential and Functional models, nested ones too) past
    identity and shape-only layers (Dropout, Flatten, Reshape, Activation("linear"), ...) to the
    layer that sets the values: a softmax or sigmoid means probabilities, a linear layer logits.
    Where the model does not say (a subclassed model, a Lambda or custom last layer), or where
    layers follow the activation, it also looks at the outputs on `sample`: rows of non-negative
    numbers that sum to one are probabilities. When the two disagree it raises `ModelError`.
    """
    if not callable(model):
        raise ModelError(f"expected a Keras model (or a callable classifier), got {type(model).__name__}")
    key = (from_logits,)
    try:
        cached = _CACHE.get(model, {})
    except TypeError:  # not weak-referenceable: no caching
        cached = {}
    # An entry made without a sample is checked against one when one comes.
    if key in cached and (cached[key][1] or sample is None):
        return cached[key][0]

    input_shape = _declared_input_shape(model)
    width = _declared_output_width(model)
    if width is None:
        if sample is None:
            raise ModelError(
                "cannot tell the model's number of classes: build it (call it once) or pass sample inputs"
            )
        width = int(
            _as_output_tensor(
                model(tf.convert_to_tensor(np.asarray(sample[:2], np.float32)), training=False)
            ).shape[-1]
        )
    checked = True
    if from_logits is None:
        output, checked = _detect_output_kind(model, sample)
    else:
        output = "logits" if from_logits else "probabilities"
    info = ModelInfo(
        num_classes=2 if width == 1 else width,
        output=output,
        single_unit=width == 1,
        input_shape=input_shape,
    )
    try:
        _CACHE.setdefault(model, {})[key] = (info, checked)
    except TypeError:
        pass
    return info


def log_probabilities(outputs: Any, info: ModelInfo) -> tf.Tensor:
    """Log-probabilities (batch, num_classes) from a model's raw outputs. Graph-safe.

    For probabilities it uses the logits behind the softmax/sigmoid where they can be found (exact
    gradients on confident images), else the log of the probabilities, floored at a tiny value.
    """
    outputs = _as_output_tensor(outputs)
    # Before the cast: a cast to float32 makes a new tensor, without Keras' note of the logits.
    logits = _logits_behind(outputs) if info.output == "probabilities" else None
    outputs = tf.cast(outputs, tf.float32)
    if info.output == "logits":
        logits = outputs
    if info.single_unit:
        if logits is not None:
            z = logits[:, 0]
            return tf.stack([tf.math.log_sigmoid(-z), tf.math.log_sigmoid(z)], axis=-1)
        p = outputs[:, 0]
        return tf.stack([tf.math.log(tf.maximum(1.0 - p, _TINY)), tf.math.log(tf.maximum(p, _TINY))], axis=-1)
    if logits is not None:
        return tf.nn.log_softmax(logits, axis=-1)
    return tf.math.log(tf.maximum(outputs, _TINY))


def cross_entropy(y_onehot: tf.Tensor, log_probs: tf.Tensor) -> tf.Tensor:
    """Per-example categorical cross-entropy from one-hot labels and log-probabilities."""
    return -tf.reduce_sum(tf.cast(y_onehot, log_probs.dtype) * log_probs, axis=-1)


def clipped_cross_entropy(
    y_onehot: tf.Tensor, outputs: Any, info: ModelInfo, epsilon: float = 1e-7
) -> tf.Tensor:
    """Keras 2's categorical cross-entropy, as the paper computed it: probabilities clipped to [eps, 1 - eps].

    The clip makes the loss flat wherever the true class' probability is above 1 - eps or the
    softmax saturates, so its input gradient is exactly zero there: an attack on it stalls (a
    masked gradient). robustmask's default loss (`cross_entropy` of `log_probabilities`) is not clipped.
    """
    outputs = tf.cast(_as_output_tensor(outputs), tf.float32)
    if info.single_unit:  # one unit scores class 1: its sigmoid, whether the model applies it or not
        class_1 = tf.sigmoid(outputs) if info.output == "logits" else outputs
        probs = tf.concat([1.0 - class_1, class_1], axis=-1)
    elif info.output == "logits":
        probs = tf.nn.softmax(outputs, axis=-1)
    else:
        probs = outputs / tf.reduce_sum(outputs, axis=-1, keepdims=True)
    probs = tf.clip_by_value(probs, epsilon, 1.0 - epsilon)
    return -tf.reduce_sum(tf.cast(y_onehot, tf.float32) * tf.math.log(probs), axis=-1)


# Graph ops a passthrough layer leaves between a softmax and the model's output at inference.
_PASSTHROUGH_OPS = ("Identity", "Reshape", "Squeeze", "ExpandDims", "Cast")


def _logits_behind(outputs: tf.Tensor) -> tf.Tensor | None:
    # Keras 3 keeps the pre-activation tensor on softmax/sigmoid outputs (it uses it for its own
    # cross-entropy), and Dropout, Identity and Activation("linear") pass that very tensor on at
    # inference. Flatten and Reshape make a new tensor without it: eagerly the logits are lost, but
    # in a graph the ops lead back to the softmax, whose input is the logits.
    logits = getattr(outputs, "_keras_logits", None)
    if logits is not None:
        return tf.cast(logits, tf.float32)
    if isinstance(outputs, tf.__internal__.EagerTensor) or getattr(outputs, "op", None) is None:
        return None
    tensor = outputs
    while tensor.op.type in _PASSTHROUGH_OPS and len(tensor.op.inputs) >= 1:
        tensor = tensor.op.inputs[0]
    if tensor.op.type not in ("Softmax", "Sigmoid") or len(tensor.op.inputs) != 1:
        return None
    logits = tensor.op.inputs[0]
    if tensor is outputs:
        return tf.cast(logits, tf.float32)
    # Through reshapes the logits fit the outputs only if the class axis is the softmax's axis.
    if logits.shape.rank is None or logits.shape[-1] is None or logits.shape[-1] != outputs.shape[-1]:
        return None
    return tf.reshape(tf.cast(logits, tf.float32), tf.shape(outputs))
