"""The black box that black-box ART attacks get: the model's predictions only, every query counted.

Black-box attacks (``needs_gradients = False``: Square, HopSkipJump, or ``ARTAttack(...,
black_box=True)``) get an ART ``BlackBoxClassifierNeuralNetwork`` over a compiled forward pass that
returns NumPy arrays, so no gradient can flow through it; it sees the same log-probabilities (or
probabilities) as the white-box estimator (`robustmask.attacks.art.estimator`), and each image it is
asked about is counted: ``attack.queries``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from robustmask.attacks.art.estimator import _cached, _input_shape, _ModelView

if TYPE_CHECKING:  # pragma: no cover - ART is imported when the first black box is built
    from art.estimators.classification import BlackBoxClassifierNeuralNetwork

    from robustmask._types import Clip, Model
    from robustmask.modelinfo import ModelInfo

__all__ = ["black_box_estimator"]


def black_box_estimator(
    model: Model, info: ModelInfo, clip: Clip, outputs: str, count: Callable[[int], None]
) -> BlackBoxClassifierNeuralNetwork:
    """ART's black box over `model`: its predictions (`outputs`) in batches, ``count(n)`` for each
    batch of n images asked about. ``clip=None`` gives an unbounded box (Square indexes it)."""
    from art.estimators.classification import BlackBoxClassifierNeuralNetwork

    forward = _predict_function(model, info, outputs)

    def predict(batch: np.ndarray) -> np.ndarray:
        count(len(batch))
        return forward(tf.convert_to_tensor(np.asarray(batch, np.float32))).numpy()

    return BlackBoxClassifierNeuralNetwork(
        predict,
        _input_shape(model, info),
        info.num_classes,
        channels_first=False,
        clip_values=clip if clip is not None else (-np.inf, np.inf),
    )


def _predict_function(
    model: Model, info: ModelInfo, outputs: str = "log_probabilities"
) -> Callable[[tf.Tensor], tf.Tensor]:
    """A compiled forward pass to log-probabilities (or probabilities), cached per model (held weakly)."""
    view = _ModelView(model, info, outputs)
    return _cached(model, ("predict", info, outputs), lambda: tf.function(view, reduce_retracing=True))
