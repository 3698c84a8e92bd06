"""The Evaluator's compiled per-batch work: a variant's forward pass and loss in one call.

A sweep scores the clean batch and one adversarial batch per epsilon. Each variant goes through one
compiled function that returns log-probabilities, losses and predicted classes together (the classes
by `robustmask.predictions.top_classes`, as everywhere else); the epsilons are looped in
Python, one forward pass held at a time. That loop was measured against the alternatives on a
2-core CPU (MobileNetV2, batch 64, 11 variants): 430 ms a batch, against 645 ms for the same
passes in a graph loop (tf.map_fn) and more again for eleven passes unrolled in one graph, which
TensorFlow runs side by side on too few cores. The function is traced once per model, output kind
and image shape, shared by every Evaluator (a fresh one per call costs no new trace), and its
input signature leaves the batch size open, so the last, smaller batch does not trace it again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
import tensorflow as tf

from robustmask._weakrefs import PerModelCache
from robustmask.modelinfo import ModelInfo, cross_entropy, log_probabilities
from robustmask.predictions import top_classes

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Model

_SCORERS = PerModelCache()


@dataclass(frozen=True)
class Scorer:
    """``score(images, y_onehot) -> (log_probs, losses, classes)``, compiled; `sweep` scores each variant."""

    score: Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor, tf.Tensor]]
    num_classes: int

    def clean(self, x: tf.Tensor) -> tf.Tensor:
        """The predicted classes (int64) of one batch (the loss against placeholder labels is dropped)."""
        return self.score(x, tf.zeros([tf.shape(x)[0], self.num_classes]))[2]

    def sweep(
        self, x: tf.Tensor, adversarial: tf.Tensor, y: tf.Tensor
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Log-probabilities (n_eps + 1, batch, classes), losses and predicted classes (n_eps + 1, batch),
        clean first.

        ``adversarial``: (n_eps, batch, ...). NumPy out: the Evaluator's bookkeeping is NumPy.
        """
        scored = [self.score(x, y)] + [self.score(adversarial[i], y) for i in range(adversarial.shape[0])]
        log_probs, losses, classes = (np.stack([s[k].numpy() for s in scored]) for k in range(3))
        return log_probs, losses, classes


def compiled_scorer(model: Model, info: ModelInfo, image_shape: tuple[int, ...]) -> Scorer:
    """The shared `Scorer` of `model` for images of `image_shape` (no batch axis)."""
    key = (info, tuple(image_shape))
    return cast(Scorer, _SCORERS.get(model, key, lambda ref: _make_scorer(ref, info, tuple(image_shape))))


def _make_scorer(model_ref: Callable[[], object], info: ModelInfo, image_shape: tuple[int, ...]) -> Scorer:
    signature = [
        tf.TensorSpec([None, *image_shape], tf.float32),
        tf.TensorSpec([None, info.num_classes], tf.float32),
    ]

    # A partial, not a closure: TensorFlow counts traces per code object, and the closures of one
    # factory share theirs, so each new model would be reported as "retracing".
    score = tf.function(functools.partial(_score, model_ref, info), input_signature=signature)
    return Scorer(score=score, num_classes=info.num_classes)


def _score(
    model_ref: Callable[[], object], info: ModelInfo, x: tf.Tensor, y: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    outputs = cast("Model", model_ref())(x, training=False)
    log_probs = log_probabilities(outputs, info)
    return log_probs, cross_entropy(y, log_probs), top_classes(outputs, info)
