"""How an adversarial-training run is laid out: its length, its eps ramp, each epoch's index.

A small data set needs more passes than a large one to give the model the same number of updates:
``epochs=None`` asks for `TARGET_UPDATES` batches of `batch_size` training images (at least
`MIN_EPOCHS` passes), counted in clean images, so TRADES and Algorithm 2, whose batches also hold
the copies, make as many passes as PGD-AT. The eps ramp
(Gowal et al. 2018's warm-up) must end in time for the run to train at the epsilons asked for: a
ramp longer than half the run is shortened to half of it, with a warning.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import keras

from robustmask.attacks.base import Attack
from robustmask.errors import RobustmaskError

if TYPE_CHECKING:  # pragma: no cover
    from robustmask.defenses._data import CleanBatches

#: Updates a run of ``epochs=None`` makes at least: enough for PGD-AT and TRADES to defend a small
#: CNN trained on 600 images (benchmarks/default_trainer_check.py: 32 epochs; 10 gave half the gain).
TARGET_UPDATES = 600
#: The fewest passes over the data a run of ``epochs=None`` makes (a large set).
MIN_EPOCHS = 10


def epochs_for(batches_per_pass: int) -> int:
    """Epochs for ``epochs=None``: ``max(MIN_EPOCHS, ceil(TARGET_UPDATES / batches_per_pass))``.

    `batches_per_pass`: ``ceil(training images / batch_size)``.

    Example::

        epochs_for(19)    # 600 images in batches of 32: 32 epochs
        epochs_for(300)   # 9,600 images: 10 epochs
    """
    return max(MIN_EPOCHS, math.ceil(TARGET_UPDATES / max(1, batches_per_pass)))


def plan_ramp(eps_ramp: int, steps_per_epoch: int, epochs: int) -> int:
    """Updates over which eps grows from 0: `eps_ramp` epochs, at most half the run (warns when cut).

    Example::

        plan_ramp(5, 19, 30)   # 95 updates
        plan_ramp(5, 19, 2)    # 19 updates (one epoch of the two), with a warning
    """
    wanted, limit = eps_ramp * steps_per_epoch, (epochs * steps_per_epoch) // 2
    if wanted <= limit:
        return wanted
    shortened = limit / steps_per_epoch
    warnings.warn(
        f"eps_ramp={eps_ramp} epochs is more than half of the {epochs}-epoch run: eps ramps up over "
        f"{shortened:.3g} epoch{'' if shortened == 1 else 's'} instead, so that the rest trains at the "
        "eps asked for "
        "(give more epochs, or eps_ramp=0 for no ramp)",
        UserWarning,
        stacklevel=3,
    )
    return limit


class EpochIndex(keras.callbacks.Callback):
    """Tells the clean batches which epoch starts, so each epoch's order depends on its index only."""

    def __init__(self, clean: CleanBatches) -> None:
        super().__init__()
        self.clean = clean

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.clean.epoch = epoch


def check_attack(attack: Attack | str) -> Attack:
    """A robustmask Attack (or its registry name) that can make training copies."""
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


def check_ratio(ratio: object) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 < ratio <= 1.0:
        raise RobustmaskError(f"ratio must be a number in (0, 1], got {ratio!r}")
    return float(ratio)
