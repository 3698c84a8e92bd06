"""The `Attack` interface: what every robustmask attack shares, native or adapted.

As in Foolbox 3, the base class owns everything that is the same for all attacks: argument checks,
labels (true, target, or the model's own predictions), the epsilon loop, projection onto the eps
ball of the attack's norm (`robustmask.attacks.norms`), clipping to the valid range, batching over
large inputs and conversion to NumPy at the API edge. What differs is one tensor-level method,
`generate`, which returns the adversarial batches of one batch for every epsilon:

* `robustmask.GradientAttack` (native TensorFlow attacks: FGSM, BIM, PGD and yours) implements
  `generate` as a compiled graph around one method you write, ``run``;
* `robustmask.attacks.ARTAttack` implements it by handing the batch to an ART attack.

A new native attack is a short `GradientAttack` subclass (see `robustmask.attacks.gradient_attack`
and examples/custom_attack_subclass.py).
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import tensorflow as tf

from robustmask._validation import (
    check_clip,
    check_epsilons,
    check_eps_units,
    check_images,
    check_input_shape,
    check_labels,
    check_positive_int,
)
from robustmask.attacks import norms
from robustmask.errors import AttackError
from robustmask.modelinfo import ModelInfo, inspect_model
from robustmask.predictions import predict_labels

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    from robustmask._types import Clip, Epsilons, Images, Labels, Model, TensorEps

__all__ = ["Attack"]


class Attack(abc.ABC):
    """Base class of all attacks: the NumPy edge and the capabilities the Evaluator reads.

    Args:
        clip: the valid input range ``(low, high)``; adversarial images are clipped to it. ``None``
            turns clipping off (the paper's exact Algorithm 1 does not clip).
        norm: the threat model ``eps`` bounds: ``"inf"`` (L-inf, the paper's, default), ``2`` or
            ``1`` (see `robustmask.attacks.norms`). For attacks that choose their own perturbation
            size it is the distance they minimise.
        from_logits: ``None`` detects whether the model ends in softmax or outputs logits.
        targeted: when True, ``y`` holds target classes and the attack pushes towards them.
        batch_size: how many images go through the model at once.

    Capabilities (class attributes; the Evaluator, trainers and registry read them):
        eps_bounded: ``eps`` bounds the size of the perturbation in ``norm``. Attacks that choose
            their own size (DeepFool, C&W L2, JSMA) set False; they are run once and take no eps.
        needs_gradients: False for black-box attacks, which only query predictions.
        single_step: one gradient step whatever the parameters (FGSM, FGM, ARTFGSM and their
            subclasses); an attack built with ``steps=1`` (or ART's ``max_iter=1``) is one too.
        graph_safe: `generate` can run inside a tf.function (an adversarial trainer's train_step).
            Adapters that round-trip through NumPy (ART) set False.
    An adapter that wraps many kinds of attack (`ARTAttack` over any ART class) resolves its
    capabilities once, at construction, as attributes of the instance; they never change after.
    """

    eps_bounded: ClassVar[bool] = True
    needs_gradients: ClassVar[bool] = True
    single_step: ClassVar[bool] = False
    graph_safe: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A run()-style attack written against the old single base class: say what to do instead
        # of failing later with "can't instantiate abstract class".
        if "run" in cls.__dict__ and cls.generate is Attack.generate:
            raise TypeError(
                f"{cls.__name__} implements run(): subclass robustmask.GradientAttack, the base of native "
                "TensorFlow attacks (robustmask.Attack asks for generate() instead)"
            )

    def __init__(
        self,
        *,
        clip: Clip = (0.0, 1.0),
        norm: str | float | norms.Norm = "inf",
        from_logits: bool | None = None,
        targeted: bool = False,
        batch_size: int = 128,
    ) -> None:
        self.clip = check_clip(clip)
        self.norm: norms.Norm = norms.get(norm)
        self.from_logits = from_logits
        self.targeted = bool(targeted)
        self.batch_size = check_positive_int(batch_size, "batch_size", error=AttackError)

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"{self.name}(clip={self.clip}, norm={self.norm.name!r}, targeted={self.targeted})"

    def model_info(self, model: Model, sample: Images | None = None) -> ModelInfo:
        return inspect_model(model, self.from_logits, sample)

    def project(self, x_adv: tf.Tensor, x: tf.Tensor, eps: TensorEps) -> tf.Tensor:
        """Project onto the eps ball of `norm` around x (eps-bounded attacks), then into the clip range.

        ``eps``: a scalar, or one value per image. Clipping after the projection can only shrink
        every coordinate of the perturbation, so the result stays inside the ball.
        """
        if self.eps_bounded:
            x_adv = self.norm.clip_to_ball(x_adv, x, eps)
        if self.clip is not None:
            x_adv = tf.clip_by_value(x_adv, self.clip[0], self.clip[1])
        return x_adv

    # ------------------------------------------------------------------ the method an attack implements
    @abc.abstractmethod
    def generate(
        self, model: Model, x: tf.Tensor, y: tf.Tensor, epsilons: Sequence[float] | tf.Tensor
    ) -> tf.Tensor:
        """Adversarial batches for every epsilon: a (len(epsilons), batch, ...) float32 tensor.

        ``x``: float32 (batch, ...) inside the clip range; ``y``: one-hot float32 (batch, classes),
        the true labels (or the targets when ``targeted``); ``epsilons``: a 1-D float32 tensor (one
        placeholder 0 for attacks that are not eps-bounded). The result must be inside the eps ball
        and the clip range (`project` does both).
        """

    # ------------------------------------------------------------------ NumPy edge
    def __call__(
        self, model: Model, x: Images, y: Labels | None = None, eps: Epsilons | None = None
    ) -> np.ndarray:
        """Attack ``x`` and return adversarial images as a NumPy array of x's shape and dtype.

        Args:
            model: a Keras classifier (softmax or logits, any number of classes >= 2).
            x: images, (n, ...) array within the clip range.
            y: true labels (integer or one-hot); the targets when ``targeted``. ``None`` uses the
                model's own predictions, which avoids label leaking (Kurakin et al. 2016).
            eps: one epsilon, or a sequence; then the result has a leading axis of len(eps).
                Attacks that choose their own perturbation size (``eps_bounded = False``) take none.
        """
        epsilons, scalar = self._epsilons(eps)
        x_np = check_images(x, self.clip)
        check_eps_units(epsilons, self.norm, self.clip, x_np)  # 8 meant as 8/255
        info = self.model_info(model, x_np)
        check_input_shape(x_np.shape, info.input_shape)
        labels = self._labels(model, x_np, y, info)
        out = np.empty(
            (len(epsilons),) + x_np.shape, dtype=x_np.dtype if x_np.dtype.kind == "f" else np.float32
        )
        for start in range(0, len(x_np), self.batch_size):
            stop = start + self.batch_size
            x_batch = tf.convert_to_tensor(x_np[start:stop], tf.float32)
            y_batch = tf.one_hot(labels[start:stop], info.num_classes)
            out[:, start:stop] = self.generate(model, x_batch, y_batch, epsilons).numpy()
        return out[0] if scalar else out

    def _epsilons(self, eps: Epsilons | None) -> tuple[list[float], bool]:
        if not self.eps_bounded:
            if eps is not None:
                raise AttackError(
                    f"{self.name} chooses its own perturbation size and takes no eps; call it without eps "
                    "and measure the perturbation with robustmask.attacks.attack_report"
                )
            return [0.0], True
        if eps is None:
            raise AttackError(
                f"{self.name} needs eps, the {self.norm.label} budget (e.g. eps=0.004 for images in [0, 1])"
            )
        return check_epsilons(eps)

    def _labels(self, model: Model, x: np.ndarray, y: Labels | None, info: ModelInfo) -> np.ndarray:
        if y is not None:
            return check_labels(y, len(x), info.num_classes)
        if self.targeted:
            raise AttackError(f"{self.name} is targeted: pass the target classes as y")
        return self.predict_labels(model, x)

    def predict_labels(self, model: Model, x: np.ndarray) -> np.ndarray:
        """The model's predicted classes for x, batch by batch (`robustmask.predictions.predict_labels`)."""
        return predict_labels(model, x, self.model_info(model, x), self.batch_size)
