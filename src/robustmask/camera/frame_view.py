"""`FrameView`: a classifier seen from a camera frame, the input every `GradientAttack` can perturb.

Imported on first use (it loads TensorFlow); ``robustmask.camera.FrameView`` names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from robustmask.attacks.model_view import ModelView
from robustmask.camera.pipeline import differentiable_crops

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

    from robustmask._types import Model

__all__ = ["FrameView"]


class FrameView(ModelView):
    """A batch of one frame (1, H, W, 3) -> its face crops ``(x0, y0, x1, y1)``, each resized to the
    classifier's input `size` by `differentiable_crops`: what `FacePipeline` classifies.

    An attack's `GradientAttack.perturb` takes it for a model: the loss is the attack's own, summed
    over the faces (one one-hot row of ``y`` per crop), and its gradient lands on the frame's pixels.

    >>> view = FrameView(pipeline.model, pipeline.crops_of(boxes, frame.shape), pipeline.input_size)
    >>> x_adv = PGD(steps=10, seed=0).perturb(view, frame[None], y_onehot, eps=0.008)[0]
    """

    def __init__(
        self, model: Model, crops: Sequence[tuple[int, int, int, int]], size: tuple[int, int]
    ) -> None:
        super().__init__(model)
        self.crops = list(crops)
        self.size = size

    def inputs(self, x: tf.Tensor) -> tf.Tensor:
        return differentiable_crops(x[0], self.crops, self.size)
