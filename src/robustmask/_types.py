"""Type aliases of the public API (annotations only; nothing here runs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Union

import numpy as np
import tensorflow as tf

# A Keras model, or any callable model(x, training=False) -> outputs. Keras ships no type stubs, so
# mypy sees keras.Model as Any; the alias says what is meant.
Model = Callable[..., tf.Tensor]
# Images: (n, ...) array-likes inside the clip range; labels: integer classes or one-hot rows.
Images = Union[np.ndarray, tf.Tensor]
Labels = Union[np.ndarray, tf.Tensor, Sequence[int]]
# One epsilon or several.
Epsilons = Union[float, Sequence[float], np.ndarray]
# An eps the compiled graph gets: a Python float, or a scalar or per-image float tensor.
TensorEps = Union[float, tf.Tensor]
# A clip range: (low, high), or None for no clipping.
Clip = Union[tuple[float, float], None]

__all__ = ["Clip", "Epsilons", "Images", "Labels", "Model", "TensorEps"]
