"""How robustmask tells what a classifier outputs: probabilities or logits, and how many classes.

`robustmask.modelinfo.inspect_model` asks these helpers once per model: a walk back from the output
past identity and shape-only layers to the layer that sets the values, and, where the model does not
say, a look at its outputs on sample images. Their own module so that modelinfo.py holds the
`ModelInfo` record and the losses built on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from robustmask.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover - keras is imported where it is used
    import keras

# Layers that hand their input on unchanged at inference (identity or shape-only), so a softmax
# before them still makes the model's outputs probabilities, and a linear layer still logits.
PASSTHROUGH_LAYERS = frozenset(
    {
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "AlphaDropout",
        "GaussianDropout",
        "GaussianNoise",
        "ActivityRegularization",
        "Identity",
        "Flatten",
        "Reshape",
    }
)
# The walk back from the output reached the model's input through passthrough layers only: the
# model (or a nested model) says nothing about its output kind by itself.
_THROUGH = "through"


def _detect_output_kind(model: keras.Model, sample: np.ndarray | tf.Tensor | None) -> tuple[str, bool]:
    """(output kind, whether the outputs were looked at where the declaration could be doubted)."""
    declared, direct = _declared_output_kind(model)
    if declared is not None and direct:
        # The activation is the model's last operation: its outputs are what it says.
        return declared, True
    if sample is None or not tf.executing_eagerly():
        if declared is not None:
            return declared, False
        raise ModelError(
            "cannot tell whether the model outputs probabilities or logits: pass from_logits=True or False"
        )
    probed, certain = _probe_output_kind(model, sample)
    if declared is None:
        return probed, True
    if certain and probed != declared:
        activation = "a softmax/sigmoid" if declared == "probabilities" else "a linear layer"
        looks = (
            "rows of non-negative numbers summing to one"
            if probed == "probabilities"
            else "numbers that are not probability rows"
        )
        raise ModelError(
            f"the model's layers say it outputs {declared} ({activation} followed by identity or reshaping layers) "
            f"but its outputs on the sample look like {probed} ({looks}): pass from_logits=True or False"
        )
    return declared, True


def _declared_output_kind(model: keras.Model) -> tuple[str | None, bool]:
    """What the layers say the model outputs: ("probabilities" | "logits" | None, direct).

    ``direct`` is True when the deciding activation is the model's last operation (no layer after
    it). None: the model does not say (a subclassed model, a custom or Lambda last layer).
    """
    kind, direct = _walk(model)
    return (None, False) if kind == _THROUGH else (kind, direct)


def _walk(model: keras.Model) -> tuple[str | None, bool]:
    import keras

    if isinstance(model, keras.Sequential):
        steps = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        direct = True
        for layer in reversed(steps):
            kind, inner_direct = _layer_kind(layer)
            if kind != _THROUGH:
                return kind, direct and inner_direct
            direct = False
        return _THROUGH, False
    if _is_functional(model):
        outputs = list(getattr(model, "outputs", None) or [])
        if len(outputs) != 1:
            return None, False
        tensor, direct = outputs[0], True
        while True:
            history = getattr(tensor, "_keras_history", None)
            if history is None:
                return None, False
            layer = history.operation
            if isinstance(layer, keras.layers.InputLayer):
                return _THROUGH, False
            kind, inner_direct = _layer_kind(layer)
            if kind != _THROUGH:
                return kind, direct and inner_direct
            inputs = layer._inbound_nodes[history.node_index].input_tensors
            if len(inputs) != 1:  # a passthrough with several inputs is not one we know
                return None, False
            tensor, direct = inputs[0], False
    return None, False  # subclassed: its `layers` are in creation order, not call order


def _layer_kind(layer: keras.layers.Layer) -> tuple[str | None, bool]:
    """One layer's say: "probabilities", "logits", `_THROUGH` (passes values on) or None."""
    import keras

    if isinstance(layer, keras.Model):
        return _walk(layer)
    name = type(layer).__name__
    if name == "Softmax":
        return "probabilities", True
    if name in PASSTHROUGH_LAYERS:
        return _THROUGH, False
    activation = getattr(layer, "activation", None)
    activation = activation if isinstance(activation, str) else getattr(activation, "__name__", None)
    if name == "Activation" and activation == "linear":
        return _THROUGH, False
    if activation in ("softmax", "sigmoid"):
        return "probabilities", True
    if activation == "linear":
        return "logits", True
    return None, False


def _is_functional(model: object) -> bool:
    try:
        from keras.src.models.functional import Functional
    except ImportError:  # pragma: no cover - Keras internals moved
        return type(model).__name__ == "Functional"
    return isinstance(model, Functional)


def _as_output_tensor(outputs: Any) -> tf.Tensor:
    if isinstance(outputs, dict):
        if len(outputs) != 1:
            raise ModelError(
                f"the model has {len(outputs)} outputs; robustmask attacks single-output classifiers"
            )
        outputs = next(iter(outputs.values()))
    if isinstance(outputs, (list, tuple)):
        if len(outputs) != 1:
            raise ModelError(
                f"the model has {len(outputs)} outputs; robustmask attacks single-output classifiers"
            )
        outputs = outputs[0]
    return outputs


def _declared_input_shape(model: keras.Model) -> tuple[int | None, ...] | None:
    shape = getattr(model, "input_shape", None)
    if shape is None:
        return None
    try:
        if isinstance(shape, list):
            shape = shape[0]
        return tuple(shape[1:])
    except (TypeError, IndexError):
        return None


def _declared_output_width(model: keras.Model) -> int | None:
    try:
        shape = model.output_shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(shape, list):
        if len(shape) != 1:
            raise ModelError(
                f"the model has {len(shape)} outputs; robustmask attacks single-output classifiers"
            )
        shape = shape[0]
    if shape is None or len(shape) != 2:
        raise ModelError(f"the model's output has shape {shape}; a classifier must output (batch, classes)")
    return shape[-1]


def _probe_output_kind(model: keras.Model, sample: np.ndarray | tf.Tensor) -> tuple[str, bool]:
    """(kind the outputs on `sample` look like, whether that is certain).

    Rows of non-negative numbers summing to one are probabilities; anything else cannot be. A
    single unit inside [0, 1] looks like a probability, but logits can fall there too: not certain.
    """
    out = _as_output_tensor(model(tf.convert_to_tensor(np.asarray(sample[:16], np.float32)), training=False))
    low_precision = tf.as_dtype(out.dtype) in (tf.float16, tf.bfloat16)
    out = np.asarray(out, np.float64)
    if out.shape[-1] == 1:
        inside = bool(np.all((out >= 0) & (out <= 1)))
        return ("probabilities", False) if inside else ("logits", True)
    # Half-precision softmax rows sum to one only to within a few of their rounding steps.
    tolerance = 3e-2 if low_precision else 1e-3
    if np.all(out >= 0) and np.allclose(out.sum(axis=-1), 1.0, atol=tolerance):
        return "probabilities", True
    return "logits", True
