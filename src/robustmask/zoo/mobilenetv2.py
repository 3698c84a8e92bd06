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

import numbers
import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

from robustmask._validation import check_positive_number
from robustmask.errors import ModelError
from robustmask.zoo import imagenet_weights
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
_POOLINGS = ("avg", "max", "flatten")


def _check_alpha(alpha: object) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or float(alpha) not in ALPHAS:
        raise ModelError(f"alpha must be one of {ALPHAS} (MobileNetV2's published widths), got {alpha!r}.")
    return float(alpha)


def _check_momentum(momentum: object, *, from_scratch: bool) -> float | None:
    """The BatchNorm momentum to set, or None to keep Keras' 0.999."""
    if momentum is None:
        return 0.9 if from_scratch else None
    if (
        isinstance(momentum, bool)
        or not isinstance(momentum, numbers.Real)
        or not 0.0 <= float(momentum) < 1.0
    ):
        raise ModelError(f"batchnorm_momentum must be a number in [0, 1) or None, got {momentum!r}.")
    return float(momentum)


def _check_args(
    input_shape: Sequence[int],
    head: Sequence[int],
    dropout: Sequence[float],
    num_classes: int,
    pooling: str,
    freeze_base: bool | str,
    learning_rate: float,
    epochs: int,
    labels: str,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[float, ...], int, int]:
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ModelError(f"input_shape must be (height, width, channels), got {input_shape!r}.") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ModelError(
            f"input_shape must be (height, width, channels) with positive sizes, got {input_shape!r}."
        )
    if shape[0] < 32 or shape[1] < 32:
        raise ModelError(f"MobileNetV2 needs inputs of at least 32x32 pixels, got input_shape={shape}.")
    try:
        head_t = tuple(head)
        drop_t = tuple(dropout)
    except TypeError:
        raise ModelError(
            f"head and dropout must be sequences, got head={head!r}, dropout={dropout!r}."
        ) from None
    if len(head_t) != len(drop_t):
        raise ModelError(
            f"head and dropout must have the same length (one Dropout after each Dense): "
            f"got {len(head_t)} widths {head_t} and {len(drop_t)} rates {drop_t}."
        )
    for w in head_t:
        if isinstance(w, bool) or not isinstance(w, numbers.Integral) or w < 1:
            raise ModelError(f"head widths must be positive integers, got {head_t}.")
    for r in drop_t:
        if isinstance(r, bool) or not isinstance(r, numbers.Real) or not 0.0 <= float(r) < 1.0:
            raise ModelError(f"dropout rates must be numbers in [0, 1), got {drop_t}.")
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 2:
        raise ModelError(f"num_classes must be an integer >= 2 (softmax output), got {num_classes!r}.")
    if pooling not in _POOLINGS:
        raise ModelError(f"pooling must be one of {_POOLINGS}, got {pooling!r}.")
    if not (isinstance(freeze_base, bool) or (isinstance(freeze_base, str) and freeze_base == "auto")):
        raise ModelError(f"freeze_base must be True, False or 'auto', got {freeze_base!r}.")
    check_positive_number(learning_rate, "learning_rate", error=ModelError)
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ModelError(f"epochs must be a positive integer (it sets the decay lr/epochs), got {epochs!r}.")
    if labels not in ("int", "one_hot"):
        raise ModelError(f"labels must be 'int' (sparse) or 'one_hot', got {labels!r}.")
    return (
        shape,
        tuple(int(w) for w in head_t),
        tuple(float(r) for r in drop_t),
        int(num_classes),
        int(epochs),
    )


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
    import keras

    shape, head_t, drop_t, num_classes, epochs = _check_args(
        input_shape, head, dropout, num_classes, pooling, freeze_base, learning_rate, epochs, labels
    )
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise ModelError(f"weights must be 'imagenet', a file path or None, got {type(weights).__name__}.")
    weights_str = None if weights is None else os.fspath(weights)
    if weights_str == "imagenet" and shape[2] != 3:
        raise ModelError(
            f"ImageNet weights need 3-channel inputs, got input_shape={shape}; pass weights=None."
        )
    if freeze_base == "auto":
        freeze = weights_str is not None
    else:
        freeze = bool(freeze_base)
    if weights_str is None and freeze:
        warnings.warn(
            "facemask_mobilenetv2: weights=None with freeze_base=True keeps the random base's BatchNorm "
            "statistics at their initial values (degenerate features); call "
            "robustmask.zoo.recalibrate_batchnorm(model, x) before use.",
            stacklevel=2,
        )
    alpha = _check_alpha(alpha)
    imagenet_path = None
    if weights_str == "imagenet":
        imagenet_path = imagenet_weights.resolve_imagenet_weights(shape[0], shape[1], alpha)

    base = keras.applications.MobileNetV2(
        input_shape=shape, alpha=alpha, include_top=False, weights=None, pooling=None
    )
    momentum = _check_momentum(batchnorm_momentum, from_scratch=weights_str is None)
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
    for i, (width, rate) in enumerate(zip(head_t, drop_t), start=1):
        x = keras.layers.Dense(width, activation="relu", name=f"head_dense_{i}")(x)
        x = keras.layers.Dropout(rate, name=f"head_dropout_{i}")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=name)

    if weights_str is not None and weights_str != "imagenet":
        imagenet_weights.load_weights_path(model, base, weights_str)

    base.trainable = not freeze

    if compile:
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
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=schedule), loss=loss, metrics=["accuracy"]
        )
    return model
