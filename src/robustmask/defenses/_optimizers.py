"""The optimizer and learning-rate schedule an adversarial trainer compiles its model with.

Which optimizer trains, in order:

1. A Keras optimizer object passed as ``optimizer=`` trains as given (its own rate and settings).
   With ``learning_rate``, ``schedule`` or ``weight_decay`` also given, a copy of it (same class and
   config) trains instead, its rate replaced by the trainer's schedule peaking at ``learning_rate``
   (default: the object's own rate) and its weight decay by ``weight_decay``.
2. ``optimizer="adam"`` or ``"sgd"`` (SGD with Nesterov momentum 0.9 and weight decay 5e-4), or any
   other Keras optimizer name, with ``learning_rate`` (default 1e-3 for Adam, 0.1 for SGD, else the
   optimizer's own) under ``schedule`` (default "cosine").
3. No optimizer: Adam under the schedule when ``learning_rate`` or ``schedule`` is given, or for a
   preset (PGD-AT, fast AT, TRADES); else, for the core trainer and Algorithm 2, a fresh copy of the
   model's own optimizer (its step count and moments are not carried over), or Adam 1e-3.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from robustmask._validation import check_choice
from robustmask.errors import RobustmaskError

SCHEDULES = ("cosine", "onecycle", "piecewise", "constant")
#: The peak learning rate of each named optimizer when none is given.
DEFAULT_RATES = {"adam": 1e-3, "sgd": 0.1}
#: Weight decay of each named optimizer when none is given (Keras' decoupled decay).
DEFAULT_WEIGHT_DECAY = {"sgd": 5e-4}


def check_optimizer(optimizer: object) -> keras.optimizers.Optimizer | str | None:
    """A Keras optimizer, an optimizer's name or None."""
    if optimizer is None or isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        try:
            keras.optimizers.get(optimizer.lower())
        except ValueError:
            raise RobustmaskError(
                f"unknown optimizer {optimizer!r}: give 'adam', 'sgd', another Keras optimizer name "
                "or a keras.optimizers.Optimizer"
            ) from None
        return optimizer.lower()
    raise RobustmaskError(
        "optimizer must be a keras.optimizers.Optimizer, a name ('adam', 'sgd') or None, "
        f"got {type(optimizer).__name__}"
    )


def check_schedule(schedule: str | None) -> str | None:
    return None if schedule is None else check_choice(schedule, SCHEDULES, "schedule")


def build_optimizer(
    optimizer: keras.optimizers.Optimizer | str | None,
    model: keras.Model,
    *,
    learning_rate: float | None,
    schedule: str | None,
    weight_decay: float | None,
    total_steps: int,
    warmup_steps: int,
    default: str | None,
) -> keras.optimizers.Optimizer:
    """The optimizer that trains (see the module's docstring); `default` names a preset's optimizer."""
    if isinstance(optimizer, keras.optimizers.Optimizer):
        if learning_rate is None and schedule is None and weight_decay is None:
            return optimizer  # the user's optimizer trains, as given
        config = optimizer.get_config()
        peak = learning_rate if learning_rate is not None else _initial_rate(optimizer)
        config["learning_rate"] = make_schedule(schedule or "cosine", peak, total_steps, warmup_steps)
        if weight_decay is not None:
            config["weight_decay"] = weight_decay
        return type(optimizer).from_config(config)
    name = optimizer if optimizer is not None else default
    if name is None and learning_rate is None and schedule is None:
        existing = getattr(model, "optimizer", None)
        if existing is None:
            return keras.optimizers.Adam(1e-3)
        # A fresh optimizer with the model's settings: sharing the object would carry over its
        # step count (and so a decayed learning rate) and its moment estimates.
        return type(existing).from_config(existing.get_config())
    name = name or "adam"
    decay = weight_decay if weight_decay is not None else DEFAULT_WEIGHT_DECAY.get(name)
    if name in DEFAULT_RATES:
        rate = make_schedule(
            schedule or "cosine", learning_rate or DEFAULT_RATES[name], total_steps, warmup_steps
        )
        if name == "sgd":
            return keras.optimizers.SGD(rate, momentum=0.9, nesterov=True, weight_decay=decay)
        return keras.optimizers.Adam(rate, weight_decay=decay)
    built = keras.optimizers.get(name)
    peak = learning_rate if learning_rate is not None else _initial_rate(built)
    config = built.get_config() | {
        "learning_rate": make_schedule(schedule or "cosine", peak, total_steps, warmup_steps)
    }
    if decay is not None:
        config["weight_decay"] = decay
    return type(built).from_config(config)


def make_schedule(
    kind: str, peak: float, total_steps: int, warmup_steps: int = 0
) -> keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate of each update: `kind` over `total_steps` updates, peaking at `peak`.

    "cosine" decays to 0 (after a linear warm-up from 0 over `warmup_steps`); "onecycle" rises
    linearly to `peak` over the first 40% and falls linearly to 0 (Smith & Topin 2019, the schedule
    of Wong et al.'s fast AT; it is its own warm-up); "piecewise" divides the rate by 10 at 50% and
    again at 75% of the updates (Madry et al., Rice et al. 2020); "constant" stays at `peak`.

    Example::

        rate = make_schedule("onecycle", 0.1, total_steps=1000)
        keras.optimizers.SGD(rate, momentum=0.9)
    """
    total = max(1, int(total_steps))
    warmup = min(total - 1, int(warmup_steps)) if kind != "onecycle" else 0
    if kind == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else peak,
            decay_steps=max(1, total - warmup),
            warmup_target=peak if warmup else None,
            warmup_steps=warmup,
        )
    return StepSchedule(kind, peak, total, warmup)


@keras.saving.register_keras_serializable("robustmask")
class StepSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The "onecycle", "piecewise" and "constant" schedules of `make_schedule`, with a linear warm-up."""

    def __init__(self, kind: str, peak: float, total_steps: int, warmup_steps: int = 0) -> None:
        self.kind = check_choice(kind, SCHEDULES[1:], "schedule")
        self.peak, self.total_steps, self.warmup_steps = float(peak), int(total_steps), int(warmup_steps)

    def __call__(self, step: Any) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        peak, total = tf.constant(self.peak, tf.float32), float(self.total_steps)
        if self.kind == "onecycle":
            top = max(1.0, 0.4 * total)
            rising = peak * (step + 1.0) / top
            falling = peak * (total - step) / max(1.0, total - top)
            rate = tf.maximum(0.0, tf.minimum(rising, falling))
        elif self.kind == "piecewise":
            rate = tf.where(step < 0.5 * total, peak, tf.where(step < 0.75 * total, peak / 10, peak / 100))
        else:
            rate = peak
        if self.warmup_steps:
            rate = tf.where(step < self.warmup_steps, peak * step / self.warmup_steps, rate)
        return tf.cast(rate, tf.float32)

    def get_config(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }


def _initial_rate(optimizer: keras.optimizers.Optimizer) -> float:
    rate = optimizer._learning_rate  # the schedule or variable, read before any step
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        return float(rate(0))
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
