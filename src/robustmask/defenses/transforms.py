"""Input transforms in front of any Keras classifier, and why they are not a defence on their own.

JPEG compression (Dziugaite et al. 2016, arXiv 1608.00853; Guo et al. 2018, arXiv 1711.00117), feature
squeezing (Xu, Evans & Qi 2018, "Feature Squeezing", arXiv 1704.01155) and spatial (median) smoothing
are Keras layers in native TensorFlow, for images in [0, 1]. Each has a ``gradient`` option that says
what the backward pass is:

* ``"exact"``: what the TensorFlow op gives. JPEG and rounding have no gradient: an attack that
  differentiates through them sees zeros and does nothing. That is *gradient masking*, not
  robustness. A median filter is differentiable almost everywhere and passes gradients on.
* ``"none"``: no gradient at all (``tf.stop_gradient``), for every transform.
* ``"bpda"``: Backward Pass Differentiable Approximation (Athalye, Carlini & Wagner 2018, "Obfuscated
  Gradients Give a False Sense of Security", arXiv 1802.00420): the transform in the forward pass, the
  identity in the backward pass. This is the adaptive attacker's view of the same defended model.

The forward pass is the same for every option, so a model built with ``"bpda"`` predicts exactly
like the deployed one: attack the BPDA model, then score the adversarial images on the deployed one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import tensorflow as tf

from robustmask._validation import check_choice, check_positive_int
from robustmask.defenses.base import Defense
from robustmask.errors import ModelError, RobustmaskError
from robustmask.modelinfo import inspect_model

__all__ = [
    "GRADIENTS",
    "InputTransform",
    "JPEGCompression",
    "FeatureSqueezing",
    "SpatialSmoothing",
    "InputTransformDefense",
    "median_filter",
]

#: The backward passes every transform offers.
GRADIENTS = ("exact", "none", "bpda")


def _identity_backward(fn: Callable[[tf.Tensor], tf.Tensor]) -> Callable[[tf.Tensor], tf.Tensor]:
    @tf.custom_gradient
    def bpda(x):
        return fn(x), lambda upstream: upstream

    return bpda


@keras.saving.register_keras_serializable(package="robustmask")
class InputTransform(keras.layers.Layer):
    """Base class: a shape-preserving transform of [0, 1] images, with a chosen backward pass.

    Subclasses implement `transform` (the forward op on a float32 batch) and list their settings
    in `get_config`. The layer has no weights; it does the same in training and inference.

    Args:
        gradient: how attacks differentiate through it: ``"exact"`` (default), ``"none"`` or ``"bpda"`` (the
            identity's, Athalye et al. 2018).
        **kwargs: Keras ``Layer`` arguments (``name``, ``dtype``, ``trainable``...).
    """

    def __init__(self, gradient: str = "exact", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gradient = check_choice(gradient, GRADIENTS, "gradient")

    def transform(self, x: tf.Tensor) -> tf.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        x = tf.cast(inputs, tf.float32)
        if self.gradient == "bpda":
            return _identity_backward(self.transform)(x)
        if self.gradient == "none":
            return tf.stop_gradient(self.transform(x))
        return self.transform(x)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def with_gradient(self, gradient: str) -> "InputTransform":
        """A new layer with the same settings and another backward pass."""
        return type(self).from_config({**self.get_config(), "gradient": gradient, "name": None})

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gradient": self.gradient}


@keras.saving.register_keras_serializable(package="robustmask")
class JPEGCompression(InputTransform):
    """JPEG-encode and decode every image at ``quality`` (1-100), as in Guo et al. 2018.

    Images are quantised to 8 bits, compressed with TensorFlow's libjpeg (4:2:0 chroma) and scaled back
    to [0, 1]. Needs 1 or 3 channels. With ``gradient="exact"`` the gradient is zero (masked).

    Args:
        quality: JPEG quality, 1 to 100 (default 75).
        gradient: how attacks differentiate through it: ``"exact"`` (default), ``"none"`` or ``"bpda"`` (the
            identity's, Athalye et al. 2018).
        **kwargs: Keras ``Layer`` arguments (``name``, ``dtype``, ``trainable``...).

    Example::

        jpeg = JPEGCompression(quality=75)
        defended, _ = InputTransformDefense(jpeg).fit(model, None)
    """

    def __init__(self, quality: int = 75, gradient: str = "exact", **kwargs: Any) -> None:
        super().__init__(gradient, **kwargs)
        quality = check_positive_int(quality, "quality")
        if quality > 100:
            raise RobustmaskError(f"quality must be in 1..100, got {quality}")
        self.quality = quality

    def transform(self, x: tf.Tensor) -> tf.Tensor:
        if x.shape[-1] not in (1, 3):
            raise ModelError(f"JPEG needs 1 or 3 channels, got {x.shape[-1]}")
        x = tf.clip_by_value(x, 0.0, 1.0)
        return tf.map_fn(
            lambda image: tf.image.adjust_jpeg_quality(image, self.quality),
            x,
            fn_output_signature=tf.TensorSpec(x.shape[1:], tf.float32),
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "quality": self.quality}


@keras.saving.register_keras_serializable(package="robustmask")
class FeatureSqueezing(InputTransform):
    """Bit-depth reduction, ``round(x * (2**bits - 1)) / (2**bits - 1)``, then an optional median filter.

    Xu, Evans & Qi, "Feature Squeezing: Detecting Adversarial Examples in Deep Neural Networks", NDSS
    2018, https://arxiv.org/abs/1704.01155. Inputs are clipped to [0, 1] first. Rounding has no
    gradient, so ``gradient="exact"`` masks the gradient.

    Args:
        bits: colour depth kept, 1 to 16 (8 leaves 8-bit images unchanged).
        median: odd window of a median filter applied after the squeeze (Xu et al.'s 2x2/3x3
            smoothing squeezer), or None.
        gradient: how attacks differentiate through it: ``"exact"`` (default), ``"none"`` or ``"bpda"`` (the
            identity's, Athalye et al. 2018).
        **kwargs: Keras ``Layer`` arguments (``name``, ``dtype``, ``trainable``...).

    Example::

        squeeze = FeatureSqueezing(bits=4, gradient="bpda")   # the adaptive attacker's view
    """

    def __init__(
        self, bits: int = 4, median: int | None = None, gradient: str = "exact", **kwargs: Any
    ) -> None:
        super().__init__(gradient, **kwargs)
        self.bits = check_positive_int(bits, "bits")
        if self.bits > 16:
            raise RobustmaskError(f"bits must be in 1..16, got {bits}")
        self.median = None if median is None else _check_window(median, "median")

    def transform(self, x: tf.Tensor) -> tf.Tensor:
        levels = float(2**self.bits - 1)
        squeezed = tf.round(tf.clip_by_value(x, 0.0, 1.0) * levels) / levels
        return squeezed if self.median is None else median_filter(squeezed, self.median)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "bits": self.bits, "median": self.median}


@keras.saving.register_keras_serializable(package="robustmask")
class SpatialSmoothing(InputTransform):
    """A ``window`` x ``window`` median filter per channel (edges mirrored, scipy's mode="reflect").

    Xu et al. 2018 (https://arxiv.org/abs/1704.01155), "local smoothing". The median passes the
    gradient to the chosen pixel, so ``gradient="exact"`` does not mask: a plain attack adapts.

    Args:
        window: the median filter's odd window (default 3).
        gradient: how attacks differentiate through it: ``"exact"`` (default), ``"none"`` or ``"bpda"`` (the
            identity's, Athalye et al. 2018).
        **kwargs: Keras ``Layer`` arguments (``name``, ``dtype``, ``trainable``...).

    Example::

        smooth = SpatialSmoothing(window=3)
        defended, _ = InputTransformDefense([smooth, JPEGCompression(90)]).fit(model, None)
    """

    def __init__(self, window: int = 3, gradient: str = "exact", **kwargs: Any) -> None:
        super().__init__(gradient, **kwargs)
        self.window = _check_window(window, "window")

    def transform(self, x: tf.Tensor) -> tf.Tensor:
        return median_filter(x, self.window)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "window": self.window}


def median_filter(x: tf.Tensor, window: int) -> tf.Tensor:
    """Median over ``window`` x ``window`` neighbourhoods of each channel of an (n, h, w, c) batch.

    Equals ``scipy.ndimage.median_filter(x, size=(1, window, window, 1), mode="reflect")``. Graph-safe.
    """
    window = _check_window(window, "window")
    if window == 1:
        return x
    half = window // 2
    padded = tf.pad(x, [[0, 0], [half, half], [half, half], [0, 0]], mode="SYMMETRIC")
    channels = x.shape[-1]
    patches = tf.image.extract_patches(padded, [1, window, window, 1], [1, 1, 1, 1], [1, 1, 1, 1], "VALID")
    # (n, h, w, window*window*c), ordered (row, col, channel): put the window on the last axis.
    shape = tf.concat([tf.shape(patches)[:3], [window * window, channels]], axis=0)
    patches = tf.transpose(tf.reshape(patches, shape), [0, 1, 2, 4, 3])
    middle = window * window // 2
    return tf.math.top_k(patches, k=middle + 1, sorted=True).values[..., middle]


def _check_window(value: object, name: str) -> int:
    value = check_positive_int(value, name)
    if value % 2 == 0:
        raise RobustmaskError(f"{name} must be odd (a median window centred on the pixel), got {value}")
    return value


class InputTransformDefense(Defense):
    """A new model that applies ``transforms`` (in order) to its input, then the given model.

    The given model is used as it is (its weights are shared, not copied, and never changed), so this
    works in front of any Keras classifier; its softmax or logits output is kept, so
    `robustmask.modelinfo` detects the defended model's output as the model's.

    Args:
        transforms: an `InputTransform` layer or a sequence of them.
        gradient: None keeps each transform's own backward pass; "exact", "none" or "bpda" sets it for
            all of them (new layers are made; the given ones are not changed).
        input_shape: the model's input shape (no batch axis) when the model does not declare one.

    What it stops: FGSM/PGD that differentiate through JPEG or squeezing (zero gradient). What it does
    NOT stop: the same attack with ``gradient="bpda"`` (docs/defences_beyond.md has the numbers).

    Example::

        transforms = [FeatureSqueezing(bits=5), JPEGCompression(quality=75)]
        deployed, _ = InputTransformDefense(transforms).fit(model, None)
        attacker, _ = InputTransformDefense(transforms, gradient="bpda").fit(model, None)
        x_adv = robustmask.attacks.PGD(steps=20)(attacker, x, y, eps=8 / 255)
        accuracy = (deployed.predict(x_adv).argmax(1) == y).mean()
    """

    def __init__(
        self,
        transforms: keras.layers.Layer | Sequence[keras.layers.Layer],
        gradient: str | None = None,
        *,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        layers = [transforms] if isinstance(transforms, keras.layers.Layer) else list(transforms)
        if not layers:
            raise RobustmaskError("transforms is empty: give at least one InputTransform")
        for layer in layers:
            if not isinstance(layer, keras.layers.Layer):
                raise RobustmaskError(
                    f"transforms must be Keras layers (e.g. JPEGCompression()), got {type(layer).__name__}"
                )
        if gradient is not None:
            check_choice(gradient, GRADIENTS, "gradient")
            for layer in layers:
                if not isinstance(layer, InputTransform):
                    raise RobustmaskError(
                        f"gradient={gradient!r} applies to InputTransform layers; "
                        f"{type(layer).__name__} is not one"
                    )
            layers = [layer.with_gradient(gradient) for layer in layers]
        self.transforms = layers
        self.gradient = gradient
        self.input_shape = None if input_shape is None else tuple(int(v) for v in input_shape)

    def fit(self, model: keras.Model, train_data: Any = None, **kwargs: Any) -> tuple[keras.Model, None]:
        """Return ``(defended_model, None)``; ``train_data`` is not needed and is ignored."""
        info = inspect_model(model)
        shape = self.input_shape or info.input_shape
        if shape is None or any(v is None for v in shape):
            raise ModelError(
                "the model does not declare a fixed input shape: pass "
                "InputTransformDefense(..., input_shape=(height, width, channels))"
            )
        inputs = keras.Input(shape)
        x = inputs
        for layer in self.transforms:
            x = layer(x)
        name = f"{getattr(model, 'name', 'model')}_transformed"
        return keras.Model(inputs, model(x), name=name), None
