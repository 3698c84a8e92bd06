"""What every attack, defence and evaluator needs to know about a classifier.

Face-mask models in the wild end in softmax far more often than in logits, many are 2-class, and a few
end in a single sigmoid unit. `inspect_model` finds out which, once per model, so that the loss is
always computed from log-probabilities without taking the log of a softmax twice, and without the
probability clipping that zeroes gradients on confidently classified images.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from robustmask.errors import ModelError

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
    input_shape: tuple | None = None

    @property
    def from_logits(self) -> bool:
        return self.output == "logits"


_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def inspect_model(model, from_logits: bool | None = None, sample=None) -> ModelInfo:
    """Return a model's `ModelInfo`, detecting softmax vs logits unless `from_logits` says.

    Detection reads the last layer's activation (Dense/Activation/Softmax, looking inside nested
    models); where the model does not say (a subclassed model, say), it looks at the outputs on
    `sample`: rows of non-negative numbers that sum to one are probabilities.
    """
    if not callable(model):
        raise ModelError(f"expected a Keras model (or a callable classifier), got {type(model).__name__}")
    key = (from_logits,)
    try:
        cached = _CACHE.get(model, {})
    except TypeError:  # not weak-referenceable: no caching
        cached = {}
    if key in cached:
        return cached[key]

    input_shape = _declared_input_shape(model)
    width = _declared_output_width(model)
    if width is None:
        if sample is None:
            raise ModelError("cannot tell the model's number of classes: build it (call it once) or pass sample inputs")
        width = int(_as_output_tensor(model(tf.convert_to_tensor(np.asarray(sample[:2], np.float32)), training=False)).shape[-1])
    if from_logits is None:
        activation = _last_activation(model)
        if activation in ("softmax", "sigmoid"):
            output = "probabilities"
        elif activation == "linear":
            output = "logits"
        elif sample is not None:
            output = _probe_output_kind(model, sample)
        else:
            raise ModelError(
                "cannot tell whether the model outputs probabilities or logits: pass from_logits=True or False"
            )
    else:
        output = "logits" if from_logits else "probabilities"
    info = ModelInfo(
        num_classes=2 if width == 1 else width,
        output=output,
        single_unit=width == 1,
        input_shape=input_shape,
    )
    try:
        _CACHE.setdefault(model, {})[key] = info
    except TypeError:
        pass
    return info


def log_probabilities(outputs, info: ModelInfo):
    """Log-probabilities (batch, num_classes) from a model's raw outputs. Graph-safe."""
    outputs = tf.cast(_as_output_tensor(outputs), tf.float32)
    logits = _logits_behind(outputs) if info.output == "probabilities" else outputs
    if info.single_unit:
        if logits is not None:
            z = logits[:, 0]
            return tf.stack([tf.math.log_sigmoid(-z), tf.math.log_sigmoid(z)], axis=-1)
        p = outputs[:, 0]
        return tf.stack([tf.math.log(tf.maximum(1.0 - p, _TINY)), tf.math.log(tf.maximum(p, _TINY))], axis=-1)
    if logits is not None:
        return tf.nn.log_softmax(logits, axis=-1)
    return tf.math.log(tf.maximum(outputs, _TINY))


def cross_entropy(y_onehot, log_probs):
    """Per-example categorical cross-entropy from one-hot labels and log-probabilities."""
    return -tf.reduce_sum(tf.cast(y_onehot, log_probs.dtype) * log_probs, axis=-1)


def _logits_behind(outputs):
    # Keras 3 keeps the pre-activation tensor on softmax/sigmoid outputs (it uses it for its own
    # cross-entropy); in a graph the softmax op's input is the same thing.
    logits = getattr(outputs, "_keras_logits", None)
    if logits is not None:
        return tf.cast(logits, tf.float32)
    op = getattr(outputs, "op", None)
    if op is not None and not isinstance(outputs, tf.__internal__.EagerTensor):
        if op.type in ("Softmax", "Sigmoid") and len(op.inputs) == 1:
            return tf.cast(op.inputs[0], tf.float32)
    return None


def _as_output_tensor(outputs):
    if isinstance(outputs, dict):
        if len(outputs) != 1:
            raise ModelError(f"the model has {len(outputs)} outputs; robustmask attacks single-output classifiers")
        outputs = next(iter(outputs.values()))
    if isinstance(outputs, (list, tuple)):
        if len(outputs) != 1:
            raise ModelError(f"the model has {len(outputs)} outputs; robustmask attacks single-output classifiers")
        outputs = outputs[0]
    return outputs


def _declared_input_shape(model):
    shape = getattr(model, "input_shape", None)
    if shape is None:
        return None
    try:
        if isinstance(shape, list):
            shape = shape[0]
        return tuple(shape[1:])
    except (TypeError, IndexError):
        return None


def _declared_output_width(model):
    try:
        shape = model.output_shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(shape, list):
        if len(shape) != 1:
            raise ModelError(f"the model has {len(shape)} outputs; robustmask attacks single-output classifiers")
        shape = shape[0]
    if shape is None or len(shape) != 2:
        raise ModelError(f"the model's output has shape {shape}; a classifier must output (batch, classes)")
    return shape[-1]


def _last_activation(model) -> str | None:
    layer = model
    while True:
        layers = getattr(layer, "layers", None)
        if not layers:
            break
        layer = layers[-1]
    if layer is model:
        return None
    if type(layer).__name__ == "Softmax":
        return "softmax"
    activation = getattr(layer, "activation", None)
    if activation is None:
        # Layers without an activation (Dropout, Flatten, BatchNorm...) pass values through.
        return "linear" if type(layer).__name__ in ("Dropout", "Flatten", "Reshape") else None
    name = activation if isinstance(activation, str) else getattr(activation, "__name__", "")
    if name in ("softmax", "sigmoid", "linear"):
        return name
    return None


def _probe_output_kind(model, sample) -> str:
    out = _as_output_tensor(model(tf.convert_to_tensor(np.asarray(sample[:16], np.float32)), training=False))
    out = np.asarray(out, np.float64)
    if out.shape[-1] == 1:
        return "probabilities" if np.all((out >= 0) & (out <= 1)) else "logits"
    if np.all(out >= 0) and np.allclose(out.sum(axis=-1), 1.0, atol=1e-3):
        return "probabilities"
    return "logits"
