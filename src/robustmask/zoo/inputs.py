"""Which pixel range a model expects, and the layer that lets robustmask feed it [0, 1] pixels.

robustmask attacks RGB images in [0, 1], so that an eps means the same thing for every model: eps
8/255 is eight grey levels whether the model was trained on [0, 1], [0, 255] or
``mobilenet_v2.preprocess_input``'s [-1, 1]. A model that expects another range gets the mapping as
its first layer, inside the graph attacks differentiate, instead of as a NumPy step before it (which
gradients would not see, and which would make eps a fraction of another range).

Conventions (the range the *loaded* model expects; the returned model always takes [0, 1]):

* ``"unit"``: [0, 1], robustmask's own models and the paper's (which feeds /255 images to MobileNetV2);
* ``"pixels"``: [0, 255], raw 8-bit pixels;
* ``"mobilenet_v2"``: [-1, 1], ``keras.applications.mobilenet_v2.preprocess_input`` (also MobileNet,
  InceptionV3, Xception);
* a ``keras.layers.Layer``: your own mapping from [0, 1] to what the model expects (for example a
  ``Normalization`` layer with the training set's mean and variance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from robustmask.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["INPUT_CONVENTIONS", "InputConvention", "detect_input_convention", "input_scaling_layer"]

#: name -> (scale, offset) of the Rescaling that maps [0, 1] to the range the model expects.
INPUT_CONVENTIONS: dict[str, tuple[float, float]] = {
    "unit": (1.0, 0.0),
    "pixels": (255.0, 0.0),
    "mobilenet_v2": (2.0, -1.0),
}
_RANGES = {"unit": "[0, 1]", "pixels": "[0, 255]", "mobilenet_v2": "[-1, 1]"}
# First layers of Keras applications trained on preprocess_input's [-1, 1] (MobileNetV2, MobileNet).
_MINUS_ONE_TO_ONE_STEMS = ("bn_Conv1", "conv1_bn")


@dataclass(frozen=True)
class InputConvention:
    """What a loaded model expected and why robustmask thinks so (``model.input_convention``)."""

    name: str  #: "unit", "pixels", "mobilenet_v2" or "custom"
    reason: str  #: how it was decided: "given", or the evidence in the model

    def __str__(self) -> str:
        range_ = _RANGES.get(self.name, "a custom range")
        if self.name == "unit":
            return f"the model takes [0, 1] pixels as robustmask does ({self.reason})"
        return f"the model expects {range_} ({self.reason}); robustmask maps [0, 1] to it in the model's first layer"


def input_scaling_layer(inputs: str, name: str | None = None) -> keras.layers.Layer | None:
    """The Rescaling that maps [0, 1] pixels to the range of convention ``inputs``; None for ``"unit"``."""
    import keras

    if inputs not in INPUT_CONVENTIONS:
        raise ModelError(f"inputs must be one of {', '.join(INPUT_CONVENTIONS)}, got {inputs!r}.")
    scale, offset = INPUT_CONVENTIONS[inputs]
    if inputs == "unit":
        return None
    return keras.layers.Rescaling(scale, offset=offset, name=name or f"unit_to_{inputs}_range")


def detect_input_convention(model: keras.Model) -> InputConvention:
    """The range ``model`` expects, from its first layers; "unit" with the reason when they do not say.

    A ``Rescaling`` first layer decides: ``Rescaling(1/255)`` or ``Rescaling(1/127.5, offset=-1)``
    means [0, 255] pixels, ``Rescaling(2, offset=-1)`` means [0, 1]. A Keras-application stem trained
    on [-1, 1] (MobileNetV2's ``bn_Conv1``) with no rescaling in front is ambiguous: robustmask's
    and the paper's MobileNetV2 take [0, 1], models trained with ``preprocess_input`` take [-1, 1].
    It is reported as "unit" with a reason that says so (``load_model`` warns); pass ``inputs=``.
    """
    first = _first_layers(model, 3)
    rescaling = next((layer for layer in first if type(layer).__name__ == "Rescaling"), None)
    if rescaling is not None:
        return _from_rescaling(rescaling)
    names = {layer.name for layer in first}
    if names & set(_MINUS_ONE_TO_ONE_STEMS):
        return InputConvention(
            "unit",
            "ambiguous: a MobileNet stem with no rescaling in front; robustmask's and the paper's take "
            "[0, 1], a model trained with mobilenet_v2.preprocess_input needs inputs='mobilenet_v2'",
        )
    return InputConvention("unit", "no rescaling layer in front: assumed, as for robustmask's models")


def _from_rescaling(layer: Any) -> InputConvention:
    scale, offset = float(layer.scale), float(layer.offset)
    if scale < 0.1:  # 1/255 or 1/127.5: the layer itself turns 8-bit pixels into the model's range
        return InputConvention("pixels", f"its first layer is Rescaling({scale:.6g}, offset={offset:g})")
    return InputConvention("unit", f"its first layer is Rescaling({scale:g}, offset={offset:g})")


def _first_layers(model: Any, count: int) -> list[Any]:
    """The first ``count`` non-input layers in call order, looking into a nested first model."""
    import keras

    out: list[Any] = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model) and not out:
            out.extend(_first_layers(layer, count))
        else:
            out.append(layer)
        if len(out) >= count:
            break
    return out[:count]
