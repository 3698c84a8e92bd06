"""The checks of `robustmask.zoo.facemask_mobilenetv2`'s arguments: one-line `ModelError`s that say what to do."""

from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Sequence

from robustmask._validation import check_positive_number
from robustmask.errors import ModelError
from robustmask.zoo.imagenet_weights import ALPHAS

POOLINGS = ("avg", "max", "flatten")


def check_alpha(alpha: object) -> float:
    """MobileNetV2's width multiplier, one of Keras' published widths."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or float(alpha) not in ALPHAS:
        raise ModelError(f"alpha must be one of {ALPHAS} (MobileNetV2's published widths), got {alpha!r}.")
    return float(alpha)


def check_momentum(momentum: object, *, from_scratch: bool) -> float | None:
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


def check_args(
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
    """The checked ``(input_shape, head, dropout, num_classes, epochs)``; a `ModelError` for any bad one."""
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
    if pooling not in POOLINGS:
        raise ModelError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")
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


def check_weights(
    weights: str | os.PathLike | None, shape: tuple[int, ...], freeze_base: bool | str
) -> tuple[str | None, bool]:
    """``(weights as a string or None, whether the base is frozen)``; warns on a frozen random base."""
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
            stacklevel=3,  # facemask_mobilenetv2's caller
        )
    return weights_str, freeze
