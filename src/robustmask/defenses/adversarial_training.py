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

import math
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import keras

from robustmask._deprecation import renamed_parameters, warn_renamed
from robustmask._validation import check_choice, check_eps_units, check_epsilons, check_fraction_or_count
from robustmask._validation import check_positive_int, check_positive_number
from robustmask.attacks.base import Attack
from robustmask.defenses._data import CleanBatches
from robustmask.defenses._optimizers import check_optimizer, check_schedule
from robustmask.defenses._run_plan import check_attack, epochs_for, plan_ramp
from robustmask.defenses._trainer_settings import KEEP_BEST, SOURCES, check_objective, resolve_labels
from robustmask.defenses._training_model import TrainingModelBuilder
from robustmask.defenses.base import Defense
from robustmask.defenses.checkpoints import EpochCheckpoint, fingerprint
from robustmask.defenses.distributed import is_chief, train
from robustmask.defenses.validation import (
    RobustValidation,
    validation_attack,
    validation_batch,
    warn_if_rising,
)
from robustmask.errors import RobustmaskError
from robustmask.modelinfo import inspect_model

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import tensorflow as tf

    from robustmask.defenses._training_step import AdversarialTrainingModel


class AdversarialTrainer(TrainingModelBuilder, Defense):
    """Train a defended copy of a model on clean images and adversarial copies of them.

    Args:
        attack: a graph-safe, eps-bounded, untargeted robustmask `Attack` (or a registry name).
        eps: one budget or several (a float or a sequence of floats); each clean image gets one copy
            per eps. The old name ``epsilons`` still works and warns.
        ratio: the copies' share of the loss, in (0, 1]. ``None``: n / (n + 1), every image the same
            weight (Algorithm 2); 1.0 trains on the copies alone (Madry et al.).
        objective: "ce" (cross-entropy on every image) or "trades" (one copy per image; the
            attack ascends KL(f(x) || f(x')) and the loss is CE(clean) + beta * KL).
        beta: the TRADES trade-off (6.0 in Zhang et al.).
        source: "current" attacks the model as it trains; "original" the undefended model (the paper).
        labels: "true", "predicted" or "soft"; ``None``: "true" with source="original", else
            "predicted" (true labels leak into the copies: Kurakin et al. 2016, arXiv 1611.01236).
        layers: "trainable" keeps frozen layers frozen; "all" unfreezes the copy's every layer.
        batchnorm: "train" (BatchNorm trains on the adversarial batches, as in PGD-AT, fast AT and
            TRADES; None too) or "frozen" (statistics and scales stay as trained: inference mode).
        subset: fraction (float in (0, 1]) or count (int) of training images used.
        eps_ramp: epochs over which eps grows linearly from 0 (0: no ramp); one longer than half the
            run is cut to half of it, with a warning, so the run trains at the eps asked for.
        epochs: passes over the subset; ``None``: enough for 600 batches of `batch_size` training
            images, at least 10 passes (`robustmask.defenses._run_plan.epochs_for`).
        batch_size: images per update, clean and copies together.
        optimizer: the optimizer that trains: a Keras optimizer (used as given), "adam", "sgd" (with
            Nesterov momentum 0.9 and weight decay 5e-4) or another Keras optimizer name; ``None``:
            the model's own optimizer (a fresh copy), else Adam; Adam when `learning_rate` or
            `schedule` is given. See `robustmask.defenses._optimizers`.
        warmup_epochs: epochs of linear learning-rate warm-up at the start of `schedule` (default 0).
        learning_rate: the peak learning rate of `schedule` (default 1e-3 for Adam, 0.1 for SGD);
            with an optimizer object, it replaces the object's own rate (a copy of it trains).
        schedule: "cosine" (default for named optimizers: decays to 0, after `warmup_epochs` of
            linear warm-up), "onecycle", "piecewise" (rate / 10 at 50% and 75% of the updates) or
            "constant"; spread over every update of the run.
        weight_decay: decoupled weight decay (default 5e-4 for "sgd", none for Adam).
        loss: an explicit Keras loss (default: the model's loss, or cross-entropy from log-probabilities).
        validation_size: with `validation_data`, the first this many validation images are
            attacked (PGD-10, random start, seeded by `seed`, at the largest training eps)
            after every epoch; their accuracy is logged as ``val_robust_accuracy`` (a fraction).
        keep_best: "robust" ends training with the weights of the epoch of highest
            ``val_robust_accuracy`` (with `validation_data`); "last" keeps the last epoch's. Either
            way `fit` warns when robust accuracy was still rising (`validation.still_rising`).
        strategy: a tf.distribute strategy (MirroredStrategy, MultiWorkerMirroredStrategy): then
            robustmask's own loop trains (`robustmask.defenses.distributed`), any batch size.
        seed: seeds the subset, the order of every epoch and the attack's random starts.

    ``trainer.eps`` is the list of budgets. After `fit`, ``trainer.validation`` holds the
    `RobustValidation` of the run (or None): its ``history``, ``best_epoch`` and ``restored``.

    Example::

        trainer = AdversarialTrainer(robustmask.attacks.PGD(steps=7), 8 / 255, ratio=1.0)
        defended, history = trainer.fit(model, (x_train, y_train), checkpoint_dir="runs/ckpt")
    """

    #: the optimizer when none is given (presets: "adam"); None: the model's own, else Adam.
    default_optimizer: str | None = None

    @renamed_parameters({"epsilons": "eps"})
    def __init__(
        self,
        attack: Attack | str,
        eps: float | Sequence[float],
        *,
        ratio: float | None = None,
        objective: str = "ce",
        beta: float = 6.0,
        source: str = "current",
        labels: str | None = None,
        layers: str = "trainable",
        batchnorm: str | None = "train",
        subset: float | int = 1.0,
        eps_ramp: int = 0,
        epochs: int | None = 10,
        batch_size: int = 32,
        learning_rate: float | None = None,
        warmup_epochs: int = 0,
        optimizer: keras.optimizers.Optimizer | str | None = None,
        schedule: str | None = None,
        weight_decay: float | None = None,
        loss: keras.losses.Loss | str | Callable[..., tf.Tensor] | None = None,
        validation_size: int = 256,
        keep_best: str = "robust",
        strategy: tf.distribute.Strategy | None = None,
        seed: int = 0,
    ) -> None:
        self.attack = check_attack(attack)
        self.eps, _ = check_epsilons(eps)
        check_eps_units(self.eps, self.attack.norm, self.attack.clip, error=RobustmaskError)
        self.objective, self.ratio = check_objective(objective, ratio, len(self.eps))
        self.beta = float(beta)
        self.source = check_choice(source, SOURCES, "source")
        self.labels = resolve_labels(labels, self.objective, source)
        self.layers = check_choice(layers, ("trainable", "all"), "layers")
        self.batchnorm = check_choice(batchnorm or "train", ("train", "frozen"), "batchnorm")
        self.subset = check_fraction_or_count(subset, "subset")
        self.eps_ramp = check_positive_int(eps_ramp, "eps_ramp", allow_zero=True)
        self.epochs = None if epochs is None else check_positive_int(epochs, "epochs")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.warmup_epochs = check_positive_int(warmup_epochs, "warmup_epochs", allow_zero=True)
        self.learning_rate = check_positive_number(learning_rate, "learning_rate", allow_none=True)
        self.optimizer, self.schedule = check_optimizer(optimizer), check_schedule(schedule)
        self.weight_decay = check_positive_number(
            weight_decay, "weight_decay", allow_zero=True, allow_none=True
        )
        self.loss = loss
        self.validation_size = check_positive_int(validation_size, "validation_size")
        self.keep_best = check_choice(keep_best, KEEP_BEST, "keep_best")
        self.strategy, self.seed = strategy, int(seed)
        self.validation: RobustValidation | None = None  # made by fit

    @property
    def epsilons(self) -> list[float]:
        """Deprecated: `eps`."""
        warn_renamed(f"{type(self).__name__}.epsilons", f"{type(self).__name__}.eps")
        return self.eps

    @property
    def copies_per_image(self) -> int:
        return len(self.eps) + (0 if self.ratio == 1.0 else 1)

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

        `model` itself is left as it was. `train_data` is ``(x, y)`` arrays or a finite, batched
        tf.data.Dataset. With `validation_data`, the history holds ``val_accuracy`` and
        ``val_robust_accuracy`` per epoch (both also in the progress bar) and the best epoch by
        robust accuracy is kept (`keep_best`). With `checkpoint_dir`, every epoch is checkpointed
        atomically there and a run started again with the same arguments resumes from the last one.
        """
        if epochs is not None:
            check_positive_int(epochs, "epochs")
        if not self.attack.graph_safe:
            raise RobustmaskError(
                f"{self.attack.name} runs outside TensorFlow graphs and cannot make copies inside "
                "the training step; use a native attack (fgsm, bim, pgd)"
            )
        holdout = self._holdout(validation_data, train_data)
        clean = CleanBatches(
            train_data, self.subset, self.clean_per_step, self.attack.clip, self.seed, holdout
        )
        epochs = epochs or self.epochs or epochs_for(math.ceil(clean.count / self.batch_size))
        ramp_steps = plan_ramp(self.eps_ramp, clean.steps, epochs)
        info = inspect_model(model, self.attack.from_logits, clean.sample)
        self.validation = self._validation(clean, validation_data)
        # Robust validation first, as Keras' own val_ metrics are in the logs before any callback: a user's
        # EarlyStopping, ModelCheckpoint or CSVLogger can then monitor val_robust_accuracy.
        callbacks = ([self.validation] if self.validation is not None else []) + list(callbacks or [])
        defended, trainer = self._compiled(model, info, ramp_steps, clean, epochs)
        initial_epoch = 0
        if checkpoint_dir is not None:
            checkpoint, initial_epoch = self._resume(checkpoint_dir, model, epochs, trainer, clean.sample)
            callbacks.append(checkpoint)
        # Keras' fit on one device; robustmask's own loop under a strategy (Keras 3's fit cannot).
        history = train(
            trainer,
            clean,
            self.strategy,
            epochs=epochs,
            initial_epoch=initial_epoch,
            validation_data=validation_data,
            callbacks=callbacks,
            verbose=verbose,
        )
        warn_if_rising(self.validation)
        return defended, history

    def _resume(
        self,
        folder: str | os.PathLike,
        model: keras.Model,
        epochs: int,
        trainer: AdversarialTrainingModel,
        sample: np.ndarray,
    ) -> tuple[EpochCheckpoint, int]:
        """The run's checkpoint callback and first epoch: the one after the last checkpoint in
        `folder`, 0 for a new run, `epochs` for a run a callback stopped (it ends as it ended)."""
        stateful = [self.validation] if self.validation is not None else []
        checkpoint = EpochCheckpoint(folder, fingerprint(self, model, epochs), stateful)
        checkpoint.writer = is_chief(self.strategy)  # all workers read it, the chief writes it
        initial_epoch = checkpoint.restore(trainer, sample)
        if checkpoint.stopped:  # a collapse stopped the run: it ends as it ended then
            initial_epoch = epochs
        return checkpoint, initial_epoch

    # ------------------------------------------------------------------ hooks presets may override
    def _holdout(self, validation_data: Any, train_data: Any) -> int:
        return 0

    def _validation(self, clean: CleanBatches, validation_data: Any) -> RobustValidation | None:
        """The robust validation of the run, on `validation_data`'s first images (None without it)."""
        if validation_data is None:
            return None
        x, y = validation_batch(validation_data, self.validation_size, self.attack.clip)
        attack = validation_attack(self.attack, self.seed)
        keep_best = self.keep_best == "robust"
        return RobustValidation(None, attack, max(self.eps), x, y, keep_best=keep_best, warn_rising=False)
