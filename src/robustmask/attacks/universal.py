"""A native TensorFlow universal perturbation: one shared delta learnt by stochastic gradient ascent.

Shafahi, Najibi, Xu, Dickerson, Davis & Goldstein, "Universal Adversarial Training", AAAI 2020,
https://arxiv.org/abs/1812.03705 (Algorithm 1, "SGD for universal perturbations"): instead of
Moosavi-Dezfooli et al.'s (CVPR 2017) pass of one DeepFool step per image, maximise the mean
(clamped) cross-entropy over mini-batches with respect to one perturbation shared by every image,
and project it onto the eps ball after every step. One compiled step per mini-batch, so it learns
in seconds where the DeepFool-based `robustmask.attacks.UniversalPerturbation` (ART) needs a
DeepFool run per image and pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import tensorflow as tf

from robustmask._deprecation import renamed_parameters, warn_renamed
from robustmask._validation import check_positive_int, check_positive_number
from robustmask._weakrefs import PerModelCache
from robustmask.attacks import norms
from robustmask.attacks.base import Attack
from robustmask.attacks.whole_set import AppliesUniversalPerturbation, WholeSetCall
from robustmask.errors import AttackError
from robustmask.modelinfo import cross_entropy, log_probabilities
from robustmask.predictions import predict_labels

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    from robustmask._types import Model

__all__ = ["SGDUniversalPerturbation"]


class SGDUniversalPerturbation(AppliesUniversalPerturbation, WholeSetCall, Attack):
    """Universal perturbation by sign-SGD on the mean loss (Shafahi et al. 2020): one delta for all images.

    Shafahi et al., "Universal Adversarial Training", AAAI 2020, https://arxiv.org/abs/1812.03705;
    the problem is Moosavi-Dezfooli et al.'s, "Universal adversarial perturbations", CVPR 2017,
    https://arxiv.org/abs/1610.08401. For ``epochs`` passes over the images, in shuffled
    mini-batches of ``batch_size``: ``delta += alpha * direction(mean gradient of min(loss, loss_cap))``
    (the sign for L-inf), then ``delta`` is projected onto the eps ball of ``norm``. Images are
    clipped to the valid range at every step, as they will be when the perturbation is applied.
    Capping each image's loss (the paper's clamped loss) stops images already fooled from steering
    the perturbation, so it goes on to fool the others.

    One call learns one perturbation from all the images given (the call is not split into batches;
    with several eps, one per eps). Afterwards, as for the ART version:

    * ``attack.perturbation``: the perturbation (of the last eps), float32 of the shape of one image;
    * ``attack.fooling_rate``: the fraction of the given images whose predicted class it changes;
    * ``attack.apply(x)``: the perturbation added to new images, clipped to the valid range.

    Args:
        epochs: passes over the images.
        rel_stepsize: the step alpha as a fraction of eps (the L-inf step is ``rel_stepsize * eps`` per
            pixel), as for `BIM` and `PGD`; the old name ``step_size`` still works and warns.
        loss_cap: each image's cross-entropy is clamped at this value; ``None`` does not clamp.
        seed: seed of the mini-batch shuffling (the same seed and data give the same perturbation).
        abs_stepsize: alpha in input units, for every eps; overrides rel_stepsize.
        **kwargs: the keyword arguments below.

    Keyword Args:
        clip (tuple[float, float] | None): the valid input range, default ``(0, 1)``; ``None`` turns clipping
            off.
        norm (str | int): the threat model eps bounds: ``"inf"`` (L-inf, default), ``2`` or ``1``.
        from_logits (bool | None): ``None`` (default) detects whether the model ends in softmax or outputs
            logits; True or False says which.
        targeted (bool): ``y`` holds target classes and the attack pushes towards them (default False).
        batch_size (int): images per SGD step and forward pass (default 32).

    Example::

        uap = robustmask.attacks.SGDUniversalPerturbation(epochs=10)
        uap(model, x_train[:500], eps=0.05)        # labels: the model's own predictions
        print(uap.fooling_rate)                    # on the training faces
        x_unseen_adv = uap.apply(x_unseen)         # the same pattern on unseen faces
    """

    graph_safe = False  # learns over the whole set in NumPy-driven mini-batches

    @renamed_parameters({"step_size": "rel_stepsize"})
    def __init__(
        self,
        epochs: int = 10,
        rel_stepsize: float = 0.1,
        loss_cap: float | None = 4.0,
        seed: int | None = 0,
        abs_stepsize: float | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("batch_size", 32)
        super().__init__(**kwargs)
        self.epochs = check_positive_int(epochs, "epochs", error=AttackError)
        self.rel_stepsize = check_positive_number(rel_stepsize, "rel_stepsize", error=AttackError)
        self.abs_stepsize = check_positive_number(
            abs_stepsize, "abs_stepsize", allow_none=True, error=AttackError
        )
        self.loss_cap = check_positive_number(loss_cap, "loss_cap", allow_none=True, error=AttackError)
        if seed is not None:
            check_positive_int(seed, "seed", allow_zero=True, error=AttackError)
        self.seed = seed
        self.perturbation: np.ndarray | None = None
        self.fooling_rate: float | None = None

    def __repr__(self) -> str:
        return (
            f"{self.name}(epochs={self.epochs}, {self._step_repr()}, loss_cap={self.loss_cap}, "
            f"clip={self.clip}, norm={self.norm.name!r}, targeted={self.targeted})"
        )

    def _step_repr(self) -> str:
        if self.abs_stepsize is not None:
            return f"abs_stepsize={self.abs_stepsize:g}"
        return f"rel_stepsize={self.rel_stepsize:g}"

    def stepsize(self, eps: float) -> float:
        """The step alpha for this eps: abs_stepsize, else rel_stepsize * eps."""
        return self.abs_stepsize if self.abs_stepsize is not None else self.rel_stepsize * eps

    @property
    def step_size(self) -> float:
        """Deprecated: `rel_stepsize`."""
        warn_renamed(f"{self.name}.step_size", f"{self.name}.rel_stepsize", stacklevel=3)
        return self.rel_stepsize

    def generate(
        self, model: Model, x: tf.Tensor, y: tf.Tensor, epsilons: Sequence[float] | tf.Tensor
    ) -> tf.Tensor:
        """Learn one perturbation per eps on the whole of ``x``; the (len(eps), n, ...) perturbed images."""
        if not tf.executing_eagerly():
            raise AttackError(f"{self.name} learns over a whole set and cannot run inside a tf.function")
        x = tf.convert_to_tensor(x, tf.float32)
        y = tf.convert_to_tensor(y, tf.float32)
        info = self.model_info(model, x.numpy())
        batch = self._inner_batch_size or self.batch_size
        clean = predict_labels(model, x, info, batch)
        outs = []
        for eps in np.reshape(np.asarray(epsilons, np.float32), [-1]):
            delta = self._learn(model, info, x, y, float(eps), batch)
            x_adv = self._perturb(x, delta)
            self.perturbation = delta.numpy()[0]
            self.fooling_rate = float(np.mean(predict_labels(model, x_adv, info, batch) != clean))
            outs.append(x_adv)
        return tf.stack(outs)

    def _learn(
        self, model: Model, info: Any, x: tf.Tensor, y: tf.Tensor, eps: float, batch: int
    ) -> tf.Tensor:
        delta = tf.zeros((1,) + tuple(x.shape[1:]), tf.float32)
        if eps == 0:
            return delta
        update = self._update_function(model, info)
        # Targeted: descend the loss of the targets, unclamped. Untargeted: ascend the clamped loss.
        sign = tf.constant(-1.0 if self.targeted else 1.0)
        cap = tf.constant(np.inf if self.loss_cap is None or self.targeted else self.loss_cap, tf.float32)
        step, radius = tf.constant(self.stepsize(eps), tf.float32), tf.constant(eps, tf.float32)
        rng = np.random.default_rng(self.seed)
        n = int(x.shape[0])
        for _ in range(self.epochs):
            order = rng.permutation(n)
            for start in range(0, n, batch):
                index = tf.constant(order[start : start + batch])
                delta = update(delta, tf.gather(x, index), tf.gather(y, index), radius, step, cap, sign)
        return delta

    def _update_function(self, model: Model, info: Any) -> Callable[..., tf.Tensor]:
        """The compiled sign-SGD step for this model and settings, shared by every instance."""
        clip, norm = self.clip, self.norm
        return cast(
            "Callable[..., tf.Tensor]",
            _STEPS.get(
                model, (info, clip, norm), lambda model_ref: _compile_step(model_ref, info, clip, norm)
            ),
        )

    def _perturb(self, x: tf.Tensor, delta: tf.Tensor) -> tf.Tensor:
        return _perturbed(x, delta, self.clip)


# One compiled step per (model, settings), held weakly: new instances (a notebook, a sweep) reuse it.
_STEPS = PerModelCache()


def _perturbed(x: tf.Tensor, delta: tf.Tensor, clip: tuple[float, float] | None) -> tf.Tensor:
    out = x + delta
    return out if clip is None else tf.clip_by_value(out, clip[0], clip[1])


def _compile_step(
    model_ref: Callable[[], object], info: Any, clip: tuple[float, float] | None, norm: norms.Norm
) -> Callable[..., tf.Tensor]:
    @tf.function(reduce_retracing=True)
    def update(
        delta: tf.Tensor,
        xb: tf.Tensor,
        yb: tf.Tensor,
        eps: tf.Tensor,
        step: tf.Tensor,
        cap: tf.Tensor,
        sign: tf.Tensor,
    ) -> tf.Tensor:
        model = cast("Model", model_ref())
        with tf.GradientTape() as tape:
            tape.watch(delta)
            outputs = model(_perturbed(xb, delta, clip), training=False)
            loss = tf.minimum(cross_entropy(yb, log_probabilities(outputs, info)), cap)
            objective = sign * tf.reduce_mean(loss)
        gradient = tape.gradient(objective, delta)
        return norm.project(delta + step * norm.step(gradient), eps)

    return update
