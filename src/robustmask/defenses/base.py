"""The `Defense` interface.

A defence takes a model (and, where it trains, training data) and returns a defended model. It
never changes the model it was given: the undefended model stays usable for comparison.
Adversarial training, input transforms, detectors and distillation all fit this one method.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import keras


class Defense(abc.ABC):
    """Base class of all defences."""

    @property
    def name(self) -> str:
        return type(self).__name__

    @abc.abstractmethod
    def fit(
        self, model: keras.Model, train_data: Any, **kwargs: Any
    ) -> tuple[keras.Model, keras.callbacks.History | None]:
        """Return ``(defended_model, history)``; ``history`` is a Keras History or None.

        ``train_data`` is ``(x, y)`` arrays or a batched tf.data.Dataset of (x, y); a defence that
        needs no data accepts None.
        """
