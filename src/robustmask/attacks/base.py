"""The `Attack` interface: what every robustmask attack shares.

As in Foolbox 3, the base class owns everything that is the same for all attacks: argument checks,
labels (true, target, or the model's own predictions), the epsilon loop, projection onto the
epsilon ball, clipping to the valid range, batching over large inputs and conversion to NumPy at
the API edge. An attack implements one method, `run`, which perturbs one batch for one epsilon
using the helpers `gradient` and `project`. The hot path stays in TensorFlow: `generate` is the
tensor-level, graph-safe entry point that evaluators and adversarial trainers call inside their own
compiled loops.

A complete attack is a few lines::

    class BIM(robustmask.Attack):
        def __init__(self, steps=10, **kwargs):
            super().__init__(**kwargs)
            self.steps = steps

        def run(self, model, x, y, eps):
            x_adv = x
            for _ in range(self.steps):
                x_adv = self.project(x_adv + eps / self.steps * tf.sign(self.gradient(model, x_adv, y)), x, eps)
            return x_adv
"""

from __future__ import annotations

import abc
import weakref
from typing import ClassVar

import numpy as np
import tensorflow as tf

from robustmask._validation import (
    check_clip,
    check_epsilons,
    check_images,
    check_input_shape,
    check_labels,
    check_positive_int,
)
from robustmask.errors import AttackError
from robustmask.modelinfo import ModelInfo, clipped_cross_entropy, cross_entropy, inspect_model, log_probabilities


class Attack(abc.ABC):
    """Base class of all attacks.

    Args:
        clip: the valid input range ``(low, high)``; adversarial images are clipped to it. ``None``
            turns clipping off (the paper's exact Algorithm 1 does not clip).
        loss: ``None`` for cross-entropy from log-probabilities (the logits behind a softmax: no
            clipping, so confident images keep their gradient); ``"keras"`` for the paper's literal
            loss, Keras' categorical cross-entropy on softmax probabilities clipped to
            [1e-7, 1 - 1e-7], whose gradient is exactly zero on saturated outputs; or a callable
            ``loss(y_onehot, log_probs) -> per-example`` loss that the attack ascends (descends when
            ``targeted``).
        from_logits: ``None`` detects whether the model ends in softmax or outputs logits.
        targeted: when True, ``y`` holds target classes and the attack pushes towards them.
        batch_size: how many images go through the model at once.

    Class attributes that describe the attack (the Evaluator and registry read them):
        eps_bounded: ``eps`` bounds the L-inf size of the perturbation. Attacks that choose their own
            size (DeepFool, C&W L2, JSMA) set False; they are run once and ignore ``eps``.
        needs_gradients: False for black-box attacks, which only query predictions.
        graph_safe: `generate` can run inside a tf.function (an adversarial trainer's train_step).
            Adapters that round-trip through NumPy (ART) set False.
    """

    eps_bounded: ClassVar[bool] = True
    needs_gradients: ClassVar[bool] = True
    graph_safe: ClassVar[bool] = True

    def __init__(self, *, clip=(0.0, 1.0), loss=None, from_logits: bool | None = None,
                 targeted: bool = False, batch_size: int = 128):
        if loss is not None and loss != "keras" and not callable(loss):
            raise AttackError(f"loss must be None, 'keras' or a callable loss(y_onehot, log_probs), got {loss!r}")
        self.clip = check_clip(clip)
        self.loss_fn = loss
        self.from_logits = from_logits
        self.targeted = bool(targeted)
        self.batch_size = check_positive_int(batch_size, "batch_size", error=AttackError)
        self._compiled: dict = {}

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"{self.name}(clip={self.clip}, targeted={self.targeted})"

    # ------------------------------------------------------------------ the one method to write
    @abc.abstractmethod
    def run(self, model, x, y, eps):
        """Perturb one batch for one epsilon and return the adversarial batch (a tensor).

        ``x``: float32 tensor (batch, ...); ``y``: one-hot float32 tensor (batch, classes), the true
        labels (or the targets when ``targeted``); ``eps``: a scalar float32 tensor. The base class
        projects the result onto the eps ball and clips it afterwards, so `run` may skip that, but
        iterative attacks should `project` after every step. Runs inside a compiled tf.function.
        """

    def run_many(self, model, x, y, epsilons):
        """All epsilons for one batch: (len(epsilons), batch, ...). Override when they share work.

        One eps at a time in a graph loop: the graph holds one copy of `run` whatever the number
        of epsilons, and that number may be unknown when the function is traced.
        """
        return tf.map_fn(lambda eps: tf.cast(self.run(model, x, y, eps), tf.float32), epsilons,
                         parallel_iterations=1, fn_output_signature=tf.TensorSpec(x.shape, tf.float32))

    # ------------------------------------------------------------------ helpers for `run`
    def model_info(self, model, sample=None) -> ModelInfo:
        return inspect_model(model, self.from_logits, sample)

    def objective(self, model, x, y):
        """Per-example quantity the attack ascends: the loss, or minus the loss when targeted."""
        outputs = model(x, training=False)
        if self.loss_fn == "keras":
            loss = clipped_cross_entropy(y, outputs, self.model_info(model))
        else:
            log_probs = log_probabilities(outputs, self.model_info(model))
            loss = cross_entropy(y, log_probs) if self.loss_fn is None else self.loss_fn(y, log_probs)
        return -loss if self.targeted else loss

    def gradient(self, model, x, y):
        """Gradient of the attack objective with respect to the inputs (the ascent direction)."""
        with tf.GradientTape() as tape:
            tape.watch(x)
            objective = self.objective(model, x, y)
        # Zeros, not None, where the input does not reach the loss (a stop_gradient, a rounding
        # preprocessor): the attack then does nothing and the Evaluator's sanity check says why.
        return tape.gradient(objective, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    def project(self, x_adv, x, eps):
        """Project onto the L-inf ball of radius eps around x, then into the valid range."""
        if self.eps_bounded:
            x_adv = tf.clip_by_value(x_adv, x - eps, x + eps)
        if self.clip is not None:
            x_adv = tf.clip_by_value(x_adv, self.clip[0], self.clip[1])
        return x_adv

    # ------------------------------------------------------------------ tensor-level entry point
    def generate(self, model, x, y, epsilons):
        """Adversarial batches for every epsilon: a (len(epsilons), batch, ...) float32 tensor.

        Graph-safe: call it from inside a ``train_step`` or another tf.function. ``y`` must be one-hot.
        Called eagerly, it runs a tf.function compiled once per model.
        """
        x = tf.convert_to_tensor(x, tf.float32)
        y = tf.convert_to_tensor(y, tf.float32)
        epsilons = tf.reshape(tf.convert_to_tensor(epsilons, tf.float32), [-1])
        if not tf.executing_eagerly():
            return self._generate(model, x, y, epsilons)
        compiled = self._compiled.get(id(model))
        if compiled is None:
            compiled = self._compile_for(model)
        return compiled(x, y, epsilons)

    def _compile_for(self, model):
        # One tf.function per model. It holds the model weakly (a strong reference would keep every
        # model an attack ever saw alive) and is dropped when the model is collected.
        try:
            model_ref = weakref.ref(model)
        except TypeError:
            model_ref = lambda: model  # noqa: E731  (plain callables that cannot be weakly referenced)
        else:
            weakref.finalize(model, self._compiled.pop, id(model), None)

        def generate(x, y, epsilons):
            return self._generate(model_ref(), x, y, epsilons)

        compiled = tf.function(generate, reduce_retracing=True)
        self._compiled[id(model)] = compiled
        return compiled

    def _generate(self, model, x, y, epsilons):
        adversarial = self.run_many(model, x, y, epsilons)
        x_rep = tf.broadcast_to(x[None], tf.shape(adversarial))
        eps = tf.reshape(epsilons, [-1] + [1] * x.shape.rank)
        return self.project(tf.cast(adversarial, tf.float32), x_rep, eps)

    # ------------------------------------------------------------------ NumPy edge
    def __call__(self, model, x, y=None, eps=None):
        """Attack ``x`` and return adversarial images as a NumPy array of x's shape and dtype.

        Args:
            model: a Keras classifier (softmax or logits, any number of classes >= 2).
            x: images, (n, ...) array within the clip range.
            y: true labels (integer or one-hot); the targets when ``targeted``. ``None`` uses the
                model's own predictions, which avoids label leaking (Kurakin et al. 2016).
            eps: one epsilon, or a sequence; then the result has a leading axis of len(eps).
                Attacks that choose their own perturbation size (``eps_bounded = False``) take none.
        """
        if not self.eps_bounded:
            if eps is not None:
                raise AttackError(
                    f"{self.name} chooses its own perturbation size and takes no eps; call it without eps "
                    "and measure the perturbation with robustmask.attacks.attack_report"
                )
            epsilons, scalar = [0.0], True
        elif eps is None:
            raise AttackError(f"{self.name} needs eps, the L-inf budget (e.g. eps=0.004 for images in [0, 1])")
        else:
            epsilons, scalar = check_epsilons(eps)
        x_np = check_images(x, self.clip)
        info = self.model_info(model, x_np)
        check_input_shape(x_np.shape, info.input_shape)
        if y is None:
            if self.targeted:
                raise AttackError(f"{self.name} is targeted: pass the target classes as y")
            labels = self.predict_labels(model, x_np)
        else:
            labels = check_labels(y, len(x_np), info.num_classes)
        out = np.empty((len(epsilons),) + x_np.shape, dtype=x_np.dtype if x_np.dtype.kind == "f" else np.float32)
        for start in range(0, len(x_np), self.batch_size):
            stop = start + self.batch_size
            x_batch = tf.convert_to_tensor(x_np[start:stop], tf.float32)
            y_batch = tf.one_hot(labels[start:stop], info.num_classes)
            out[:, start:stop] = self.generate(model, x_batch, y_batch, epsilons).numpy()
        return out[0] if scalar else out

    def predict_labels(self, model, x) -> np.ndarray:
        """The model's predicted classes for x, batch by batch."""
        info = self.model_info(model, x)
        predicted = []
        for start in range(0, len(x), self.batch_size):
            outputs = model(tf.convert_to_tensor(x[start : start + self.batch_size], tf.float32), training=False)
            predicted.append(np.argmax(log_probabilities(outputs, info).numpy(), axis=1))
        return np.concatenate(predicted)

