"""The paper's face-mask classifier: MobileNetV2 base + a small dense head (Sheikh & Zafar 2023, Fig. 5).

    >>> from robustmask.zoo import facemask_mobilenetv2
    >>> model = facemask_mobilenetv2()                      # paper settings, ImageNet base, compiled
    >>> model = facemask_mobilenetv2((96, 96, 3), weights=None)   # small, random init, base trainable

Model layout (``model.summary()``)::

    input (H, W, 3), [0, 1] images (the paper feeds /255 images straight to the base)
    [Rescaling(2, offset=-1)]           only with mobilenet_preprocessing=True
    mobilenetv2_1.00_224                nested keras.Model: MobileNetV2(alpha=1.0, include_top=False)
    pooling                             GlobalAveragePooling2D ("avg", default) | GlobalMaxPooling2D | Flatten
    head_dense_1 (128, relu), head_dropout_1 (0.6)
    head_dense_2 (62, relu),  head_dropout_2 (0.4)  # 62 as printed in the paper (64 likely a typo)
    head_dense_3 (32, relu),  head_dropout_3 (0.3)
    predictions (num_classes, softmax)

Decisions (documented here because callers depend on them):

* Labels: compiled with ``SparseCategoricalCrossentropy`` because robustmask datasets yield integer
  labels; the paper's categorical cross-entropy on one-hot labels is the same loss. Pass
  ``labels="one_hot"`` for ``CategoricalCrossentropy``.
* Learning rate: the paper's Keras 2 ``Adam(lr=1e-3, decay=lr/epochs)`` meant
  ``lr_t = lr / (1 + decay * iterations)``; that is exactly
  ``InverseTimeDecay(lr, decay_steps=1, decay_rate=lr/epochs)``, evaluated by the Keras 3 optimizer at
  its iteration counter (0 for the first step), as Keras 2 did.
* ``weights="imagenet"``: the weights come from Keras' own cache file
  ``<KERAS_HOME or ~/.keras>/models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_<S>_no_top.h5``
  (downloaded by Keras when missing and the network allows). ``S`` is the input size when the input
  is square with a size in {96, 128, 160, 192, 224} (Keras' published resolutions), else 224: for
  other sizes the 224 weights are loaded with a warning (convolution weights do not depend on the
  input size). If the size-specific file cannot be had but the 224 file is cached, the 224 weights
  are used with a warning. Nothing cached and no network: a one-line ``ModelError`` names the file
  and folder, and the alternatives (``robustmask.zoo.seed_imagenet_weights()``, ``weights=None``).
* ``freeze_base="auto"`` (default) means True for ImageNet/path weights and False for
  ``weights=None``: a frozen random base keeps BatchNorm statistics at their initial values and gives
  degenerate features. ``weights=None, freeze_base=True`` is allowed but warns; use
  :func:`robustmask.zoo.recalibrate_batchnorm` then.
* A weights path may be a full-model file of this architecture (``.keras``, ``.weights.h5``, or a
  legacy ``.h5`` whose layers include the head) or a MobileNetV2 no-top base weights file (legacy
  ``.h5`` such as Keras' ImageNet cache file, or a ``.weights.h5`` of the base alone). The kind is
  detected from the file's content.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from robustmask.errors import ModelError
from robustmask.zoo import imagenet_weights
from robustmask.zoo._mobilenetv2_args import check_alpha, check_args, check_momentum, check_weights
from robustmask.zoo.imagenet_weights import (  # noqa: F401  (re-exported: zoo.mobilenetv2 was their home)
    ALPHAS,
    IMAGENET_SIZES,
    imagenet_weights_filename,
    keras_models_cache_dir,
)

if TYPE_CHECKING:  # pragma: no cover - keras is imported where it is used
    import keras

__all__ = [
    "PAPER_HEAD",
    "PAPER_DROPOUT",
    "IMAGENET_SIZES",
    "imagenet_weights_filename",
    "keras_models_cache_dir",
    "facemask_mobilenetv2",
]

PAPER_HEAD: tuple[int, ...] = (128, 62, 32)
PAPER_DROPOUT: tuple[float, ...] = (0.6, 0.4, 0.3)


def facemask_mobilenetv2(
    input_shape: Sequence[int] = (224, 224, 3),
    weights: str | os.PathLike | None = "imagenet",
    head: Sequence[int] = PAPER_HEAD,
    dropout: Sequence[float] = PAPER_DROPOUT,
    num_classes: int = 3,
    pooling: str = "avg",
    freeze_base: bool | str = "auto",
    compile: bool = True,
    learning_rate: float = 1e-3,
    epochs: int = 30,
    *,
    labels: str = "int",
    mobilenet_preprocessing: bool = False,
    name: str = "facemask_mobilenetv2",
    alpha: float = 1.0,
    batchnorm_momentum: float | None = None,
) -> keras.Model:
    """Build the paper's MobileNetV2 face-mask classifier.

    Args:
        input_shape: (height, width, 3); at least 32x32. The paper uses 224x224x3.
        weights: ``"imagenet"`` (Keras' cache file, see the module docstring), a path to a weights
            file (full model of this architecture, or a MobileNetV2 no-top base), or ``None``.
        head: widths of the Dense(relu) layers; default the paper's (128, 62, 32).
        dropout: Dropout rate after each head Dense; same length as ``head``; default (0.6, 0.4, 0.3).
        num_classes: softmax outputs (>= 2). The paper: 3 (incorrect_mask, with_mask, without_mask).
        pooling: ``"avg"`` (GlobalAveragePooling2D, default), ``"max"`` or ``"flatten"``.
        freeze_base: True, False or ``"auto"`` (True for imagenet/path weights, False for None).
        compile: compile with Adam + InverseTimeDecay(learning_rate, 1, learning_rate/epochs),
            sparse categorical cross-entropy (or categorical with ``labels="one_hot"``), accuracy.
        learning_rate: the paper's 1e-3.
        epochs: the paper's 30 (its decay is ``learning_rate / epochs``).
        labels: ``"int"`` (default; robustmask datasets) or ``"one_hot"``; only affects the loss.
        mobilenet_preprocessing: prepend ``Rescaling(2, offset=-1)`` so [0, 1] images reach the base in
            the [-1, 1] range MobileNetV2 was pretrained on. Default False: the paper feeds [0, 1]
            images directly.
        name: the model's name.
        alpha: MobileNetV2's width multiplier; the paper's 1.0, or one of Keras' 0.35, 0.5, 0.75,
            1.3, 1.4 (ImageNet weights exist for those). 0.35 trains from scratch on 2 CPU cores.
        batchnorm_momentum: the base's BatchNorm moving-average momentum. ``None``: Keras' 0.999 with
            pre-trained weights, 0.9 with ``weights=None``. Measured on 2,400 synthetic faces at 96 px
            (alpha 0.35, from scratch, 38 updates an epoch): with 0.999 the moving statistics lag the
            weights so far that validation accuracy stays at chance (33.3%) after 6 epochs while
            training accuracy reaches 49%; with 0.9 it is 71.7% after 8 epochs.

    Returns:
        A ``keras.Model`` taking [0, 1] images and returning class probabilities (softmax).

    Raises:
        ModelError: bad arguments, missing/unloadable weights (one line that says what to do).
    """
    shape, head_t, drop_t, num_classes, epochs = check_args(
        input_shape, head, dropout, num_classes, pooling, freeze_base, learning_rate, epochs, labels
    )
    weights_str, freeze = check_weights(weights, shape, freeze_base)
    alpha = check_alpha(alpha)
    imagenet_path = None
    if weights_str == "imagenet":  # called from here: its warnings name the caller's line
        imagenet_path = imagenet_weights.resolve_imagenet_weights(shape[0], shape[1], alpha)
    momentum = check_momentum(batchnorm_momentum, from_scratch=weights_str is None)
    base = _base(shape, alpha, imagenet_path, momentum)
    model = _assemble(base, shape, mobilenet_preprocessing, pooling, head_t, drop_t, num_classes, name)
    if weights_str is not None and weights_str != "imagenet":
        imagenet_weights.load_weights_path(model, base, weights_str)
    base.trainable = not freeze
    if compile:
        _compile(model, learning_rate, epochs, labels)
    return model


def _base(
    shape: tuple[int, ...], alpha: float, imagenet_path: str | None, momentum: float | None
) -> keras.Model:
    """MobileNetV2 without its top: the BatchNorm `momentum` set (None: Keras'), weights from `imagenet_path`."""
    import keras

    base = keras.applications.MobileNetV2(
        input_shape=shape, alpha=alpha, include_top=False, weights=None, pooling=None
    )
    if momentum is not None:
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = momentum
    if imagenet_path is not None:
        try:
            base.load_weights(imagenet_path)
        except Exception as exc:
            raise ModelError(
                f"could not load MobileNetV2 ImageNet weights from {imagenet_path} "
                f"({imagenet_weights.one_line(exc)}); delete the file and "
                "download it again, or run robustmask.zoo.seed_imagenet_weights(overwrite=True)."
            ) from None
    return base


def _assemble(
    base: keras.Model,
    shape: tuple[int, ...],
    mobilenet_preprocessing: bool,
    pooling: str,
    head: tuple[int, ...],
    dropout: tuple[float, ...],
    num_classes: int,
    name: str,
) -> keras.Model:
    """The classifier around `base`: input, optional rescaling, base, pooling, dense head, softmax."""
    import keras

    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    if mobilenet_preprocessing:
        x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_mobilenet_range")(x)
    x = base(x)
    if pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="pooling")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="pooling")(x)
    else:
        x = keras.layers.Flatten(name="pooling")(x)
    for i, (width, rate) in enumerate(zip(head, dropout), start=1):
        x = keras.layers.Dense(width, activation="relu", name=f"head_dense_{i}")(x)
        x = keras.layers.Dropout(rate, name=f"head_dropout_{i}")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def _compile(model: keras.Model, learning_rate: float, epochs: int, labels: str) -> None:
    """The paper's training settings: Adam with Keras 2's decay lr / epochs, cross-entropy, accuracy."""
    import keras

    schedule = keras.optimizers.schedules.InverseTimeDecay(
        initial_learning_rate=float(learning_rate),
        decay_steps=1,
        decay_rate=float(learning_rate) / epochs,
    )
    loss = (
        keras.losses.SparseCategoricalCrossentropy()
        if labels == "int"
        else keras.losses.CategoricalCrossentropy()
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss=loss, metrics=["accuracy"])
