"""Robust validation: accuracy under PGD on a fixed validation batch after every epoch.

Clean validation accuracy says little about a defence: a model can gain clean accuracy while its
robustness falls (robust overfitting, Rice, Wong & Kolter 2020, https://arxiv.org/abs/2002.11569)
or collapses (catastrophic overfitting of single-step training, Wong et al. 2020). Every
adversarial trainer given ``validation_data`` therefore measures accuracy under a seeded PGD attack
on the first `validation_size` validation images after every epoch, logs it as
``val_robust_accuracy`` (a fraction, as Keras logs ``val_accuracy``), can keep the best epoch by it,
and warns when it was still rising at the last epoch (the run stopped before the model had learnt
what it could).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from robustmask._batching import is_dataset
from robustmask._validation import check_images
from robustmask.errors import DataError
from robustmask.predictions import predict_labels

if TYPE_CHECKING:  # pragma: no cover
    import numpy.typing as npt

    from robustmask.attacks.base import Attack

#: Rising: the best epoch is among the last RISING_TAIL of the epochs (at least the last one) ...
RISING_TAIL = 0.2
#: ... and the last epoch beats the mean of the RISING_PREVIOUS epochs before it ...
RISING_PREVIOUS = 3
#: ... by more than this (a fraction: 1 point).
RISING_MARGIN = 0.01


class RobustValidation(keras.callbacks.Callback):
    """Accuracy under `attack` on ``(x, y)`` after each epoch; keeps the best epoch, warns if still rising.

    Args:
        model: the model measured (a trainer's defended copy, not its training wrapper); a trainer
            may give None and set ``guarded`` later.
        attack: a seeded attack (the trainers use ``PGD(steps=10, seed=seed)``), so every epoch
            meets the same random starts and the numbers compare.
        eps: its budget.
        x: the validation images.
        y: their labels (integers or one-hot rows).
        keep_best: at the end of training, restore the weights of the epoch with the highest robust
            accuracy (the latest among equals).
        drop: a collapse is robust accuracy more than `drop` points (0-100) below the best epoch's:
            training stops and the best epoch's weights come back; None: no collapse check.
        warn_rising: warn at the end of training when robust accuracy was still rising (see
            `still_rising`).
        log_name: the key of each epoch's value in the logs (History, progress bar).

    After training, ``history`` (robust accuracy per epoch), ``best``, ``best_epoch``,
    ``rolled_back`` (a collapse stopped training) and ``restored`` (the best epoch's weights were
    put back) say what happened.

    Example::

        check = RobustValidation(model, PGD(steps=10, seed=0), 8 / 255, x_val[:256], y_val[:256])
        model.fit(x, y, epochs=30, callbacks=[check])   # history.history["val_robust_accuracy"]
    """

    #: the unit of `history` and the logs: 1.0 for fractions, 100.0 for percent.
    scale = 1.0

    def __init__(
        self,
        model: keras.Model | None,
        attack: Attack,
        eps: float,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        keep_best: bool = True,
        drop: float | None = None,
        warn_rising: bool = True,
        log_name: str = "val_robust_accuracy",
    ) -> None:
        super().__init__()
        self.guarded: keras.Model  # None until a trainer sets its defended copy
        self.guarded, self.attack, self.eps = model, attack, float(eps)
        self.x, self.y = np.asarray(x), integer_labels(y)
        self.keep_best, self.drop, self.warn_rising = bool(keep_best), drop, bool(warn_rising)
        self.log_name = log_name
        self.history: list[float] = []
        self.best_epoch: int | None
        self.best_weights: list[np.ndarray] | None
        self.best, self.best_epoch, self.best_weights = -1.0, None, None
        self.rolled_back = self.restored = False

    def robust_accuracy(self) -> float:
        """Accuracy (in ``scale`` units) of the model under the attack on the validation batch."""
        adversarial = self.attack(self.guarded, self.x, self.y, eps=self.eps)
        predicted = predict_labels(self.guarded, adversarial, batch_size=128)  # one-unit sigmoid models too
        return float(self.scale * np.count_nonzero(predicted == self.y) / len(self.y))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        accuracy = self.robust_accuracy()
        self.history.append(accuracy)
        if logs is not None:
            logs[self.log_name] = accuracy
        if accuracy >= self.best:
            self.best, self.best_epoch, self.best_weights = accuracy, epoch, self.guarded.get_weights()
        elif self.drop is not None and accuracy < self.best - self.drop * self.scale / 100.0:
            # Back to the best epoch now, so that a checkpoint written after this callback holds it.
            self.rolled_back = True
            self._restore_best()
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.keep_best or self.rolled_back:
            self._restore_best()
        message = self.rising_message() if self.warn_rising else None
        if message is not None:
            warnings.warn(message, UserWarning, stacklevel=2)

    def rising_message(self) -> str | None:
        """The warning that robust accuracy was still rising at the last epoch (`still_rising`), or None."""
        rising = None if self.rolled_back else still_rising([value / self.scale for value in self.history])
        if rising is None:
            return None
        epochs = (getattr(self, "params", None) or {}).get("epochs") or len(self.history)
        return (
            f"robust validation accuracy was still rising at the last epoch ({100 * rising[0]:.1f}% -> "
            f"{100 * rising[1]:.1f}%): the run stopped early; train longer (epochs={2 * epochs}) "
            "or with more data"
        )

    def _restore_best(self) -> None:
        if self.best_weights is not None:
            self.guarded.set_weights(self.best_weights)
            self.restored = True

    # ------------------------------------------------------------------ checkpoints
    def get_state(self) -> tuple[dict[str, Any], list[np.ndarray]]:
        """What a checkpoint keeps of this callback: its record (JSON) and the best epoch's weights."""
        record = {
            "history": self.history,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "rolled_back": self.rolled_back,
        }
        return record, list(self.best_weights or [])

    def set_state(self, record: dict[str, Any], arrays: Sequence[np.ndarray]) -> None:
        """Take back what `get_state` gave, when a run resumes from a checkpoint."""
        self.history = [float(v) for v in record.get("history", [])]
        self.best = float(record.get("best", -1.0))
        self.best_epoch = record.get("best_epoch")
        self.rolled_back = bool(record.get("rolled_back", False))
        self.best_weights = [np.asarray(a) for a in arrays] or None


def warn_if_rising(validation: RobustValidation | None) -> None:
    """Warn, at the caller of the trainer's `fit`, when `validation` saw robust accuracy still rising."""
    message = validation.rising_message() if validation is not None else None
    if message is not None:
        warnings.warn(message, UserWarning, stacklevel=3)


def still_rising(history: Sequence[float]) -> tuple[float, float] | None:
    """``(before, last)`` when robust accuracy (per epoch, fractions) still rose at the last epoch, else None.

    Rising means both: the best epoch (the latest among equals) is among the last 20% of the
    epochs (at least the last one), and the last epoch beats ``before``, the mean of the up to 3
    epochs before it, by more than 1 point. A run that has levelled off (or whose best epoch lies
    further back) is not rising; one epoch alone says nothing.

    Example::

        still_rising([0.30, 0.38, 0.45])   # (0.34, 0.45)
        still_rising([0.50, 0.52, 0.51, 0.515])   # None
    """
    n = len(history)
    if n < 2:
        return None
    tail = max(1, math.ceil(RISING_TAIL * n))
    best = max(range(n), key=lambda i: (history[i], i))
    previous = history[max(0, n - 1 - RISING_PREVIOUS) : n - 1]
    before = float(np.mean(previous))
    if best >= n - tail and history[-1] - before > RISING_MARGIN:
        return before, float(history[-1])
    return None


def validation_attack(attack: Attack, seed: int) -> Attack:
    """PGD-10 from a random start in `attack`'s norm and range, seeded: the same starts every epoch."""
    from robustmask.attacks.pgd import PGD

    return PGD(steps=10, seed=seed, clip=attack.clip, norm=attack.norm, from_logits=attack.from_logits)


def validation_batch(data: Any, size: int, clip: Sequence[float] | None) -> tuple[np.ndarray, np.ndarray]:
    """The first `size` images and integer labels of `data`: ``(x, y)`` arrays or a batched Dataset."""
    if is_dataset(data):
        xs, ys, count = [], [], 0
        for element in data:
            xs.append(np.asarray(element[0]))
            ys.append(np.asarray(element[1]))
            count += len(xs[-1])
            if count >= size:
                break
        if not xs:
            raise DataError("validation_data is an empty Dataset: give it at least one batch")
        x, y = np.concatenate(xs)[:size], np.concatenate(ys)[:size]
    elif isinstance(data, (tuple, list)) and len(data) >= 2:
        x, y = np.asarray(data[0])[:size], np.asarray(data[1])[:size]
    else:
        raise DataError("validation_data must be an (x, y) pair of arrays or a batched tf.data.Dataset")
    if len(x) != len(y):
        raise DataError(f"validation_data has {len(x)} images but {len(y)} labels")
    return check_images(x, clip, "validation x").astype(np.float32, copy=False), integer_labels(y)


def integer_labels(y: npt.ArrayLike) -> np.ndarray:
    """Integer labels from integer labels, (n, 1) columns or one-hot rows."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1)
    return y.reshape(-1).astype(np.int64)
