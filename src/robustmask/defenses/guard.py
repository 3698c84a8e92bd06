"""A guard against catastrophic overfitting in single-step adversarial training.

Wong, Rice & Kolter, "Fast is better than free: Revisiting adversarial training", ICLR 2020,
https://arxiv.org/abs/2001.03994: FGSM training can suddenly stop resisting PGD while its FGSM
accuracy climbs (the model learns to mask the one-step gradient). They detect it by PGD accuracy on
a held-out batch and stop early; `RobustAccuracyGuard` does that after every epoch and rolls the
model back to the best epoch when robust accuracy collapses. It is `RobustValidation` (which every
trainer runs on its validation data) with the collapse check on and the best epoch kept only then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustmask.defenses.validation import RobustValidation

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import numpy.typing as npt

    from robustmask.attacks.base import Attack


class RobustAccuracyGuard(RobustValidation):
    """Measure accuracy under `attack` on a held-out batch after each epoch; roll back on collapse.

    Args:
        model: the model being trained (the defended copy, not the training wrapper).
        attack: the attack to measure with (PGD with a random start).
        eps: its budget.
        x: the held-out images.
        y: their integer labels.
        drop: a collapse is robust accuracy this many points (0-100) below the best epoch's.

    After training, ``best_epoch``, ``history`` (robust accuracy per epoch, %) and ``rolled_back``
    say what happened; each epoch's value is also logged as ``guard_robust_accuracy``. On collapse
    the best epoch's weights come back at once, so a checkpoint written after the guard holds them.

    Example::

        guard = RobustAccuracyGuard(model, PGD(steps=10, seed=0), 8 / 255, x_val[:128], y_val[:128])
        model.fit(x, y, epochs=10, callbacks=[guard])
    """

    scale = 100.0

    def __init__(
        self,
        model: keras.Model | None,
        attack: Attack,
        eps: float,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        drop: float = 20.0,
    ) -> None:
        super().__init__(
            model,
            attack,
            eps,
            x,
            y,
            keep_best=False,
            drop=float(drop),
            warn_rising=False,
            log_name="guard_robust_accuracy",
        )
