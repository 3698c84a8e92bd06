"""A guard against catastrophic overfitting in single-step adversarial training.

Wong, Rice & Kolter, "Fast is better than free: Revisiting adversarial training", ICLR 2020,
https://arxiv.org/abs/2001.03994: FGSM training can suddenly stop resisting PGD while its FGSM
accuracy climbs (the model learns to mask the one-step gradient). They detect it by PGD accuracy on
a held-out batch and stop early; `RobustAccuracyGuard` does that after every epoch and rolls the
model back to the best epoch when robust accuracy collapses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import keras

from robustmask.attacks.base import Attack

if TYPE_CHECKING:  # pragma: no cover
    import numpy.typing as npt


class RobustAccuracyGuard(keras.callbacks.Callback):
    """Measure accuracy under `attack` on a held-out batch after each epoch; roll back on collapse.

    Args:
        model: the model being trained (the defended copy, not the training wrapper).
        attack: the attack to measure with (PGD with a random start).
        eps: its budget.
        x, y: the held-out batch (integer labels).
        drop: a collapse is robust accuracy this many points (0-100) below the best epoch's.

    After training, ``best_epoch``, ``history`` (robust accuracy per epoch, %) and ``rolled_back``
    say what happened; each epoch's value is also logged as ``guard_robust_accuracy``.

    Example::

        guard = RobustAccuracyGuard(model, PGD(steps=10, seed=0), 8 / 255, x_val[:128], y_val[:128])
        model.fit(x, y, epochs=10, callbacks=[guard])
    """

    def __init__(
        self,
        model: keras.Model | None,
        attack: Attack,
        eps: float,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        drop: float = 20.0,
    ) -> None:
        super().__init__()
        self.guarded: keras.Model  # None until FastAdversarialTrainer sets its defended copy
        self.guarded, self.attack, self.eps = model, attack, float(eps)
        self.x, self.y = np.asarray(x), np.asarray(y).reshape(-1) if np.ndim(y) == 1 else np.argmax(y, axis=1)
        self.drop = float(drop)
        self.history: list[float] = []
        self.best_epoch: int | None
        self.best_weights: list[np.ndarray] | None
        self.best, self.best_epoch, self.best_weights, self.rolled_back = -1.0, None, None, False

    def robust_accuracy(self) -> float:
        adversarial = self.attack(self.guarded, self.x, self.y, eps=self.eps)
        predicted = np.argmax(self.guarded.predict(adversarial, batch_size=128, verbose=0), axis=1)
        return float(100.0 * np.mean(predicted == self.y))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        accuracy = self.robust_accuracy()
        self.history.append(accuracy)
        if logs is not None:
            logs["guard_robust_accuracy"] = accuracy
        if accuracy >= self.best:
            self.best, self.best_epoch, self.best_weights = accuracy, epoch, self.guarded.get_weights()
        elif accuracy < self.best - self.drop:
            self.rolled_back = True
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.rolled_back and self.best_weights is not None:
            self.guarded.set_weights(self.best_weights)
