"""The ART estimator robustmask builds from a Keras model: what ART sees of the model.

`art_estimator(model, info, ...)` is an ART ``TensorFlowV2Classifier`` with compiled loss, gradient
and Jacobian functions, cached per model and settings (holding the model weakly). Importing this
module imports ART, as importing anything from `robustmask.attacks.art` does.

ART gets a view of the model that outputs **log-probabilities**, whatever the model ends in (softmax,
logits, a single sigmoid unit), and computes its loss with
``keras.losses.CategoricalCrossentropy(from_logits=True)``. Log-probabilities are logits (softmax of
them gives back the probabilities) and differ from the model's own logits by one constant per image, so

* the cross-entropy, its gradient, and hence FGSM/BIM/PGD are exactly those of the native attacks
  (which use the same `robustmask.modelinfo.log_probabilities`), with no 1e-7 probability clipping
  that zeroes the gradient on confidently classified images of a softmax model;
* attacks that work on logit *differences* -- DeepFool, Carlini & Wagner, the DLR loss of ARTAutoPGD,
  Square's margin -- see exactly the logit differences of the model, as their papers assume, even
  for a softmax model (Keras 3 keeps the logits behind a softmax layer; see `modelinfo`);
* single-unit (sigmoid) binary models appear to ART as ordinary 2-class models.

The few ART attacks that read the outputs as probabilities (NewtonFool, VirtualAdversarialMethod) get
the probabilities instead (``outputs="probabilities"``). Black-box attacks get a query-counting black
box over the same view instead (`robustmask.attacks.art.queries`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import tensorflow as tf
from art.estimators.classification import TensorFlowV2Classifier

from robustmask._weakrefs import weak_reference
from robustmask.errors import AttackError, ModelError
from robustmask.modelinfo import ModelInfo, log_probabilities

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Model

__all__ = ["LOSSES", "OUTPUTS", "art_estimator"]

OUTPUTS = ("log_probabilities", "probabilities")

# model -> {key: estimator or compiled predict function}. Weak keys; the values hold the model only
# through a weak reference (see `_ModelView`), so a model that is deleted takes its entries with it.
_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


# ---------------------------------------------------------------------------------------------- estimators
class _ModelView:
    """What ART calls as "the model": log-probabilities (or probabilities) (batch, classes), the Keras
    model held weakly."""

    def __init__(self, model: Model, info: ModelInfo, outputs: str = "log_probabilities") -> None:
        self._ref = weak_reference(model)
        self.info = info
        self.outputs = outputs

    @property
    def model(self):
        model = self._ref()
        if model is None:
            raise ModelError("the Keras model behind this ART estimator has been deleted")
        return model

    def __call__(self, x, training=False):
        # Attacks run the model in inference mode (no dropout, frozen BatchNorm), as native attacks do.
        log_probs = log_probabilities(self.model(tf.cast(x, tf.float32), training=False), self.info)
        return tf.exp(log_probs) if self.outputs == "probabilities" else log_probs


class KerasClassifier(TensorFlowV2Classifier):
    """ART's estimator with batched predictions and compiled gradients.

    ART's TensorFlowV2Classifier feeds everything to the model at once and computes its
    gradients eagerly, one forward pass per class; here predictions go in chunks and the
    gradients are compiled tf.functions with one forward pass. The model is never in training
    mode (no preprocessing or defences are attached, so none is skipped).
    """

    chunk_size = 128

    def __init__(
        self,
        *args: Any,
        per_example_loss: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        model, loss_object = self._model, self._loss_object
        per_example = per_example_loss or _cross_entropy

        def jacobian(x):  # (n, classes, ...): d output[:, k] / d x for every class k
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(x)
                out = model(x)
                columns = [out[:, k] for k in range(out.shape[-1])]
            grads = tf.stack([tape.gradient(column, x) for column in columns], axis=1)
            del tape
            return grads

        def selected(x, onehot):  # (n, ...): d output[i, label_i] / d x_i
            with tf.GradientTape() as tape:
                tape.watch(x)
                out = tf.reduce_sum(model(x) * onehot)
            return tape.gradient(out, x)

        def loss_gradient(x, y):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = loss_object(y, model(x))
            return tape.gradient(loss, x)

        def losses(x, y):
            return per_example(y, model(x))

        self._losses = tf.function(losses, reduce_retracing=True)
        self._jacobian = tf.function(jacobian, reduce_retracing=True)
        self._selected = tf.function(selected, reduce_retracing=True)
        self._loss_gradient = tf.function(loss_gradient, reduce_retracing=True)

    def predict(
        self, x: np.ndarray, batch_size: int = 128, training_mode: bool = False, **kwargs: Any
    ) -> np.ndarray:
        # ART's TensorFlowV2Classifier ignores batch_size; some attacks pass batch_size=1, so
        # the chunk size is the robustmask attack's batch_size, set before each run.
        x = np.asarray(x)
        step = max(int(self.chunk_size), 1)
        parent = super().predict
        if len(x) <= step:
            return parent(x)
        return np.concatenate([parent(x[i : i + step]) for i in range(0, len(x), step)])

    def class_gradient(
        self,
        x: np.ndarray,
        label: int | Sequence[int] | np.ndarray | None = None,
        training_mode: bool = False,
        **kwargs: Any,
    ) -> np.ndarray:
        x_t = tf.convert_to_tensor(np.asarray(x, np.float32))
        if label is None:
            return self._jacobian(x_t).numpy()
        labels = np.asarray(label).reshape(-1)
        if labels.size == 1:
            labels = np.full(len(x_t), int(labels[0]))
        onehot = tf.one_hot(labels.astype(np.int64), self.nb_classes, dtype=tf.float32)
        return self._selected(x_t, onehot).numpy()[:, None]

    def compute_loss(
        self,
        x: np.ndarray,
        y: np.ndarray,
        reduction: str = "none",
        training_mode: bool = False,
        **kwargs: Any,
    ) -> np.ndarray | np.floating:
        # ART's version sets tf.keras.losses.Reduction on the loss object; this one is compiled
        # and per example whatever the loss object is.
        y = np.asarray(y, np.float32)
        if y.ndim == 1:
            y = np.eye(self.nb_classes, dtype=np.float32)[y.astype(np.int64)]
        losses = self._losses(tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(y)).numpy()
        if reduction == "mean":
            return losses.mean()
        if reduction == "sum":
            return losses.sum()
        return losses

    def loss_gradient(
        self,
        x: np.ndarray | tf.Tensor,
        y: np.ndarray | tf.Tensor,
        training_mode: bool = False,
        **kwargs: Any,
    ) -> np.ndarray | tf.Tensor:
        is_numpy = isinstance(x, np.ndarray)
        x_t = tf.convert_to_tensor(x, tf.float32)
        y_t = tf.convert_to_tensor(y, tf.float32)
        if y_t.shape.rank == 1:
            y_t = tf.one_hot(tf.cast(y_t, tf.int64), self.nb_classes)
        grads = self._loss_gradient(x_t, y_t)
        return grads.numpy() if is_numpy else grads


def _cached(model, key, factory):
    try:
        entries = _CACHE.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no caching
        return factory()
    if key not in entries:
        entries[key] = factory()
    return entries[key]


def _cross_entropy(y, logits):
    return tf.nn.softmax_cross_entropy_with_logits(tf.cast(y, tf.float32), logits)


def _cross_entropy_of_probabilities(y, probs):
    return -tf.reduce_sum(tf.cast(y, probs.dtype) * tf.math.log(tf.maximum(probs, 1e-30)), axis=-1)


def _difference_of_logits_ratio(y, logits):
    """Croce & Hein's DLR loss per example: -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12).

    It needs at least 3 classes, and is invariant to adding a constant to the logits, so
    log-probabilities give exactly the DLR of the model's logits.
    """
    y = tf.cast(y, logits.dtype)
    top = tf.sort(logits, axis=-1, direction="DESCENDING")
    z_y = tf.reduce_sum(y * logits, axis=-1)
    z_other = tf.reduce_max(logits - 1e9 * y, axis=-1)
    return -(z_y - z_other) / (top[:, 0] - top[:, 2] + 1e-12)


class _MeanLoss:
    """A per-example loss as an ART loss object: called, it returns the batch mean."""

    reduction = "mean"

    def __init__(self, per_example):
        self.per_example = per_example

    def __call__(self, y, logits):
        return tf.reduce_mean(self.per_example(y, logits))


LOSSES = {"cross_entropy": _cross_entropy, "difference_logits_ratio": _difference_of_logits_ratio}


def art_estimator(
    model: Model,
    info: ModelInfo,
    clip_values: Sequence[float] | None = None,
    loss: str = "cross_entropy",
    outputs: str = "log_probabilities",
) -> TensorFlowV2Classifier:
    """ART's white-box estimator of a Keras model (cached per model, loss and outputs, held weakly).

    It predicts log-probabilities (``outputs="probabilities"``: probabilities, for the few ART attacks
    that need them). With the default cross-entropy its loss object is
    ``keras.losses.CategoricalCrossentropy(from_logits=True)`` (``from_logits=False`` on
    probabilities), the model's own cross-entropy (see the module docstring);
    ``loss="difference_logits_ratio"`` gives ARTAutoPGD's DLR loss instead.
    """
    import keras

    if loss not in LOSSES:
        raise AttackError(f"unknown loss {loss!r}; robustmask's ART estimators have {', '.join(LOSSES)}")
    if outputs not in OUTPUTS:
        raise AttackError(f"outputs must be one of {', '.join(OUTPUTS)}, got {outputs!r}")
    if outputs == "probabilities" and loss != "cross_entropy":
        raise AttackError(f"the {loss} loss needs log-probabilities (logits), not probabilities")
    clip_key = None if clip_values is None else tuple(float(v) for v in clip_values)
    key = ("white-box", clip_key, info, loss, outputs)

    def build():
        if outputs == "probabilities":
            loss_object, per_example = keras.losses.CategoricalCrossentropy(), _cross_entropy_of_probabilities
        elif loss == "cross_entropy":
            loss_object, per_example = keras.losses.CategoricalCrossentropy(from_logits=True), _cross_entropy
        else:
            loss_object, per_example = _MeanLoss(LOSSES[loss]), LOSSES[loss]
        return KerasClassifier(
            model=_ModelView(model, info, outputs),
            nb_classes=info.num_classes,
            input_shape=_input_shape(model, info),
            loss_object=loss_object,
            clip_values=clip_key,
            per_example_loss=per_example,
        )

    estimator = _cached(model, key, build)
    if estimator.input_shape is None:  # learnt from the first batch for models that do not declare it
        estimator._input_shape = info.input_shape
    return estimator


def _input_shape(model: Model, info: ModelInfo) -> tuple[int, ...] | None:
    shape = info.input_shape
    if shape is None or any(d is None for d in shape):
        return None
    return tuple(int(d) for d in cast("tuple[int, ...]", shape))  # no None left
