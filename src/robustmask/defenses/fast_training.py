"""Fast adversarial training: FGSM from a random start (Wong et al. 2020), with a PGD guard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robustmask._validation import check_positive_int
from robustmask.attacks.pgd import PGD
from robustmask.defenses.adversarial_training import AdversarialTrainer
from robustmask.defenses.guard import RobustAccuracyGuard

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from robustmask.defenses._data import CleanBatches
    from robustmask.defenses._training_step import AdversarialTrainingModel
    from robustmask.modelinfo import ModelInfo


class FastAdversarialTrainer(AdversarialTrainer):
    """FGSM adversarial training from a random start, guarded against catastrophic overfitting.

    Wong, Rice & Kolter, "Fast is better than free: Revisiting adversarial training", ICLR 2020,
    https://arxiv.org/abs/2001.03994. Each copy is one signed-gradient step of ``1.25 * eps`` from
    a uniform random point of the eps ball, projected back: one gradient an update, about the cost
    of plain FGSM training. Single-step training can collapse (the model masks the one-step
    gradient and PGD accuracy falls to zero in an epoch), so after every epoch a
    `RobustAccuracyGuard` measures PGD-10 accuracy on a held-out batch and, on collapse, stops and
    rolls the model back to its best epoch (``guard=False`` turns it off).

    Args:
        eps: the training budget (L-inf).
        guard: measure PGD accuracy after every epoch and roll back on collapse.
        guard_size: held-out images for the guard (taken from the training arrays, or the first
            ones of `validation_data` when it is given).
        **kwargs: see `AdversarialTrainer`.

    After `fit`, ``trainer.guard`` holds the guard (its ``history``, ``best_epoch``, ``rolled_back``).

    Example::

        trainer = FastAdversarialTrainer(eps=8 / 255, epochs=15)
        defended, history = trainer.fit(model, (x, y))
        trainer.guard.history   # PGD accuracy (%) on the held-out batch, per epoch
    """

    def __init__(
        self,
        eps: float = 8 / 255,
        *,
        guard: bool = True,
        guard_size: int = 128,
        labels: str = "true",
        eps_ramp: int = 3,
        learning_rate: float | None = 1e-3,
        **kwargs: Any,
    ) -> None:
        attack = PGD(steps=1, rel_stepsize=1.25, random_start=True)  # FGSM from a random start
        super().__init__(
            attack, eps, ratio=1.0, labels=labels, eps_ramp=eps_ramp, learning_rate=learning_rate, **kwargs
        )
        self.guard: RobustAccuracyGuard | None  # made by fit
        self.use_guard, self.guard = bool(guard), None
        self.guard_size = check_positive_int(guard_size, "guard_size")

    def _holdout(self, validation_data: Any, train_data: Any) -> int:
        if not self.use_guard or validation_data is not None:
            return 0
        if isinstance(train_data, (tuple, list)) and len(train_data) == 2:
            return min(self.guard_size, max(1, len(train_data[0]) // 5))  # never most of a small set
        return self.guard_size  # a Dataset: CleanBatches asks for validation_data

    def _callbacks(self, clean: CleanBatches, validation_data: Any) -> list[keras.callbacks.Callback]:
        if not self.use_guard:
            return []
        heldout = clean.heldout
        if validation_data is None:
            assert heldout is not None  # _holdout asked CleanBatches for guard_size >= 1 images
            x, y = heldout
        else:
            x, y = validation_data[0][: self.guard_size], validation_data[1][: self.guard_size]
        self.guard = RobustAccuracyGuard(None, PGD(steps=10, seed=0), self.epsilons[0], x, y)
        return [self.guard]

    def _wrap(
        self, model: keras.Model, defended: keras.Model, info: ModelInfo, steps_per_epoch: int | None
    ) -> AdversarialTrainingModel:
        if self.guard is not None:
            self.guard.guarded = defended
        return super()._wrap(model, defended, info, steps_per_epoch)
