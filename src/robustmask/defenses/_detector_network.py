"""The adversarial detector's network: features read from the classifier, and the small head on them.

Metzen et al. (ICLR 2017) attach a small binary classifier to one layer of the classifier it guards;
`robustmask.defenses.detector.AdversarialDetector` trains the head (`detector_head`) on what
`feature_extractor` reads, with the classifier frozen.
"""

from __future__ import annotations

import keras
import numpy as np

from robustmask.errors import ModelError, first_line


def feature_extractor(model: keras.Model, features: str) -> keras.Model:
    """``input -> features``: the classifier's penultimate layer (``"penultimate"``) or the named layer.

    Raises:
        ModelError: the classifier is not Functional or Sequential, has one layer only, or has no
            layer of that name; or the layer's output cannot be read.
    """
    layers = getattr(model, "layers", None)
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not layers or not inputs:
        raise ModelError(
            f"features={features!r} needs a Functional or Sequential classifier (got {type(model).__name__})"
        )
    if features == "penultimate":
        if len(layers) < 2:
            raise ModelError("the classifier has one layer: there are no penultimate features")
        layer = layers[-2]
    else:
        names = [layer.name for layer in layers]
        if features not in names:
            raise ModelError(f"the classifier has no layer {features!r}; its layers: {', '.join(names)}")
        layer = layers[names.index(features)]
    try:
        return keras.Model(model.inputs, layer.output, name="detector_features")
    except (ValueError, AttributeError) as error:
        raise ModelError(f"cannot read the features of layer {layer.name!r}: {first_line(error)}") from None


def detector_head(features: np.ndarray, hidden: int, seed: int) -> keras.Model:
    """``features -> one logit``: standardised with the statistics of `features`, one ReLU layer of
    `hidden` units; weights initialised from `seed`."""
    init = keras.initializers.GlorotUniform(seed=seed)
    norm = keras.layers.Normalization(axis=-1)  # features standardised with the training statistics
    norm.adapt(features.reshape(len(features), -1))
    return keras.Sequential(
        [
            keras.Input(features.shape[1:]),
            keras.layers.Flatten(),
            norm,
            keras.layers.Dense(hidden, activation="relu", kernel_initializer=init),
            keras.layers.Dense(1, kernel_initializer=init),
        ],
        name="detector_head",
    )
