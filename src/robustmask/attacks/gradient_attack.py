"""`GradientAttack`: the base of native TensorFlow attacks, which implement one method, `run`.

`run` perturbs one batch for one epsilon using the helpers `gradient` (of the attack's loss),
`project` (onto the eps ball of the attack's norm and the clip range) and ``self.norm.step`` (the
steepest-ascent step of unit size in that norm). The base class compiles `generate` around it once
per model, keeps the hot path in TensorFlow, and `generate` stays graph-safe: evaluators and
adversarial trainers call it inside their own compiled loops.

A complete attack is a few lines (BIM, in any norm)::

    class BIM(robustmask.GradientAttack):
        def __init__(self, steps=10, **kwargs):
            super().__init__(**kwargs)
            self.steps = steps

        def run(self, model, x, y, eps):
            x_adv = x
            for _ in range(self.steps):
                step = self.norm.step(self.gradient(model, x_adv, y))
                x_adv = self.project(x_adv + eps / self.steps * step, x, eps)
            return x_adv
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import tensorflow as tf

from robustmask._weakrefs import weak_reference
from robustmask.attacks.base import Attack
from robustmask.errors import AttackError
from robustmask.modelinfo import clipped_cross_entropy, cross_entropy, log_probabilities

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Model

__all__ = ["GradientAttack", "LossSpec"]

# loss(y_onehot, log_probs) -> per-example loss.
LossFunction = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
# None (cross-entropy from log-probabilities), "keras" (the paper's clipped loss), or loss(y_onehot, log_probs).
LossSpec = None | str | LossFunction


class GradientAttack(Attack):
    """Base class of native TensorFlow attacks: write `run`, get everything else.

    Args:
        loss: ``None`` for cross-entropy from log-probabilities (the logits behind a softmax: no
            clipping, so confident images keep their gradient); ``"keras"`` for the paper's literal
            loss, Keras' categorical cross-entropy on softmax probabilities clipped to
            [1e-7, 1 - 1e-7], whose gradient is exactly zero on saturated outputs; or a callable
            ``loss(y_onehot, log_probs) -> per-example`` loss that the attack ascends (descends when
            ``targeted``).
        **kwargs: ``clip``, ``norm``, ``from_logits``, ``targeted``, ``batch_size`` (see `Attack`).
    """

    def __init__(self, *, loss: LossSpec = None, **kwargs: Any) -> None:
        if loss is not None and loss != "keras" and not callable(loss):
            raise AttackError(
                f"loss must be None, 'keras' or a callable loss(y_onehot, log_probs), got {loss!r}"
            )
        super().__init__(**kwargs)
        self.loss_fn = loss
        self._compiled: dict[int, Callable[..., tf.Tensor]] = {}

    # ------------------------------------------------------------------ the one method to write
    @abc.abstractmethod
    def run(self, model: Model, x: tf.Tensor, y: tf.Tensor, eps: tf.Tensor) -> tf.Tensor:
        """Perturb one batch for one epsilon and return the adversarial batch (a tensor).

        ``x``: float32 tensor (batch, ...); ``y``: one-hot float32 tensor (batch, classes), the true
        labels (or the targets when ``targeted``); ``eps``: a scalar float32 tensor. The base class
        projects the result onto the eps ball and clips it afterwards, so `run` may skip that, but
        iterative attacks should `project` after every step. Runs inside a compiled tf.function.
        """

    def run_many(self, model: Model, x: tf.Tensor, y: tf.Tensor, epsilons: tf.Tensor) -> tf.Tensor:
        """All epsilons for one batch: (len(epsilons), batch, ...). Override when they share work.

        One eps at a time in a graph loop: the graph holds one copy of `run` whatever the number
        of epsilons, and that number may be unknown when the function is traced.
        """
        return tf.map_fn(
            lambda eps: tf.cast(self.run(model, x, y, eps), tf.float32),
            epsilons,
            parallel_iterations=1,
            fn_output_signature=tf.TensorSpec(x.shape, tf.float32),
        )

    # ------------------------------------------------------------------ helpers for `run`
    def objective(self, model: Model, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        """Per-example quantity the attack ascends: the loss, or minus the loss when targeted."""
        outputs = model(x, training=False)
        if self.loss_fn == "keras":
            loss = clipped_cross_entropy(y, outputs, self.model_info(model))
        else:
            log_probs = log_probabilities(outputs, self.model_info(model))
            # Not None and not "keras": a callable (__init__ admits no other string).
            loss = (
                cross_entropy(y, log_probs)
                if self.loss_fn is None
                else cast(LossFunction, self.loss_fn)(y, log_probs)
            )
        return -loss if self.targeted else loss

    def gradient(self, model: Model, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        """Gradient of the attack objective with respect to the inputs (the ascent direction)."""
        with tf.GradientTape() as tape:
            tape.watch(x)
            objective = self.objective(model, x, y)
        # Zeros, not None, where the input does not reach the loss (a stop_gradient, a rounding
        # preprocessor): the attack then does nothing and the Evaluator's sanity check says why.
        return tape.gradient(objective, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    # ------------------------------------------------------------------ tensor-level entry point
    def generate(
        self, model: Model, x: tf.Tensor, y: tf.Tensor, epsilons: Sequence[float] | tf.Tensor
    ) -> tf.Tensor:
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

    def _compile_for(self, model: Model) -> Callable[..., tf.Tensor]:
        # One tf.function per model. It holds the model weakly (a strong reference would keep every
        # model an attack ever saw alive) and is dropped when the model is collected.
        model_ref = weak_reference(model, on_collect=lambda: self._compiled.pop(id(model), None))

        def generate(x: tf.Tensor, y: tf.Tensor, epsilons: tf.Tensor) -> tf.Tensor:
            return self._generate(cast("Model", model_ref()), x, y, epsilons)

        compiled = tf.function(generate, reduce_retracing=True)
        self._compiled[id(model)] = compiled
        return compiled

    def _generate(self, model: Model, x: tf.Tensor, y: tf.Tensor, epsilons: tf.Tensor) -> tf.Tensor:
        adversarial = tf.cast(self.run_many(model, x, y, epsilons), tf.float32)
        # One projection over (eps x batch) images, each with its own eps: norms work per image.
        image_shape = tf.shape(x)[1:]
        flat = tf.reshape(adversarial, tf.concat([[-1], image_shape], 0))
        x_rep = tf.tile(x, tf.concat([tf.shape(epsilons), tf.ones_like(image_shape)], 0))
        eps_rep = tf.repeat(epsilons, tf.shape(x)[0])
        projected = tf.reshape(self.project(flat, x_rep, eps_rep), tf.shape(adversarial))
        return tf.ensure_shape(projected, adversarial.shape)
