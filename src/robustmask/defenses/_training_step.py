"""The training step every adversarial trainer shares.

`AdversarialTrainingModel` wraps the model being trained. Its ``train_step`` makes the adversarial
copies of each clean batch and hands clean images and copies, weighted, to Keras' own train_step:
so Keras' fit (callbacks, metrics, validation, checkpoints) works unchanged, and one step serves
Algorithm 2, PGD and fast adversarial training and TRADES. Under a tf.distribute strategy,
robustmask's own loop (`robustmask.defenses.distributed`) makes the same copies
(`AdversarialTrainingModel.training_batch`) on each replica's slice of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from robustmask.modelinfo import ModelInfo, cross_entropy, log_probabilities

if TYPE_CHECKING:  # pragma: no cover
    from robustmask.attacks.base import Attack


class AdversarialTrainingModel(keras.Model):
    """Wraps `model`; each update holds the clean batch (weight ``1 - ratio``) and its copies (``ratio``).

    Args:
        model: the model being trained (a copy of the user's).
        reference: the model the attack runs against: `model` itself, or the frozen original.
        attack: a graph-safe robustmask Attack.
        epsilons: one copy per epsilon.
        labels: "true", "predicted" (the reference's predictions) or "soft" (its probabilities: the
            attack then ascends the KL divergence from the clean prediction, as TRADES does).
        info: the model's `ModelInfo`.
        ratio: the adversarial copies' share of the loss; 1.0 leaves the clean images out.
        ramp_steps: the epsilons grow linearly from 0 over this many updates (0: full from the start).
        seed: makes the attack's random start a function of (seed, update), so a resumed run draws
            the same noise as an uninterrupted one; None leaves the attack as it is.
        paired: the loss reads each batch as clean images then one copy each (`TRADESLoss`);
            validation batches are then paired with themselves.
    """

    def __init__(
        self,
        model: keras.Model,
        reference: keras.Model,
        attack: Attack,
        epsilons: Sequence[float],
        *,
        labels: str,
        info: ModelInfo,
        ratio: float,
        ramp_steps: int = 0,
        seed: int | None = None,
        paired: bool = False,
    ) -> None:
        super().__init__(name=f"{model.name}_adversarial_training")
        self.model = model
        # Bypass Keras' attribute tracking: the reference model's weights must not become
        # variables of this wrapper (with source="original" it is the frozen original).
        object.__setattr__(self, "reference", reference)
        # Any: with a seed, train_step sets the attack's `seed` (an attribute of attacks with a random start).
        self.attack: Any = _seeded(attack, seed)
        self.epsilons = tf.constant(epsilons, tf.float32)
        self.labels, self.info, self.ratio, self.ramp_steps = labels, info, float(ratio), int(ramp_steps)
        self.seed, self.paired = seed, bool(paired)

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.model(x, training=training)

    @property
    def groups(self) -> int:
        """Images a step holds per clean image: the copies, and the clean image unless ratio is 1."""
        return len(self.epsilons) if self.ratio == 1.0 else len(self.epsilons) + 1

    def train_step(self, data: tuple[tf.Tensor, ...]) -> dict[str, Any]:
        return super().train_step(self.training_batch(data[0], data[1]))

    def training_batch(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, ...]:
        """``(images, labels)`` or ``(images, labels, weights)``: the clean batch and its copies.

        Shared by Keras' fit (`train_step`) and the distributed loop (`robustmask.defenses.distributed`),
        which calls it on each replica's slice of the clean batch.

        Example::

            x_all, y_all, *weights = trainer.training_batch(x, y)   # inside a tf.function
        """
        x = tf.cast(x, tf.float32)
        iteration = tf.cast(self.optimizer.iterations, tf.int64)
        if self.seed is not None:
            # Read while this step is traced (generate runs inline in a graph): the random start
            # becomes a function of the update number.
            self.attack.seed = self.seed * 1_000_003 + iteration
        epsilons = self.epsilons * self._ramp(iteration)
        y_attack = attack_labels(self.reference, x, y, self.labels, self.info)
        adversarial = tf.stop_gradient(self.attack.generate(self.reference, x, y_attack, epsilons))
        copies, groups = len(self.epsilons), self.groups
        images = adversarial if self.ratio == 1.0 else tf.concat([x[None], adversarial], axis=0)
        x_all = tf.reshape(images, tf.concat([[-1], tf.shape(x)[1:]], axis=0))
        y_all = tf.tile(y, tf.concat([[groups], tf.ones(tf.rank(y) - 1, tf.int32)], axis=0))
        if self.ratio in (1.0, copies / (copies + 1)):
            return x_all, y_all  # every image weighs the same
        # Weights with mean 1: the clean batch carries (1 - ratio) of the loss, the copies ratio.
        batch = tf.shape(x)[:1]
        weights = tf.concat(
            [
                tf.fill(batch, (1.0 - self.ratio) * groups),
                tf.fill(batch * copies, self.ratio * groups / copies),
            ],
            axis=0,
        )
        return x_all, y_all, weights

    def test_step(self, data: tuple[tf.Tensor, ...]) -> dict[str, Any]:
        if not self.paired:
            return super().test_step(data)
        # A paired loss (TRADES) reads a batch as clean images then their copies: each validation
        # image is its own copy, so val_loss is the clean cross-entropy (the KL term is 0).
        x, y = data[0], data[1]
        return super().test_step((tf.concat([x, x], axis=0), tf.concat([y, y], axis=0)))

    def _ramp(self, iteration: tf.Tensor) -> tf.Tensor:
        if self.ramp_steps <= 0:
            return tf.constant(1.0)
        return tf.minimum(1.0, tf.cast(iteration + 1, tf.float32) / float(self.ramp_steps))


def build_state(trainer: keras.Model, spec: Any) -> None:
    """Make the optimizer's, metrics' and loss's variables before the train step is traced.

    Without a tf.distribute strategy Keras makes them inside the step's first trace, and TensorFlow
    then traces the step once more (variables may only be made on a first call): with a MobileNetV2
    and a PGD attack in the step, 12 of a 30 s one-epoch fit. ``spec``: the data's element_spec
    (Keras reads only shapes and dtypes). Best effort: a Keras without this hook traces twice.
    """
    build = getattr(trainer, "_symbolic_build", None)
    try:
        if build is not None:  # else Keras internals moved: Keras builds in the trace, as before
            build(data_batch=tuple(spec))
    except Exception:  # Keras then builds in the trace, as before
        pass
    # The optimizer's slots in any case: the symbolic build stops before them when it fails (a loss
    # that reads labels the training step transforms, as distillation's), and slots made inside a
    # traced step under a strategy break its next call, and cannot be restored into from a checkpoint.
    if trainer.optimizer is not None and not trainer.optimizer.built:
        trainer.optimizer.build(trainer.trainable_variables)


def attack_labels(model: keras.Model, x: tf.Tensor, y: tf.Tensor, labels: str, info: ModelInfo) -> tf.Tensor:
    """Labels for the attack: the true ones (one-hot), the model's predictions, or its probabilities."""
    if labels in ("predicted", "soft"):
        log_probs = log_probabilities(model(x, training=False), info)
        if labels == "soft":
            return tf.stop_gradient(tf.exp(log_probs))
        return tf.one_hot(tf.argmax(log_probs, axis=-1), info.num_classes)
    return one_hot(y, info)


class LabelAwareCrossEntropy(keras.losses.Loss):
    """Cross-entropy that takes integer labels or one-hot rows, from log-probabilities.

    Uses the logits Keras keeps behind a softmax, so confident images keep their gradient.
    """

    def __init__(self, info: ModelInfo, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.info = info

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        return cross_entropy(one_hot(y_true, self.info), log_probabilities(y_pred, self.info))


class TRADESLoss(keras.losses.Loss):
    """TRADES (Zhang et al. 2019, arXiv 1901.08573) on a batch of clean images followed by their copies.

    Per clean image: ``CE(y, f(x)) + beta * KL(f(x) || f(x'))``. The batch holds the clean images
    first and one adversarial copy each after them (ratio 0.5 in `AdversarialTrainingModel`, so
    both halves weigh the same); the loss is put on the clean half, doubled so that Keras' mean over
    the whole batch is the TRADES mean over the clean images.
    """

    def __init__(self, info: ModelInfo, beta: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.info, self.beta = info, float(beta)

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        half = tf.shape(y_pred)[0] // 2
        log_probs = log_probabilities(y_pred, self.info)
        clean, adversarial = log_probs[:half], log_probs[half:]
        natural = cross_entropy(one_hot(y_true[:half], self.info), clean)
        kl = tf.reduce_sum(tf.exp(clean) * (clean - adversarial), axis=-1)
        per_image = 2.0 * (natural + self.beta * kl)
        return tf.concat([per_image, tf.zeros_like(per_image)], axis=0)


def one_hot(y: tf.Tensor, info: ModelInfo) -> tf.Tensor:
    """Labels as float one-hot rows: integer labels are encoded, one-hot rows kept."""
    if y.shape.rank == 2 and y.shape[-1] == info.num_classes and info.num_classes > 1:
        return tf.cast(y, tf.float32)
    return tf.one_hot(tf.cast(tf.reshape(y, [-1]), tf.int32), info.num_classes)


def _seeded(attack: Attack, seed: int | None) -> Attack:
    """A copy of `attack` whose random start the step seeds, or `attack` itself (no random start)."""
    if seed is None or not getattr(attack, "random_start", False) or not hasattr(attack, "seed"):
        return attack
    import copy

    clone: Any = copy.copy(attack)  # Any: `_compiled` belongs to the native attacks, not to every Attack
    if hasattr(clone, "_compiled"):
        from robustmask._weakrefs import PerModelCache

        clone._compiled = PerModelCache()
    return clone
