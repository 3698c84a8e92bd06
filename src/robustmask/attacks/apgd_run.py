"""One run of Auto-PGD on a batch (AutoAttack's ``attack_single_run``): the per-image bookkeeping.

`robustmask.attacks.apgd.AutoPGD` draws the start and runs restarts; a `Run` takes the steps. Each
image has its own step size, best point and loss history, so images that fall can leave the batch
without changing any other image's search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

__all__ = ["Run", "checkpoints"]

MOMENTUM = 0.75  # AutoAttack's alpha: the weight of the new step against the previous move
RHO = 0.75  # a checkpoint halves the step unless the loss rose in more than this share of its steps


def checkpoints(steps: int) -> dict[int, int]:
    """Iteration -> span: where AutoAttack checks progress and over how many steps. The first check
    comes after 22% of the run, each next span is 3% shorter, never under 6% (its ``n_iter_2``,
    ``size_decr`` and ``n_iter_min``)."""
    span, shorter, shortest = (max(int(share * steps), 1) for share in (0.22, 0.03, 0.06))
    points, i = {}, span - 1
    while i < steps:
        points[i] = span
        span = max(span - shorter, shortest)
        i += span
    return points


class Run:
    """A batch's search: steps with momentum, the step size halved per image at checkpoints."""

    def __init__(
        self,
        evaluate: Callable,
        step: Callable,
        x: tf.Tensor,
        y: tf.Tensor,
        start: tf.Tensor,
        eps: float,
    ) -> None:
        self.step_fn, self.eps = step, tf.constant(eps, tf.float32)
        n = int(x.shape[0])
        loss, grad, standing = evaluate(start, y)
        # Results by position in x: the fooling iterate (or, never fooled, the best point) and its loss.
        self.result, self.result_loss = start.numpy(), loss.numpy()
        self.fooled = ~standing.numpy()
        self.index = np.arange(n)
        self.x, self.y = x, y
        self.x_adv, self.x_previous, self.grad = start, start, grad
        self.x_best, self.grad_best, self.loss_best = start, grad, loss.numpy()
        self.step_size = np.full((n,) + (1,) * (x.shape.rank - 1), 2 * eps, np.float32)
        self.reduced_at_last_check = np.ones(n, bool)
        self.loss_best_at_last_check = self.loss_best.copy()
        self.history: np.ndarray | None = None
        self._keep(~self.fooled)

    def search(self, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Take `steps` steps; return each image's result, whether it fooled the model, and its loss."""
        self.history = np.zeros((steps, len(self.index)), np.float32)
        spans = checkpoints(steps)
        for i in range(steps):
            if self.index.size == 0:
                break
            standing = self._take_step(i)
            self._note_fooled(standing)
            if i in spans:
                self._check(i, spans[i])
            self._keep(standing)
        still = self.index
        self.result[still] = self.x_best.numpy()
        self.result_loss[still] = self.loss_best
        return self.result, self.fooled, self.result_loss

    def _take_step(self, i: int) -> np.ndarray:
        momentum = tf.constant(1.0 if i == 0 else MOMENTUM, tf.float32)
        step_size = tf.constant(self.step_size)
        x_next, loss, grad, standing = self.step_fn(
            self.x, self.y, self.x_adv, self.x_previous, self.grad, step_size, momentum, self.eps
        )
        self.x_previous, self.x_adv, self.grad = self.x_adv, x_next, grad
        loss = loss.numpy()
        assert self.history is not None
        self.history[i] = loss
        higher = loss > self.loss_best
        mask = self._per_image(higher)
        self.x_best = tf.where(mask, x_next, self.x_best)
        self.grad_best = tf.where(mask, grad, self.grad_best)
        self.loss_best = np.where(higher, loss, self.loss_best)
        return standing.numpy()

    def _check(self, i: int, span: int) -> None:
        """Halve the step of the images whose loss rose in at most RHO of the last `span` steps, or that
        were not halved last time and have not improved since; move those back to their best point.

        The step before the first counts as loss 0: AutoAttack reads row -1 of its (zeroed) history
        there, and this keeps its counts.
        """
        assert self.history is not None
        rows = i - np.arange(span)
        increases = np.sum(self.history[rows] > self.history[rows - 1], axis=0)
        halve = (increases <= span * RHO) | (
            ~self.reduced_at_last_check & (self.loss_best_at_last_check >= self.loss_best)
        )
        self.reduced_at_last_check = halve
        self.loss_best_at_last_check = self.loss_best.copy()
        if halve.any():
            self.step_size[halve] /= 2
            mask = self._per_image(halve)
            self.x_adv = tf.where(mask, self.x_best, self.x_adv)
            self.grad = tf.where(mask, self.grad_best, self.grad)

    def _note_fooled(self, standing: np.ndarray) -> None:
        """Keep the iterate that fooled each image this step fooled (before a check moves it back)."""
        fell = ~standing
        if fell.any():
            where = self.index[fell]
            self.result[where] = self.x_adv.numpy()[fell]
            self.fooled[where] = True

    def _per_image(self, flags: np.ndarray) -> tf.Tensor:
        """One flag per image, shaped to broadcast over the image's other axes."""
        return tf.reshape(tf.constant(flags), [-1] + [1] * (self.x.shape.rank - 1))

    def _keep(self, keep: np.ndarray) -> None:
        """Drop the images no longer searched for (fooled) from every per-image state."""
        if keep.all():
            return
        self.index = self.index[keep]
        positions = tf.constant(np.flatnonzero(keep))
        for name in ("x", "y", "x_adv", "x_previous", "grad", "x_best", "grad_best"):
            setattr(self, name, tf.gather(getattr(self, name), positions))
        for name in ("loss_best", "step_size", "reduced_at_last_check", "loss_best_at_last_check"):
            setattr(self, name, getattr(self, name)[keep])
        if self.history is not None:
            self.history = self.history[:, keep]
