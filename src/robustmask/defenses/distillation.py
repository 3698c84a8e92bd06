"""Defensive distillation, and the measurement that shows it masks gradients instead of defending.

Papernot, McDaniel, Wu, Jha & Swami, "Distillation as a Defense to Adversarial Perturbations against
Deep Neural Networks", IEEE S&P 2016, https://arxiv.org/abs/1511.04508: a teacher is trained with its
softmax at temperature T (``softmax(z / T)``), a student of the same architecture is trained at T on
the teacher's soft labels, and the student is deployed at temperature 1. Its logits come out about T
times larger than a normal model's, so the deployed softmax saturates: on most images it is exactly
one-hot in float32, the cross-entropy gradient is exactly zero and FGSM/PGD with cross-entropy do
nothing. Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017
(https://arxiv.org/abs/1608.04644) break it with a loss on the logits (the margin,
`robustmask.attacks.losses.margin_loss`, or `robustmask.attacks.CarliniL2` / `CarliniLInf`).
`robustmask.evaluation.zero_gradient_share` measures the masking.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from robustmask._batching import is_dataset
from robustmask._validation import check_choice, check_labels, check_positive_int, check_positive_number
from robustmask.defenses._data import CleanBatches
from robustmask.defenses._distillation_model import DistillationTrainingModel
from robustmask.defenses._training_step import build_state
from robustmask.defenses.base import Defense
from robustmask.defenses.checkpoints import EpochCheckpoint, fingerprint
from robustmask.defenses.distributed import is_chief, train
from robustmask.errors import ModelError, RobustmaskError, first_line
from robustmask.modelinfo import inspect_model

if TYPE_CHECKING:  # pragma: no cover
    from robustmask.modelinfo import ModelInfo

__all__ = ["DefensiveDistillation", "DistillationTrainingModel"]

INITS = ("model", "fresh")


class DefensiveDistillation(Defense):
    """Train a teacher and a student at temperature ``T``; deploy the student at temperature 1.

    The given model supplies the architecture (any Functional or Sequential classifier ending in a
    softmax or in logits) and, with ``init="model"``, the starting weights of teacher and student
    (which keeps a pre-trained, frozen base); ``init="fresh"`` re-initialises them (Papernot et al.
    train from scratch). The model itself is never changed.

    Args:
        temperature: T (> 0); Papernot et al. use 20 to 100.
        epochs: student training epochs.
        teacher_epochs: teacher training epochs; ``None``: the same as `epochs`.
        batch_size: the training batch size of both (Adam).
        learning_rate: Adam's learning rate for both.
        init: "model" or "fresh" (see above).
        strategy: a tf.distribute strategy (``MirroredStrategy``, ``MultiWorkerMirroredStrategy``):
            both runs then go through robustmask's own loop (`robustmask.defenses.distributed`),
            as every adversarial trainer's do; None: Keras' fit on one device.
        seed: seeds the order of the training examples (a function of (seed, epoch)).

    After `fit`: ``teacher_`` and ``student_`` are the logit models, ``teacher_history_`` the
    teacher's History. The deployed model returned ends in a softmax (temperature 1). The student
    reads its soft labels from the teacher batch by batch, so a streamed Dataset is never held.

    Example::

        distilled, history = DefensiveDistillation(temperature=100, epochs=20).fit(model, (x, y))
        print(zero_gradient_share(PGD(), distilled, x_test, y_test))  # large: gradients are masked
        pgd_ce = robustmask.attacks.PGD(steps=20)                     # fails on `distilled`
        pgd_cw = robustmask.attacks.PGD(steps=20, loss=margin_loss())  # does not
    """

    def __init__(
        self,
        temperature: float = 100.0,
        *,
        epochs: int = 10,
        teacher_epochs: int | None = None,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        init: str = "model",
        strategy: tf.distribute.Strategy | None = None,
        seed: int = 0,
    ) -> None:
        self.temperature = check_positive_number(temperature, "temperature")
        self.epochs = check_positive_int(epochs, "epochs")
        self.teacher_epochs = (
            self.epochs if teacher_epochs is None else check_positive_int(teacher_epochs, "teacher_epochs")
        )
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.learning_rate = check_positive_number(learning_rate, "learning_rate")
        self.init = check_choice(init, INITS, "init")
        self.strategy = strategy
        self.seed = check_positive_int(seed, "seed", allow_zero=True)
        self.teacher_: keras.Model | None
        self.student_: keras.Model | None
        self.teacher_history_: keras.callbacks.History | None
        self.teacher_ = self.student_ = self.teacher_history_ = None

    def fit(  # type: ignore[override]  # names Defense.fit's **kwargs
        self,
        model: keras.Model,
        train_data: Any,
        *,
        callbacks: Sequence[keras.callbacks.Callback] | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        verbose: str | int = 0,
    ) -> tuple[keras.Model, keras.callbacks.History]:
        """Distil `model` on `train_data`; return ``(deployed_model, student_history)``.

        `train_data` is ``(x, y)`` arrays or a finite, batched tf.data.Dataset of (x, y) (streamed:
        see `robustmask.datasets.stream_faces`). With `checkpoint_dir`, both runs are checkpointed
        every epoch (in its ``teacher`` and ``student`` folders) and the same call resumes them
        (a teacher already trained is not trained again: its history is then empty). `callbacks`
        see both runs, the teacher's first.
        """
        if train_data is None or (isinstance(train_data, (tuple, list)) and len(train_data) != 2):
            raise RobustmaskError(
                "train_data must be (x, y) arrays or a batched tf.data.Dataset of (x, y): "
                "distillation trains teacher and student"
            )
        clean = CleanBatches(train_data, 1.0, self.batch_size, None, self.seed)
        info = inspect_model(model, None, clean.sample)
        if info.single_unit:
            raise ModelError("defensive distillation needs a softmax or logits classifier with >= 2 outputs")
        if not is_dataset(train_data):
            check_labels(train_data[1], len(train_data[0]), info.num_classes)
        run = (clean, list(callbacks or []), checkpoint_dir, verbose)
        self.teacher_, self.teacher_history_ = self._run(model, info, None, *run)
        self.student_, history = self._run(model, info, self.teacher_, *run)
        inputs = keras.Input(clean.sample.shape[1:])
        outputs = keras.layers.Activation("softmax", name="predictions")(self.student_(inputs))
        return keras.Model(inputs, outputs, name=f"distilled_T{self.temperature:g}"), history

    def _run(
        self,
        model: keras.Model,
        info: ModelInfo,
        teacher: keras.Model | None,
        clean: CleanBatches,
        callbacks: list[keras.callbacks.Callback],
        checkpoint_dir: str | os.PathLike | None,
        verbose: str | int,
    ) -> tuple[keras.Model, keras.callbacks.History]:
        """Train a logits copy of `model`: the teacher on the labels (`teacher` None), else the student."""
        role, epochs = ("teacher", self.teacher_epochs) if teacher is None else ("student", self.epochs)
        with self.strategy.scope() if self.strategy is not None else contextlib.nullcontext():
            logits_model = self._logits_copy(model, info)
            trainer = DistillationTrainingModel(logits_model, info, self.temperature, teacher)
            trainer.compile(keras.optimizers.Adam(self.learning_rate), trainer.distillation_loss)
            build_state(trainer, clean.dataset.element_spec)
        callbacks = list(callbacks)
        initial_epoch = 0
        if checkpoint_dir is not None:
            # Settings only: the fitted attributes (teacher_, ...) are not what a checkpoint must match.
            settings = {k: v for k, v in fingerprint(self, model, epochs).items() if not k.endswith("_")}
            checkpoint = EpochCheckpoint(os.path.join(checkpoint_dir, role), settings | {"role": role})
            checkpoint.writer = is_chief(self.strategy)  # all workers read it, the chief writes it
            initial_epoch = checkpoint.restore(trainer, clean.sample)
            callbacks.append(checkpoint)
        run: dict[str, Any] = {"epochs": epochs, "initial_epoch": initial_epoch, "verbose": verbose}
        return logits_model, train(trainer, clean, self.strategy, callbacks=callbacks, **run)

    def _logits_copy(self, model: keras.Model, info: ModelInfo) -> keras.Model:
        last = model.layers[-1] if getattr(model, "layers", None) else None
        if last is None:
            raise ModelError(
                f"distillation needs a Functional or Sequential model, got {type(model).__name__}"
            )

        def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
            if layer is last and info.output == "probabilities":
                if isinstance(layer, keras.layers.Softmax) or (
                    isinstance(layer, keras.layers.Activation) and _activation_name(layer) == "softmax"
                ):
                    return keras.layers.Activation("linear", name=layer.name)
                config = layer.get_config()
                if _activation_name(layer) != "softmax":
                    raise ModelError(
                        f"the model's last layer {layer.name!r} is not a softmax: cannot find its logits"
                    )
                config["activation"] = "linear"
                return type(layer).from_config(config)
            return type(layer).from_config(layer.get_config())

        try:
            copy = keras.models.clone_model(model, clone_function=clone)
            if self.init == "model":
                copy.set_weights(model.get_weights())
        except (ValueError, TypeError, NotImplementedError, AttributeError, KeyError) as error:
            raise ModelError(
                f"cannot copy {getattr(model, 'name', type(model).__name__)!r} for distillation: "
                f"{first_line(error)}"
            ) from None
        return copy


def _activation_name(layer: keras.layers.Layer) -> str:
    activation = getattr(layer, "activation", None)
    return activation if isinstance(activation, str) else getattr(activation, "__name__", "")
