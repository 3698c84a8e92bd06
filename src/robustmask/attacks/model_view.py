"""A classifier seen through a differentiable map, for attacks on something other than its input.

`robustmask.camera` attacks a whole camera frame while the classifier sees the face crops: a
`ModelView` is that frame-to-crops map, and `GradientAttack.perturb` takes it where it takes a model.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

    from robustmask._types import Model

__all__ = ["ModelView"]


class ModelView(abc.ABC):
    """A classifier seen through a differentiable map: the attack perturbs ``x``, the classifier sees
    ``inputs(x)`` (e.g. the face crops of a camera frame, resized to its input size).

    Pass a view where an attack takes a model, to `GradientAttack.perturb`: the attack's own loss
    gradient is taken on ``inputs(x)`` by a compiled function (one per classifier and settings) and
    carried back to ``x`` through `inputs` by an eager tape, so `inputs` may use Python values that
    change from call to call (the boxes of each frame) without a new trace.

    Example::

        class Crop(ModelView):
            def inputs(self, x):
                return x[:, 8:40, 8:40]

        x_adv = PGD(seed=0).perturb(Crop(model), x, y_onehot, eps=0.03)   # x: (n, 48, 48, 3)
    """

    def __init__(self, model: Model) -> None:
        self.model = model

    @abc.abstractmethod
    def inputs(self, x: tf.Tensor) -> tf.Tensor:
        """The classifier's input batch made from ``x``, differentiably."""

    def __call__(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.model(self.inputs(x), training=training)
