"""Multi-epsilon adversarial training: Algorithm 2 of Sheikh & Zafar (2023).

A random subset of m training images is drawn; the training set D' holds those m clean images and,
for each, one FGSM image per epsilon, all with the clean image's label; the model is retrained on
D'. The adversarial copies are made batch by batch inside the training step, never materialised
for the whole data set (14k images x 10 epsilons at 224 px would be 80 GB), so memory stays flat
as the data grows, and a subset of 1.0 trains on the full data set, which the paper could not.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from robustmask._deprecation import renamed_parameters
from robustmask._validation import check_choice
from robustmask.attacks.base import Attack
from robustmask.attacks.fgsm import FGSM
from robustmask.defenses._model_copy import copy_model
from robustmask.defenses._run_plan import epochs_for
from robustmask.defenses.adversarial_training import AdversarialTrainer
from robustmask.defenses.validation import warn_if_rising
from robustmask.errors import RobustmaskError

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["MultiEpsilonAdversarialTrainer", "copy_model"]


class MultiEpsilonAdversarialTrainer(AdversarialTrainer):
    """Retrain a model on clean images plus their adversarial copies at several epsilons (Algorithm 2).

    Args:
        eps: the budgets e1..en (a float or a sequence of floats); each selected image gets one
            adversarial copy per eps. The old name ``epsilons`` still works and warns.
        subset: the fraction (float in (0, 1]) or count (int) of training images that make up D'.
        attack: the attack that makes the copies (default: FGSM, clipped to [0, 1]).
        source: "original" (the paper) attacks the undefended model as it was before retraining;
            "current" attacks the model being trained, regenerating the copies every batch.
        labels: "true" or "predicted"; default "true" with source="original" (the paper), else
            "predicted", where true labels would leak (Kurakin et al. 2016, arXiv 1611.01236).
        layers: "trainable" (a frozen base stays frozen, as in the paper) or "all".
        cache: "none" makes the copies batch by batch (memory flat); "features", for a frozen-base
            model with source="original", makes D' once and trains the head on base features.
        epochs: passes over D' (default 10).
        batch_size: images per update (default 32).
        optimizer: a Keras optimizer or its name; ``None``: the model's own (a fresh copy), else Adam.
        loss: an explicit Keras loss (default: the model's loss, or cross-entropy).
        seed: seeds the subset and the order of every epoch (default 0).
        **kwargs: the keyword arguments below.

    Keyword Args:
        ratio (float | None): the copies' share of the loss, in (0, 1].
        objective (str): ``"ce"`` or ``"trades"`` (see `TRADESTrainer`).
        beta (float): the TRADES trade-off, with ``objective="trades"``.
        batchnorm (str | None): ``"train"`` (default) or ``"frozen"`` BatchNorm statistics.
        eps_ramp (int): epochs over which eps grows linearly from 0.
        learning_rate (float | None): the peak learning rate (default 1e-3 for Adam, 0.1 for SGD).
        warmup_epochs (int): epochs of linear learning-rate warm-up before `schedule` (default 0).
        schedule (str | None): ``"cosine"``, ``"onecycle"``, ``"piecewise"`` or ``"constant"``.
        weight_decay (float | None): decoupled weight decay (default 5e-4 for SGD, none for Adam).
        validation_size (int): validation images attacked after every epoch (default 256).
        keep_best (str): ``"robust"`` (default) ends with the most robust epoch's weights; ``"last"`` the
            last.
        strategy (tf.distribute.Strategy | None): a distribution strategy.

    Example::

        trainer = MultiEpsilonAdversarialTrainer(eps=[0.001, 0.002, 0.003], subset=0.3)
        defended, history = trainer.fit(model, (x_train, y_train))
    """

    @renamed_parameters({"epsilons": "eps"})
    def __init__(
        self,
        eps: float | Sequence[float],
        subset: float | int = 1.0,
        *,
        attack: Attack | None = None,
        source: str = "original",
        labels: str | None = None,
        layers: str = "trainable",
        cache: str = "none",
        epochs: int = 10,
        batch_size: int = 32,
        optimizer: keras.optimizers.Optimizer | str | None = None,
        loss: Any = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        attack = FGSM() if attack is None else attack
        self.cache = check_choice(cache, ("none", "features"), "cache")
        if cache == "features" and (source != "original" or layers != "trainable"):
            raise RobustmaskError(
                "cache='features' needs source='original' and layers='trainable': "
                "the copies and the base must stay fixed while the head trains"
            )
        if isinstance(attack, Attack) and not attack.graph_safe and cache == "none":
            raise RobustmaskError(
                f"{attack.name} runs outside TensorFlow graphs and cannot make copies inside "
                "the training step; use a native attack (fgsm, bim, pgd) or cache='features'"
            )
        super().__init__(
            attack,
            eps,
            source=source,
            labels=labels,
            layers=layers,
            subset=subset,
            epochs=epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            loss=loss,
            seed=seed,
            **kwargs,
        )
        if self.labels == "soft":
            raise RobustmaskError("labels must be 'true' or 'predicted' for Algorithm 2")

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
        if self.cache == "none":
            return super().fit(
                model,
                train_data,
                epochs=epochs,
                validation_data=validation_data,
                callbacks=callbacks,
                checkpoint_dir=checkpoint_dir,
                verbose=verbose,
            )
        from robustmask.defenses._data import CleanBatches
        from robustmask.defenses._feature_cache import fit_on_features
        from robustmask.modelinfo import inspect_model

        if checkpoint_dir is not None:
            raise RobustmaskError(
                "cache='features' trains in minutes from cached features; it takes no checkpoint_dir"
            )
        clean = CleanBatches(train_data, self.subset, self.clean_per_step, self.attack.clip, self.seed)
        info = inspect_model(model, self.attack.from_logits, clean.sample)
        defended = copy_model(model)
        self.validation = self._validation(clean, validation_data)
        if self.validation is not None:  # the head trains the defended copy's own layers
            self.validation.guarded = defended
            callbacks = [self.validation, *(callbacks or [])]  # first: other callbacks see its metric
        history = fit_on_features(
            self,
            model,
            defended,
            clean,
            info,
            epochs=epochs or self.epochs or epochs_for(math.ceil(clean.count / self.batch_size)),
            validation_data=validation_data,
            callbacks=callbacks,
            verbose=verbose,
        )
        warn_if_rising(self.validation)
        return defended, history
