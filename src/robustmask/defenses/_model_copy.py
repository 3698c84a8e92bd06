"""The defended model starts as a copy: the user's model is never changed by a defence."""

from __future__ import annotations

from collections.abc import Iterator

import keras

from robustmask.errors import ModelError, first_line


def copy_model(model: keras.Model) -> keras.Model:
    """An independent copy of a Keras model: same architecture, weights and frozen layers."""
    try:
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
    except (ValueError, TypeError, NotImplementedError, AttributeError, KeyError) as error:
        # What clone_model raises for models it cannot rebuild from their config.
        raise ModelError(
            f"cannot copy {type(model).__name__} {getattr(model, 'name', '')!r} to train a defended version: "
            f"{first_line(error)}; "
            "use a Functional or Sequential model, or give the subclass get_config/from_config"
        ) from None
    return clone


def prepare_layers(model: keras.Model, layers: str, batchnorm: str) -> keras.Model:
    """Set which layers of the copy train: "all" unfreezes every layer; frozen BatchNorm stays frozen.

    A BatchNormalization layer with ``trainable=False`` runs in inference mode in Keras 3: its
    moving statistics and scales stay as they were, which keeps a pre-trained base stable while
    adversarial images (whose statistics differ from clean ones) flow through it.
    """
    if layers == "all":
        _set_trainable(model, True)
    if batchnorm == "frozen":
        for layer in _all_layers(model):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
    return model


def _set_trainable(layer: keras.layers.Layer, value: bool) -> None:
    layer.trainable = value
    for inner in getattr(layer, "layers", []):
        _set_trainable(inner, value)


def _all_layers(layer: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    for inner in getattr(layer, "layers", []):
        yield inner
        yield from _all_layers(inner)
