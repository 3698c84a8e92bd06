"""`GradientAttack`: the base of native TensorFlow attacks, which implement one method, `run`.

`run` perturbs one batch for one epsilon using the helpers `gradient` (of the attack's loss),
`project` (onto the eps ball of the attack's norm and the clip range) and ``self.norm.step`` (the
steepest-ascent step of unit size in that norm). The base class compiles `generate` around it once
per model and settings (instances with equal settings share it: `robustmask.attacks._compiled`),
keeps the hot path in TensorFlow, and `generate` stays graph-safe: evaluators and adversarial
trainers call it inside their own compiled loops.

`perturb` runs the same `run` on an input the classifier sees through a differentiable map (a
`ModelView`: the face crops of a camera frame, say), optionally only where a pixel ``mask`` allows.

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
import copy
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import tensorflow as tf

from robustmask._weakrefs import PerModelCache
from robustmask.attacks._compiled import SHARED as _SHARED  # noqa: F401  (tests and benchmarks read it here)
from robustmask.attacks._compiled import compiled, generate_body, loss_gradient_body
from robustmask.attacks.base import Attack
from robustmask.attacks.model_view import ModelView
from robustmask.errors import AttackError
from robustmask.modelinfo import clipped_cross_entropy, cross_entropy, log_probabilities

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Images, Model, TensorEps
    from robustmask.modelinfo import ModelInfo

__all__ = ["GradientAttack", "LossSpec", "ModelView"]

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
        **kwargs: the keyword arguments below (see `Attack`).

    Keyword Args:
        clip (tuple[float, float] | None): the valid input range, default ``(0, 1)``; ``None`` turns
            clipping off.
        norm (str | int): the threat model eps bounds: ``"inf"`` (L-inf, default), ``2`` or ``1``.
        from_logits (bool | None): ``None`` (default) detects whether the model ends in softmax or outputs
            logits; True or False says which.
        targeted (bool): ``y`` holds target classes and the attack pushes towards them (default False).
        batch_size (int): images per forward pass (default 128).
    """

    _mask: tf.Tensor | None = None  # where pixels may change: set on the copy `perturb` runs, not on self

    def __init__(self, *, loss: LossSpec = None, **kwargs: Any) -> None:
        if loss is not None and loss != "keras" and not callable(loss):
            raise AttackError(
                f"loss must be None, 'keras' or a callable loss(y_onehot, log_probs), got {loss!r}"
            )
        super().__init__(**kwargs)
        self.loss_fn = loss
        # Compiled functions of this instance alone (settings that cannot be keyed); others are shared.
        self._compiled = PerModelCache()

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

    def gradient(self, model: Model | ModelView, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        """Gradient of the attack objective with respect to the inputs (the ascent direction).

        Through a `ModelView`, the chain rule in two parts: the compiled `loss_gradient` on the
        view's inputs, then an eager tape from them back to ``x``. Zero where `perturb`'s mask is 0.
        """
        if isinstance(model, ModelView):
            with tf.GradientTape() as tape:
                tape.watch(x)
                inputs = model.inputs(x)
            upstream = self.compiled_gradient(model.model, inputs.shape, y.shape)(inputs, y)
            gradient = tape.gradient(
                inputs, x, output_gradients=upstream, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
        else:
            gradient = self.loss_gradient(model, x, y)
        return gradient if self._mask is None else tf.where(self._mask, gradient, tf.zeros_like(gradient))

    def loss_gradient(self, model: Model, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        """Gradient of `objective` with respect to ``x``, by one tape through the model."""
        with tf.GradientTape() as tape:
            tape.watch(x)
            objective = self.objective(model, x, y)
        # Zeros, not None, where the input does not reach the loss (a stop_gradient, a rounding
        # preprocessor): the attack then does nothing and the Evaluator's sanity check says why.
        return tape.gradient(objective, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    def project(self, x_adv: tf.Tensor, x: tf.Tensor, eps: TensorEps) -> tf.Tensor:
        """`Attack.project`, after putting back x where `perturb`'s mask is 0."""
        if self._mask is not None:
            x_adv = tf.where(self._mask, x_adv, x)
        # Attack.project, not super(): AutoGraph converts super() calls in a way that kept the model
        # alive after the trace (test_the_shared_caches_keep_no_model_alive).
        return Attack.project(self, x_adv, x, eps)

    def model_info(self, model: Model | ModelView, sample: Images | None = None) -> ModelInfo:
        """`Attack.model_info` of the model, or of the classifier behind a `ModelView`."""
        return Attack.model_info(self, model.model if isinstance(model, ModelView) else model, sample)

    # ------------------------------------------------------------------ one batch, one eps, as called
    def perturb(
        self,
        model: Model | ModelView,
        x: tf.Tensor,
        y: tf.Tensor,
        eps: float,
        mask: Images | tf.Tensor | None = None,
    ) -> tf.Tensor:
        """`run` on one batch for one eps, then the projection, as called (eagerly: for views).

        ``y`` is one-hot, one row per classifier input. ``mask`` (broadcast against ``x``, nonzero
        where pixels may change) zeroes the gradient and the perturbation elsewhere; the eps ball
        and clip range are the usual ones. The model's `ModelInfo` must be known (`model_info` with
        a sample). On a plain model, ``attack(model, x, y, eps)`` runs the same `run` compiled.

        Example::

            x_adv = PGD(steps=10, seed=0).perturb(view, frame[None], y_onehot, eps=0.008, mask=faces)
        """
        attack = copy.copy(self)
        x = tf.convert_to_tensor(x, tf.float32)
        if mask is not None:
            attack._mask = tf.broadcast_to(tf.not_equal(tf.convert_to_tensor(mask, tf.float32), 0), x.shape)
        eps_tensor = tf.constant(eps, tf.float32)
        y = tf.convert_to_tensor(y, tf.float32)
        return attack.project(tf.cast(attack.run(model, x, y, eps_tensor), tf.float32), x, eps_tensor)

    # ------------------------------------------------------------------ tensor-level entry point
    def generate(
        self, model: Model, x: tf.Tensor, y: tf.Tensor, epsilons: Sequence[float] | tf.Tensor
    ) -> tf.Tensor:
        """Adversarial batches for every epsilon: a (len(epsilons), batch, ...) float32 tensor.

        Graph-safe: call it from inside a ``train_step`` or another tf.function. ``y`` must be one-hot.
        Called eagerly, it runs a tf.function compiled once per model, attack settings and image
        shape, which every instance with the same settings shares.
        """
        x = tf.convert_to_tensor(x, tf.float32)
        y = tf.convert_to_tensor(y, tf.float32)
        epsilons = tf.reshape(tf.convert_to_tensor(epsilons, tf.float32), [-1])
        if not tf.executing_eagerly():
            return self._generate(model, x, y, epsilons)
        return self.compiled_for(model, x.shape, y.shape)(x, y, epsilons)

    def compiled_for(
        self, model: Model, x_shape: tf.TensorShape, y_shape: tf.TensorShape
    ) -> Callable[..., tf.Tensor]:
        """The compiled `generate` for `model` and batches of these shapes (any batch size).

        Shared: instances of the same class with equal settings get one tf.function (a fresh
        ``FGSM()`` per call, as scripts and notebooks make, costs no new trace). Its input signature
        leaves the batch and the number of epsilons open, so the last, smaller batch of a data set
        does not trace it again.
        """
        return compiled(self, model, generate_body, x_shape, y_shape, [tf.TensorSpec([None], tf.float32)])

    def compiled_gradient(
        self, model: Model, x_shape: tf.TensorShape, y_shape: tf.TensorShape
    ) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
        """The compiled `loss_gradient` ``(x, y) -> gradient`` for `model`, any batch size, shared
        as `compiled_for` is."""
        return compiled(self, model, loss_gradient_body, x_shape, y_shape, [])

    def _generate(self, model: Model, x: tf.Tensor, y: tf.Tensor, epsilons: tf.Tensor) -> tf.Tensor:
        adversarial = tf.cast(self.run_many(model, x, y, epsilons), tf.float32)
        # XLA fuses the projection's passes over the (eps x batch) images (tiling x, the ball's
        # bounds, the clip) into one loop: on a 2-core CPU an FGSM sweep's projection fell from
        # 96 to 6 ms a batch, with the same values (min and max round nothing). Only for norms
        # whose projection is elementwise; the others keep TensorFlow's kernels.
        project = tf.function(self._project_many, jit_compile=self.norm.elementwise)
        return tf.ensure_shape(project(adversarial, x, epsilons), adversarial.shape)

    def _project_many(self, adversarial: tf.Tensor, x: tf.Tensor, epsilons: tf.Tensor) -> tf.Tensor:
        # One projection over (eps x batch) images, each with its own eps: norms work per image.
        image_shape = tf.shape(x)[1:]
        flat = tf.reshape(adversarial, tf.concat([[-1], image_shape], 0))
        x_rep = tf.tile(x, tf.concat([tf.shape(epsilons), tf.ones_like(image_shape)], 0))
        eps_rep = tf.repeat(epsilons, tf.shape(x)[0])
        return tf.reshape(self.project(flat, x_rep, eps_rep), tf.shape(adversarial))
