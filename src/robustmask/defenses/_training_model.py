"""The Keras side of `AdversarialTrainer`: the defended copy, the model that trains it, its compile settings.

`TrainingModelBuilder` is mixed into `robustmask.defenses.adversarial_training.AdversarialTrainer`,
whose constructor checks and sets the settings declared here; its `fit` calls `_compiled`.
`robustmask.defenses._feature_cache` compiles with the same `_optimizer` and `_loss`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import keras

from robustmask.attacks.base import Attack
from robustmask.defenses._data import CleanBatches
from robustmask.defenses._model_copy import copy_model, prepare_layers
from robustmask.defenses._optimizers import build_optimizer
from robustmask.defenses._training_step import (
    AdversarialTrainingModel,
    LabelAwareCrossEntropy,
    TRADESLoss,
    build_state,
)
from robustmask.defenses.validation import RobustValidation

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

    from robustmask.modelinfo import ModelInfo


class TrainingModelBuilder:
    """Builds and compiles the model an adversarial-training run trains (a mixin of `AdversarialTrainer`)."""

    # Set by AdversarialTrainer.__init__ (see its arguments), read here.
    attack: Attack
    eps: list[float]
    objective: str
    ratio: float
    beta: float
    source: str
    labels: str
    layers: str
    batchnorm: str
    warmup_epochs: int
    learning_rate: float | None
    optimizer: keras.optimizers.Optimizer | str | None
    schedule: str | None
    weight_decay: float | None
    loss: keras.losses.Loss | str | Callable[..., tf.Tensor] | None
    strategy: tf.distribute.Strategy | None
    seed: int
    validation: RobustValidation | None
    default_optimizer: str | None

    def _compiled(
        self, model: keras.Model, info: ModelInfo, ramp_steps: int, clean: CleanBatches, epochs: int
    ) -> tuple[keras.Model, AdversarialTrainingModel]:
        """``(defended copy of model, the compiled model that trains it)``, under the strategy's scope."""
        with self._scope():
            defended = prepare_layers(copy_model(model), self.layers, self.batchnorm)
            if self.validation is not None:
                self.validation.guarded = defended
            trainer = self._wrap(model, defended, info, ramp_steps)
            trainer.compile(
                optimizer=self._optimizer(model, clean.steps, epochs),
                loss=self._loss(model, info),
                metrics=["accuracy"],
            )
            build_state(trainer, clean.dataset.element_spec)
        return defended, trainer

    # ------------------------------------------------------------------ a hook presets may override
    def _wrap(
        self, model: keras.Model, defended: keras.Model, info: ModelInfo, ramp_steps: int
    ) -> AdversarialTrainingModel:
        reference = model if self.source == "original" else defended
        return AdversarialTrainingModel(
            defended,
            reference,
            self.attack,
            self.eps,
            labels=self.labels,
            info=info,
            ratio=self.ratio,
            ramp_steps=ramp_steps,
            seed=self.seed,
            paired=self.objective == "trades",
        )

    # ------------------------------------------------------------------ compile settings
    def _optimizer(
        self, model: keras.Model, steps_per_epoch: int | None, epochs: int
    ) -> keras.optimizers.Optimizer:
        steps = steps_per_epoch or 1
        return build_optimizer(
            self.optimizer,
            model,
            learning_rate=self.learning_rate,
            schedule=self.schedule,
            weight_decay=self.weight_decay,
            total_steps=max(1, steps * epochs),
            warmup_steps=self.warmup_epochs * steps,
            default=self.default_optimizer,
        )

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
