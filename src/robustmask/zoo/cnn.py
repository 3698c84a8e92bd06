"""A small face-mask CNN that learns from scratch in minutes, and can be made robust on 2 CPU cores.

MobileNetV2 (the paper's model) needs ImageNet weights to learn the face-mask task, and its frozen
base cannot become robust (adversarial training of the head alone leaves the non-robust features;
docs/defences.md). This network has no pre-trained part: three conv blocks with BatchNorm and a
small dense head, about 120k weights at 48 px, so whole-network adversarial training (PGD, TRADES)
takes minutes on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from robustmask._validation import check_positive_int
from robustmask.errors import ModelError


def facemask_cnn(
    input_shape: Sequence[int] = (48, 48, 3),
    num_classes: int = 3,
    *,
    filters: Sequence[int] = (32, 64, 128),
    dense: int = 64,
    learning_rate: float = 1e-3,
    compile: bool = True,
) -> keras.Model:
    """A conv-BN-ReLU-maxpool x len(filters), flatten, dense, softmax classifier for [0, 1] images.

    Args:
        input_shape: (height, width, channels); height and width divisible by 2 ** len(filters).
        num_classes: 3 for the paper's classes (incorrect / with / without mask), 2 for mask / no mask.
        filters: conv filters of each block.
        dense: width of the hidden dense layer.
        learning_rate: Adam's learning rate when compiled.
        compile: compile with Adam and sparse categorical cross-entropy (integer labels).

    Example::

        model = robustmask.zoo.facemask_cnn((48, 48, 3))
        model.fit(x_train, y_train, epochs=30, batch_size=64)
    """
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3 or any(v < 1 for v in shape):
        raise ModelError(f"input_shape must be (height, width, channels), got {tuple(input_shape)}")
    check_positive_int(num_classes, "num_classes", error=ModelError)
    if num_classes < 2:
        raise ModelError(f"num_classes must be at least 2, got {num_classes}")
    if shape[0] % 2 ** len(filters) or shape[1] % 2 ** len(filters):
        raise ModelError(
            f"input_shape {shape[:2]} must be divisible by {2 ** len(filters)} for {len(filters)} "
            "pooling blocks: resize the images (48 or 64 px)"
        )
    layers = [keras.Input(shape)]
    for width in filters:
        layers += [
            keras.layers.Conv2D(
                check_positive_int(width, "filters", error=ModelError), 3, padding="same", use_bias=False
            ),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.MaxPooling2D(),
        ]
    layers += [
        keras.layers.Flatten(),
        keras.layers.Dense(dense, activation="relu"),
        keras.layers.Dense(num_classes, activation="softmax", name="predictions"),
    ]
    model = keras.Sequential(layers, name="facemask_cnn")
    if compile:
        model.compile(
            keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"]
        )
    return model
