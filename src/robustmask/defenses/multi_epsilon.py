"""Multi-epsilon adversarial training: Algorithm 2 of Sheikh & Zafar (2023).

A random subset of m training images is drawn; the training set D' holds those m clean images and,
for each, one FGSM image per epsilon, all with the clean image's label; the model is retrained on
D'. The adversarial copies are made batch by batch inside the training step, never materialised
for the whole data set (14k images x 10 epsilons at 224 px would be 80 GB), so memory stays flat
as the data grows, and a subset of 1.0 trains on the full data set, which the paper could not.
"""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
import tensorflow as tf

from robustmask._batching import is_dataset
from robustmask._validation import check_epsilons, check_fraction_or_count, check_images
from robustmask.attacks.base import Attack
from robustmask.attacks.fgsm import FGSM
from robustmask.defenses.base import Defense
from robustmask.errors import DataError, ModelError, RobustmaskError
from robustmask.modelinfo import inspect_model, log_probabilities

SOURCES = ("original", "current")


class MultiEpsilonAdversarialTrainer(Defense):
    """Retrain a model on clean images plus their adversarial copies at several epsilons.

    Args:
        epsilons: the epsilons e1..en; each selected image gets one adversarial copy per epsilon.
        subset: the fraction (float in (0, 1]) or count (int) of training images that make up D'.
            1.0 trains on the whole training set.
        attack: the attack that makes the copies (default: FGSM, clipped to [0, 1]); any
            eps-bounded `robustmask.Attack`.
        source: "original" (the paper) attacks the undefended model as it was before retraining;
            "current" attacks the model being trained, regenerating the copies every batch.
        labels: the labels the attack uses: "true" or "predicted". Default: "true" with
            source="original" (the paper), "predicted" with source="current", where true labels
            would leak into the adversarial examples (Kurakin et al. 2016, arXiv 1611.01236).
        layers: "trainable" retrains the layers the model trains (a frozen base stays frozen, as
            in the paper); "all" unfreezes every layer of the defended copy, so the features
            themselves can become robust (give a small learning rate with `optimizer`).
        cache: "none" (default) makes the copies batch by batch in every epoch: memory stays flat
            however large the data. "features", for a model whose leading layers are frozen (the
            paper's MobileNetV2) with source="original": D' is made once, as in the paper, and
            only its base features are kept (1,280 floats an image for MobileNetV2, not 150,528
            pixels), so every epoch trains the head alone. Same training, many times faster.
        epochs: passes over D'.
        batch_size: images per update, clean and adversarial together (the paper's 32 over D').
            Each update holds ceil(batch_size / (n+1)) clean images and their n copies each.
        optimizer, loss: default to a fresh optimizer like the model's own (or Adam 1e-3) and the
            model's loss (or cross-entropy matching the labels).
        seed: seeds the subset draw and the shuffling.

    Example::

        trainer = MultiEpsilonAdversarialTrainer(epsilons=[0.001, 0.002, 0.003], subset=0.3)
        defended, history = trainer.fit(model, (x_train, y_train))
    """

    def __init__(self, epsilons, subset=1.0, *, attack: Attack | None = None, source: str = "original",
                 labels: str | None = None, layers: str = "trainable", cache: str = "none", epochs: int = 10, batch_size: int = 32, optimizer=None, loss=None,
                 seed: int = 0):
        self.epsilons, _ = check_epsilons(epsilons)
        self.subset = check_fraction_or_count(subset, "subset")
        self.attack = FGSM() if attack is None else attack
        if cache not in ("none", "features"):
            raise RobustmaskError(f"cache must be 'none' or 'features', got {cache!r}")
        if not isinstance(self.attack, Attack):
            raise RobustmaskError(f"attack must be a robustmask Attack, got {type(self.attack).__name__}")
        if not self.attack.graph_safe and cache == "none":
            raise RobustmaskError(f"{self.attack.name} runs outside TensorFlow graphs and cannot make copies inside "
                                  "the training step; use a native attack (fgsm, bim, pgd) or cache='features'")
        if not self.attack.eps_bounded or self.attack.targeted:
            raise RobustmaskError(f"{self.attack.name} cannot make the copies: it must be untargeted and eps-bounded")
        if source not in SOURCES:
            raise RobustmaskError(f"source must be one of {SOURCES}, got {source!r}")
        self.source = source
        if labels is None:
            labels = "true" if source == "original" else "predicted"
        if labels not in ("true", "predicted"):
            raise RobustmaskError(f"labels must be 'true' or 'predicted', got {labels!r}")
        self.labels = labels
        if layers not in ("trainable", "all"):
            raise RobustmaskError(f"layers must be 'trainable' or 'all', got {layers!r}")
        self.layers = layers
        if cache == "features" and (source != "original" or layers != "trainable"):
            raise RobustmaskError("cache='features' needs source='original' and layers='trainable': "
                                  "the copies and the base must stay fixed while the head trains")
        self.cache = cache
        if not isinstance(epochs, int) or epochs < 1:
            raise RobustmaskError(f"epochs must be a positive integer, got {epochs!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise RobustmaskError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.loss = loss
        self.seed = int(seed)

    @property
    def clean_per_step(self) -> int:
        return max(1, math.ceil(self.batch_size / (len(self.epsilons) + 1)))

    def fit(self, model, train_data, *, epochs: int | None = None, validation_data=None, callbacks=None,
            verbose="auto"):
        """Train a defended copy of `model`; return ``(defended_model, history)``.

        `model` itself is left as it was. `train_data` is ``(x, y)`` arrays or a batched
        tf.data.Dataset of (x, y) with labels as the model's loss expects (integers or one-hot).
        """
        dataset, sample = self._subset(train_data)
        info = inspect_model(model, self.attack.from_logits, sample)
        defended = copy_model(model)
        if self.layers == "all":
            _unfreeze(defended)  # the copy only: the user's model keeps its frozen layers
        reference = model if self.source == "original" else defended
        if self.cache == "features":
            return defended, self._fit_on_features(model, defended, dataset, info, sample, epochs, validation_data,
                                                   callbacks, verbose)
        trainer = _AdversarialAugmentation(defended, reference, self.attack, self.epsilons, self.labels, info)
        trainer.compile(optimizer=self._optimizer(model), loss=self._loss(model, info),
                        metrics=["accuracy"])
        with warnings.catch_warnings():
            # A filtered dataset has no known length, so Keras learns the epoch's end by running out
            # of data and warns about it; here that is expected.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            history = trainer.fit(dataset, epochs=epochs or self.epochs, validation_data=validation_data,
                                  callbacks=callbacks, verbose=verbose, shuffle=False)
        return defended, history

    def _fit_on_features(self, model, defended, dataset, info, sample, epochs, validation_data, callbacks, verbose):
        from robustmask.frozen_features import split_frozen_prefix

        split = split_frozen_prefix(defended, sample[:2])
        if split is None:
            raise ModelError("cache='features' needs a model whose leading layers are frozen and whose trainable "
                             "layers form a chain (as robustmask.zoo.facemask_mobilenetv2); use cache='none'")
        features, head = split
        compute = tf.function(lambda x: features(x, training=False), reduce_retracing=True)
        feature_batches, label_batches = [], []
        epsilons = tf.constant(self.epsilons, tf.float32)
        for x, y in dataset:  # the clean subset once; each batch with its copies, as features
            y_attack = _attack_labels(model, x, y, self.labels, info)
            adversarial = self.attack.generate(model, x, y_attack, epsilons)
            images = tf.concat([x[None], adversarial], axis=0)
            images = tf.reshape(images, tf.concat([[-1], tf.shape(x)[1:]], axis=0))
            feature_batches.append(compute(images).numpy())
            label_batches.append(np.tile(y.numpy(), (len(self.epsilons) + 1,) + (1,) * (y.shape.rank - 1)))
        if validation_data is not None and not is_dataset(validation_data):
            validation_data = (features.predict(validation_data[0], batch_size=64, verbose=0), validation_data[1])
        elif validation_data is not None:
            raise RobustmaskError("with cache='features', give validation_data as (x, y) arrays")
        head.compile(optimizer=self._optimizer(model), loss=self._loss(model, info), metrics=["accuracy"])
        return head.fit(np.concatenate(feature_batches), np.concatenate(label_batches), epochs=epochs or self.epochs,
                        batch_size=self.batch_size, shuffle=True, validation_data=validation_data,
                        callbacks=callbacks, verbose=verbose)

    # ------------------------------------------------------------------ data
    def _subset(self, data):
        """A dataset of clean (x, y) batches from the subset D' (its clean part), and a sample batch."""
        step = self.clean_per_step
        if is_dataset(data):
            spec = data.element_spec
            if not isinstance(spec, tuple) or len(spec) < 2:
                raise DataError("the training dataset must yield (images, labels) batches")
            examples = data.unbatch()
            if isinstance(self.subset, float) and self.subset < 1.0:
                fraction, seed = self.subset, self.seed
                examples = examples.enumerate().filter(
                    lambda i, _: tf.random.stateless_uniform([], seed=tf.stack([tf.constant(seed, tf.int64), i])) < fraction
                ).map(lambda _, element: element)
            examples = examples.shuffle(4096, seed=self.seed, reshuffle_each_iteration=True)
            if isinstance(self.subset, int):
                examples = examples.take(self.subset)
            dataset = examples.map(lambda x, y, *_: (x, y)).batch(step).prefetch(2)
            sample = next(iter(data))[0].numpy()
            return dataset, sample
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise DataError("train_data must be an (x, y) pair of arrays or a batched tf.data.Dataset")
        x, y = data
        x = check_images(x, self.attack.clip, "x_train")
        y = np.asarray(y)
        if len(y) != len(x):
            raise DataError(f"train_data has {len(x)} images but {len(y)} labels")
        n = len(x)
        m = n if self.subset == 1.0 else (round(self.subset * n) if isinstance(self.subset, float) else self.subset)
        if m > n:
            raise RobustmaskError(f"subset asks for {m} images but the training set has {n}")
        if m < 1:
            raise RobustmaskError(f"subset {self.subset} of {n} images selects none")
        chosen = np.random.default_rng(self.seed).choice(n, size=m, replace=False)
        rng = np.random.default_rng(self.seed + 1)

        def batches():
            # A generator, not from_tensor_slices: that would embed the whole array in the graph.
            order = rng.permutation(chosen)
            for start in range(0, m, step):
                index = np.sort(order[start : start + step])
                yield x[index].astype(np.float32, copy=False), y[index]

        signature = (
            tf.TensorSpec((None,) + x.shape[1:], tf.float32),
            tf.TensorSpec((None,) + y.shape[1:], tf.as_dtype(y.dtype)),
        )
        dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
        steps = math.ceil(m / step)
        return dataset.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(2), x[:16]

    # ------------------------------------------------------------------ compile settings
    def _optimizer(self, model):
        if self.optimizer is not None:
            return keras.optimizers.get(self.optimizer) if isinstance(self.optimizer, str) else self.optimizer
        existing = getattr(model, "optimizer", None)
        if existing is not None:
            # A fresh optimizer with the model's settings: sharing the object would carry over its
            # step count (and so a decayed learning rate) and its moment estimates.
            return type(existing).from_config(existing.get_config())
        return keras.optimizers.Adam(1e-3)

    def _loss(self, model, info):
        if self.loss is not None:
            return self.loss
        existing = getattr(model, "loss", None)
        if existing is not None:
            return existing
        return _LabelAwareCrossEntropy(info.from_logits)


class _LabelAwareCrossEntropy(keras.losses.Loss):
    """Cross-entropy that takes integer labels or one-hot rows."""

    def __init__(self, from_logits: bool, **kwargs):
        super().__init__(**kwargs)
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        if y_true.shape.rank == y_pred.shape.rank and y_true.shape[-1] == y_pred.shape[-1] and y_pred.shape[-1] != 1:
            return keras.losses.categorical_crossentropy(y_true, y_pred, from_logits=self.from_logits)
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=self.from_logits)


class _AdversarialAugmentation(keras.Model):
    """Wraps the model being trained; its train_step adds the adversarial copies to each batch.

    Overriding train_step (rather than a Python loop around train_on_batch) keeps Keras' fit:
    callbacks, metrics, validation, checkpoints and tf.distribute all work unchanged.
    """

    def __init__(self, model, reference, attack, epsilons, labels, info):
        super().__init__(name=f"{model.name}_adversarial_training")
        self.model = model
        # Bypass Keras' attribute tracking: the reference model's weights must not become
        # trainable variables of this wrapper (with source="original" it is the frozen original).
        object.__setattr__(self, "reference", reference)
        self.attack = attack
        self.epsilons = tf.constant(epsilons, tf.float32)
        self.labels = labels
        self.info = info

    def call(self, x, training=False):
        return self.model(x, training=training)

    def train_step(self, data):
        x, y = data[0], data[1]
        x = tf.cast(x, tf.float32)
        y_attack = _attack_labels(self.reference, x, y, self.labels, self.info)
        adversarial = tf.stop_gradient(self.attack.generate(self.reference, x, y_attack, self.epsilons))
        copies = len(self.epsilons) + 1
        x_all = tf.concat([x[None], adversarial], axis=0)
        x_all = tf.reshape(x_all, tf.concat([[-1], tf.shape(x)[1:]], axis=0))
        y_all = tf.tile(y, tf.concat([[copies], tf.ones(tf.rank(y) - 1, tf.int32)], axis=0))
        return super().train_step((x_all, y_all))


def _attack_labels(model, x, y, labels, info):
    """One-hot labels for the attack: the true ones, or the model's predictions."""
    if labels == "predicted":
        log_probs = log_probabilities(model(x, training=False), info)
        return tf.one_hot(tf.argmax(log_probs, axis=-1), info.num_classes)
    if y.shape.rank == 2 and y.shape[-1] == info.num_classes and info.num_classes > 1:
        return tf.cast(y, tf.float32)
    return tf.one_hot(tf.cast(tf.reshape(y, [-1]), tf.int32), info.num_classes)


def _unfreeze(layer):
    layer.trainable = True
    for inner in getattr(layer, "layers", []):
        _unfreeze(inner)


def copy_model(model):
    """An independent copy of a Keras model: same architecture, weights and frozen layers."""
    try:
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
    except Exception as error:  # clone_model raises many types for models it cannot rebuild
        raise ModelError(
            f"cannot copy {type(model).__name__} {getattr(model, 'name', '')!r} to train a defended version: "
            f"{str(error).splitlines()[0] if str(error) else type(error).__name__}; "
            "use a Functional or Sequential model, or give the subclass get_config/from_config"
        ) from None
    return clone
