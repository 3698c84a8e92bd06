"""Projected Gradient Descent (L-inf, L2 or L1), with random start and restarts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import tensorflow as tf

from robustmask._validation import check_seed
from robustmask.attacks.bim import BIM, check_steps
from robustmask.errors import AttackError
from robustmask.modelinfo import log_probabilities

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Model, TensorEps


class PGD(BIM):
    """PGD: BIM from a random point in the eps ball, optionally restarted, keeping the strongest result.

    Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep Learning Models Resistant to Adversarial
    Attacks", ICLR 2018, https://arxiv.org/abs/1706.06083. ``x_0 = x + U(-eps, eps)``, then
    ``x_{k+1} = Clip_{x,eps}(x_k + alpha * sign(grad))``. With ``restarts > 1`` each example keeps
    the restart that fools the model (reaches the target when targeted), and among equals the one
    with the highest attack objective; so more restarts are never weaker. ``norm=2`` is Madry et
    al.'s L2 PGD: the start is uniform in the L2 ball and each step is ``alpha * g / ||g||_2``;
    ``norm=1`` takes sparse L1 steps (Tramer & Boneh 2019, see `robustmask.attacks.norms`).

    Step size: ``alpha = 2.5 * eps / steps`` by default, the rule of Madry et al.'s robustness
    library (the iterates can cross the ball and still refine). Madry's MNIST setup (eps 0.3, alpha
    0.01, 40 steps) is ``rel_stepsize=0.01 / 0.3``; their CIFAR-10 one (8/255, 2/255, 7 steps) is
    ``steps=7, rel_stepsize=0.25``.

    Args:
        steps: gradient steps per restart (>= 1).
        rel_stepsize: alpha as a fraction of eps; ``None`` for 2.5 / steps.
        abs_stepsize: alpha in input units, for every eps; overrides rel_stepsize.
        random_start: start from a uniform random point of the eps ball (else from x, i.e. BIM).
        restarts: random starts per example (>= 1; > 1 needs random_start).
        seed: integer for reproducible random starts (the same noise in every call and batch of the
            same shape, so an eps sweep equals separate calls); ``None`` draws fresh noise each call
            (use None for adversarial training, or every training step starts from the same noise).
        **kwargs: the keyword arguments below.

    Keyword Args:
        clip (tuple[float, float] | None): the valid input range, default ``(0, 1)``; ``None`` turns clipping
            off.
        norm (str | int): the threat model eps bounds: ``"inf"`` (L-inf, default), ``2`` or ``1``.
        loss (None | str | Callable): ``None`` (cross-entropy from log-probabilities, default), ``"keras"``
            (the paper's clipped loss) or a callable ``loss(y_onehot, log_probs)`` giving one value per
            image.
        from_logits (bool | None): ``None`` (default) detects whether the model ends in softmax or outputs
            logits; True or False says which.
        targeted (bool): ``y`` holds target classes and the attack pushes towards them (default False).
        batch_size (int): images per forward pass (default 128).

    Example::

        pgd = robustmask.attacks.PGD(steps=40, restarts=5, seed=0)
        x_adv = pgd(model, x_test, y_test, eps=0.004)
        pgd_l2 = robustmask.attacks.PGD(steps=40, norm=2, seed=0)
        x_adv = pgd_l2(model, x_test, y_test, eps=0.5)     # ||x_adv - x||_2 <= 0.5 per image
    """

    def __init__(
        self,
        steps: int = 40,
        rel_stepsize: float | None = None,
        abs_stepsize: float | None = None,
        random_start: bool = True,
        restarts: int = 1,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        steps = check_steps(steps, "steps")
        super().__init__(steps, 2.5 / steps if rel_stepsize is None else rel_stepsize, abs_stepsize, **kwargs)
        self.random_start = bool(random_start)
        self.restarts = check_steps(restarts, "restarts")
        if self.restarts > 1 and not self.random_start:
            raise AttackError("restarts > 1 needs random_start=True: without it every restart is the same")
        self.seed = check_seed(seed, error=AttackError)

    def __repr__(self) -> str:
        return (
            f"{self.name}(steps={self.steps}, {self._step_repr()}, random_start="
            f"{self.random_start}, restarts={self.restarts}, seed={self.seed}, norm={self.norm.name!r}, "
            f"targeted={self.targeted})"
        )

    def start(self, x: tf.Tensor, eps: TensorEps, restart: int | tf.Tensor) -> tf.Tensor:
        if not self.random_start:
            return x
        seed = (
            None
            if self.seed is None
            else tf.stack([tf.cast(self.seed, tf.int64), tf.cast(restart, tf.int64)])
        )
        return self.project(x + self.norm.random(tf.shape(x), eps, seed), x, eps)

    def run(self, model: Model, x: tf.Tensor, y: tf.Tensor, eps: tf.Tensor) -> tf.Tensor:
        if self.restarts == 1:
            return self.iterate(model, self.start(x, eps, 0), x, y, eps)

        def restart(
            r: tf.Tensor, best: tf.Tensor, best_success: tf.Tensor, best_score: tf.Tensor
        ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
            x_adv = self.iterate(model, self.start(x, eps, r), x, y, eps)
            predicted = tf.argmax(log_probabilities(model(x_adv, training=False), self.model_info(model)), 1)
            reached = tf.equal(predicted, tf.argmax(y, 1))
            success = reached if self.targeted else ~reached
            score = self.objective(model, x_adv, y)
            better = (success & ~best_success) | ((success == best_success) & (score > best_score))
            keep = tf.reshape(better, [-1] + [1] * (x.shape.rank - 1))
            return (
                r + 1,
                tf.where(keep, x_adv, best),
                best_success | success,
                tf.where(better, score, best_score),
            )

        batch = tf.shape(x)[:1]
        initial = (tf.constant(0), x, tf.zeros(batch, tf.bool), tf.fill(batch, float("-inf")))
        return tf.while_loop(lambda r, *_: r < self.restarts, restart, initial)[1]
