"""One adversarial-training core; every trainer in robustmask is a preset of it.

In the spirit of ART's ``AdversarialTrainer(classifier, attacks, ratio)``: an attack makes copies
of each clean batch at one or more epsilons, and the model trains on clean images and copies with
the copies' share of the loss set by ``ratio``. The presets:

- `MultiEpsilonAdversarialTrainer`: Sheikh & Zafar (2023), Algorithm 2 (FGSM copies at n epsilons).
- `PGDAdversarialTrainer`: Madry et al. 2018 (PGD copies only).
- `FastAdversarialTrainer`: Wong et al. 2020 (FGSM from a random start, with a guard).
- `TRADESTrainer`: Zhang et al. 2019 (clean loss plus beta times KL to the copy).
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import keras

from robustmask._validation import (
    check_choice,
    check_epsilons,
    check_fraction_or_count,
    check_positive_int,
    check_positive_number,
)
from robustmask.attacks.base import Attack
from robustmask.defenses._data import CleanBatches
from robustmask.defenses._model_copy import copy_model, prepare_layers
from robustmask.defenses._training_step import (
    AdversarialTrainingModel,
    LabelAwareCrossEntropy,
    TRADESLoss,
    build_state,
)
from robustmask.defenses.base import Defense
from robustmask.errors import RobustmaskError
from robustmask.modelinfo import inspect_model

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

    from robustmask.modelinfo import ModelInfo

SOURCES = ("original", "current")
LABELS = ("true", "predicted", "soft")
OBJECTIVES = ("ce", "trades")


class AdversarialTrainer(Defense):
    """Train a defended copy of a model on clean images and adversarial copies of them.

    Args:
        attack: a graph-safe, eps-bounded, untargeted robustmask `Attack` (or a registry name).
        epsilons: one epsilon or several; each clean image gets one copy per epsilon.
        ratio: the copies' share of the loss, in (0, 1]. ``None``: n / (n + 1), every image the same
            weight (Algorithm 2); 1.0 trains on the copies alone (Madry et al.).
        objective: "ce" (cross-entropy on every image) or "trades" (one copy per image; the
            attack ascends KL(f(x) || f(x')) and the loss is CE(clean) + beta * KL).
        beta: the TRADES trade-off (6.0 in Zhang et al.).
        source: "current" attacks the model as it trains; "original" the undefended model (the paper).
        labels: "true", "predicted" or "soft"; ``None``: "true" with source="original", else
            "predicted" (true labels leak into the copies: Kurakin et al. 2016, arXiv 1611.01236).
        layers: "trainable" keeps frozen layers frozen; "all" unfreezes the copy's every layer.
        batchnorm: "train" (BatchNorm layers update as usual), "frozen" (their statistics and
            scales stay as trained) or ``None``: "frozen" with layers="all" (a pre-trained base
            fine-tuned on small batches of adversarial images loses its statistics otherwise),
            else "train".
        subset: fraction (float in (0, 1]) or count (int) of training images used.
        eps_ramp: epochs over which the epsilons grow linearly from 0 (0: no ramp).
        epochs: passes over the subset.
        batch_size: images per update, clean and copies together.
        learning_rate: builds Adam with this rate and a cosine decay (warm-up: `warmup_epochs`);
            ``None`` uses `optimizer`, else a fresh copy of the model's own optimizer, else Adam 1e-3.
        optimizer, loss: explicit Keras optimizer and loss (default: the model's loss, or
            cross-entropy from log-probabilities).
        strategy: a tf.distribute strategy (MirroredStrategy, MultiWorkerMirroredStrategy).
        seed: seeds the subset, the order of every epoch and the attack's random starts.

    Example::

        trainer = AdversarialTrainer(robustmask.attacks.PGD(steps=7), 8 / 255, ratio=1.0)
        defended, history = trainer.fit(model, (x_train, y_train), checkpoint_dir="runs/ckpt")
    """

    def __init__(
        self,
        attack: Attack | str,
        epsilons: float | Sequence[float],
        *,
        ratio: float | None = None,
        objective: str = "ce",
        beta: float = 6.0,
        source: str = "current",
        labels: str | None = None,
        layers: str = "trainable",
        batchnorm: str | None = None,
        subset: float | int = 1.0,
        eps_ramp: int = 0,
        epochs: int = 10,
        batch_size: int = 32,
        learning_rate: float | None = None,
        warmup_epochs: int = 0,
        optimizer: keras.optimizers.Optimizer | str | None = None,
        loss: keras.losses.Loss | str | Callable[..., tf.Tensor] | None = None,
        strategy: tf.distribute.Strategy | None = None,
        seed: int = 0,
    ) -> None:
        self.attack = _check_attack(attack)
        self.epsilons, _ = check_epsilons(epsilons)
        self.objective = check_choice(objective, OBJECTIVES, "objective")
        n = len(self.epsilons)
        if self.objective == "trades" and (n != 1 or ratio not in (None, 0.5)):
            raise RobustmaskError(
                "objective='trades' takes one epsilon and ratio None: one copy per clean image"
            )
        self.ratio = (
            (0.5 if self.objective == "trades" else n / (n + 1)) if ratio is None else _check_ratio(ratio)
        )
        self.beta = float(beta)
        self.source = check_choice(source, SOURCES, "source")
        default_labels = (
            "soft" if self.objective == "trades" else "true" if source == "original" else "predicted"
        )
        self.labels = check_choice(default_labels if labels is None else labels, LABELS, "labels")
        self.layers = check_choice(layers, ("trainable", "all"), "layers")
        default_batchnorm = "frozen" if self.layers == "all" else "train"
        self.batchnorm = check_choice(
            default_batchnorm if batchnorm is None else batchnorm, ("train", "frozen"), "batchnorm"
        )
        self.subset = check_fraction_or_count(subset, "subset")
        self.eps_ramp = check_positive_int(eps_ramp, "eps_ramp", allow_zero=True)
        self.epochs = check_positive_int(epochs, "epochs")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.warmup_epochs = check_positive_int(warmup_epochs, "warmup_epochs", allow_zero=True)
        check_positive_number(learning_rate, "learning_rate", allow_none=True)
        self.learning_rate, self.optimizer, self.loss = learning_rate, optimizer, loss
        self.strategy, self.seed = strategy, int(seed)

    @property
    def copies_per_image(self) -> int:
        return len(self.epsilons) + (0 if self.ratio == 1.0 else 1)

    @property
    def clean_per_step(self) -> int:
        return max(1, math.ceil(self.batch_size / self.copies_per_image))

    def fit(  # type: ignore[override]  # names Defense.fit's **kwargs
        self,
        model: keras.Model,
        train_data: Any,
        *,
        epochs: int | None = None,
        validation_data: Any = None,
        callbacks: Sequence[keras.callbacks.Callback] | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        verbose: str | int = "auto",
    ) -> tuple[keras.Model, keras.callbacks.History]:
        """Train a defended copy of `model`; return ``(defended_model, history)``.

        `model` itself is left as it was. `train_data` is ``(x, y)`` arrays or a batched
        tf.data.Dataset. With `checkpoint_dir`, every epoch is checkpointed atomically there and a
        run started again with the same arguments resumes from the last one.
        """
        epochs = self.epochs if epochs is None else check_positive_int(epochs, "epochs")
        if not self.attack.graph_safe:
            raise RobustmaskError(
                f"{self.attack.name} runs outside TensorFlow graphs and cannot make copies inside "
                "the training step; use a native attack (fgsm, bim, pgd)"
            )
        holdout = self._holdout(validation_data, train_data)
        clean = CleanBatches(
            train_data, self.subset, self.clean_per_step, self.attack.clip, self.seed, holdout
        )
        info = inspect_model(model, self.attack.from_logits, clean.sample)
        callbacks = list(callbacks or []) + self._callbacks(clean, validation_data)
        with self._scope():
            defended = prepare_layers(copy_model(model), self.layers, self.batchnorm)
            trainer = self._wrap(model, defended, info, clean.steps)
            trainer.compile(
                optimizer=self._optimizer(model, clean.steps, epochs),
                loss=self._loss(model, info),
                metrics=["accuracy"],
            )
            build_state(trainer, clean.dataset.element_spec)
        from robustmask.defenses.checkpoints import EpochCheckpoint

        initial_epoch = 0
        if checkpoint_dir is not None:
            checkpoint = EpochCheckpoint(checkpoint_dir, self._fingerprint(model, epochs))
            initial_epoch = checkpoint.restore(trainer, clean.sample)
            callbacks.append(checkpoint)
        clean.epoch = initial_epoch
        callbacks.append(_EpochIndex(clean))
        with warnings.catch_warnings():
            # A filtered dataset has no known length; Keras then warns at the end of each epoch.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            history = trainer.fit(
                clean.dataset,
                epochs=epochs,
                initial_epoch=initial_epoch,
                validation_data=validation_data,
                callbacks=callbacks,
                verbose=verbose,
                shuffle=False,
            )
        return defended, history

    # ------------------------------------------------------------------ hooks presets may override
    def _wrap(
        self, model: keras.Model, defended: keras.Model, info: ModelInfo, steps_per_epoch: int | None
    ) -> AdversarialTrainingModel:
        reference = model if self.source == "original" else defended
        ramp_steps = self.eps_ramp * (steps_per_epoch or 0)
        return AdversarialTrainingModel(
            defended,
            reference,
            self.attack,
            self.epsilons,
            labels=self.labels,
            info=info,
            ratio=self.ratio,
            ramp_steps=ramp_steps,
            seed=self.seed,
        )

    def _callbacks(self, clean: CleanBatches, validation_data: Any) -> list[keras.callbacks.Callback]:
        return []

    def _holdout(self, validation_data: Any, train_data: Any) -> int:
        return 0

    # ------------------------------------------------------------------ compile settings
    def _optimizer(
        self, model: keras.Model, steps_per_epoch: int | None, epochs: int
    ) -> keras.optimizers.Optimizer:
        if self.learning_rate is not None:
            total = max(1, (steps_per_epoch or 1) * epochs)
            warmup = min(total - 1, self.warmup_epochs * (steps_per_epoch or 1))
            schedule = keras.optimizers.schedules.CosineDecay(
                0.0 if warmup else self.learning_rate,
                decay_steps=max(1, total - warmup),
                warmup_target=self.learning_rate if warmup else None,
                warmup_steps=warmup,
            )
            return keras.optimizers.Adam(schedule)
        if self.optimizer is not None:
            return keras.optimizers.get(self.optimizer) if isinstance(self.optimizer, str) else self.optimizer
        existing = getattr(model, "optimizer", None)
        if existing is not None:
            # A fresh optimizer with the model's settings: sharing the object would carry over its
            # step count (and so a decayed learning rate) and its moment estimates.
            return type(existing).from_config(existing.get_config())
        return keras.optimizers.Adam(1e-3)

    def _loss(
        self, model: keras.Model, info: ModelInfo
    ) -> keras.losses.Loss | str | Callable[..., tf.Tensor]:
        if self.objective == "trades":
            return TRADESLoss(info, self.beta)
        if self.loss is not None:
            return self.loss
        existing = getattr(model, "loss", None)
        return existing if existing is not None else LabelAwareCrossEntropy(info)

    def _scope(self) -> contextlib.AbstractContextManager[Any]:
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def _fingerprint(self, model: keras.Model, epochs: int) -> dict[str, Any]:
        """What a checkpoint must match to be resumed: the same trainer on the same model."""
        settings = {k: v for k, v in vars(self).items() if isinstance(v, (int, float, str, list, type(None)))}
        return {
            "trainer": type(self).__name__,
            "attack": repr(self.attack),
            "model": model.name,
            "weights": sum(int(w.size) for w in model.get_weights()),
            "epochs": epochs,
            **settings,
        }


class _EpochIndex(keras.callbacks.Callback):
    """Tells the clean batches which epoch starts, so each epoch's order depends on its index only."""

    def __init__(self, clean: CleanBatches) -> None:
        super().__init__()
        self.clean = clean

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.clean.epoch = epoch


def _check_attack(attack: Attack | str) -> Attack:
    if isinstance(attack, str):
        from robustmask import attacks

        attack = attacks.get(attack)
    if not isinstance(attack, Attack):
        raise RobustmaskError(
            f"attack must be a robustmask Attack or an attack name, got {type(attack).__name__}"
        )
    if not attack.eps_bounded or attack.targeted:
        raise RobustmaskError(f"{attack.name} cannot make the copies: it must be untargeted and eps-bounded")
    return attack


def _check_ratio(ratio: object) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 < ratio <= 1.0:
        raise RobustmaskError(f"ratio must be a number in (0, 1], got {ratio!r}")
    return float(ratio)
