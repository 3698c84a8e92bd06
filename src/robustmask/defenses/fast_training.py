"""Fast adversarial training: FGSM from a random start (Wong et al. 2020), with a PGD guard."""

from __future__ import annotations

from robustmask.attacks.pgd import PGD
from robustmask.defenses.adversarial_training import AdversarialTrainer
from robustmask.defenses.guard import RobustAccuracyGuard


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

    def __init__(self, eps: float = 8 / 255, *, guard: bool = True, guard_size: int = 128, labels: str = "true",
                 eps_ramp: int = 3, learning_rate: float | None = 1e-3, **kwargs):
        attack = PGD(steps=1, rel_stepsize=1.25, random_start=True)  # FGSM from a random start
        super().__init__(attack, eps, ratio=1.0, labels=labels, eps_ramp=eps_ramp, learning_rate=learning_rate,
                         **kwargs)
        self.use_guard, self.guard_size, self.guard = bool(guard), int(guard_size), None

    def _holdout(self, validation_data, train_data) -> int:
        if not self.use_guard or validation_data is not None:
            return 0
        if isinstance(train_data, (tuple, list)) and len(train_data) == 2:
            return min(self.guard_size, max(1, len(train_data[0]) // 5))  # never most of a small set
        return self.guard_size  # a Dataset: CleanBatches asks for validation_data

    def _callbacks(self, clean, validation_data) -> list:
        if not self.use_guard:
            return []
        x, y = clean.heldout if validation_data is None else (validation_data[0][: self.guard_size],
                                                               validation_data[1][: self.guard_size])
        self.guard = RobustAccuracyGuard(None, PGD(steps=10, seed=0), self.epsilons[0], x, y)
        return [self.guard]

    def _wrap(self, model, defended, info, steps_per_epoch):
        if self.guard is not None:
            self.guard.guarded = defended
        return super()._wrap(model, defended, info, steps_per_epoch)
