"""Auto-PGD, native: AutoAttack's gradient members (APGD-CE, APGD-DLR) as their paper runs them.

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020, https://arxiv.org/abs/2003.01690, Algorithm 1, in the L-inf
form of AutoAttack's own code (``autopgd_base.APGDAttack``): a random start in the eps ball, steps
of ``step_size * sign(grad)`` with momentum 0.75, the step size halved per image at checkpoints
(after 22% of the budget, then ever closer, never under 6%) where the loss rose in fewer than 75% of
the steps since the last one or did not improve, and the search then moved back to its best point.

Why a native one beside ART's (`robustmask.attacks.art.adaptive.ARTAutoPGD`): an image counts as
fooled here when *any* iterate fooled the model, as in AutoAttack (``acc = min(acc, pred)``); ART's
adapter keeps only the last iterate, so an image the search crossed and left again counts as robust
and ART's APGD reports higher robust accuracy than the paper's attack. Each step is one compiled
forward and backward pass on the images not yet fooled (the others drop out, which changes no
image's result: every quantity is per image).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import tensorflow as tf

from robustmask._validation import check_seed
from robustmask._weakrefs import PerModelCache
from robustmask.attacks.apgd_run import Run
from robustmask.attacks.base import Attack
from robustmask.attacks.bim import check_steps
from robustmask.attacks.losses import margin_loss
from robustmask.errors import AttackError
from robustmask.modelinfo import ModelInfo, log_probabilities

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Sequence

    from robustmask._types import Epsilons, Images, Labels, Model

__all__ = ["AutoPGD"]

LOSS_TYPES = ("ce", "dlr")
_MARGIN = margin_loss()  # max_{j != y} log p_j - log p_y: DLR's numerator, -(z_y - max_{j != y} z_j)


class AutoPGD(Attack):
    """Auto-PGD (L-inf): PGD that sets its own step size, AutoAttack's APGD-CE and APGD-DLR.

    Croce & Hein, ICML 2020, https://arxiv.org/abs/2003.01690 (Algorithm 1; the DLR loss is their
    eq. 5). Parameter-free: the step starts at 2 eps and is halved per image where progress stalls.
    An image is fooled when any iterate of any restart fooled the model; the returned image is that
    iterate, or for an image never fooled the point of highest loss the search found.

    Args:
        loss_type: ``"ce"`` (cross-entropy, default) or ``"dlr"`` (Difference of Logits Ratio,
            ``-(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3)``, invariant to the scale of the logits;
            needs 3 or more classes; untargeted only).
        steps: iterations per restart (AutoAttack: 100).
        restarts: runs from a new random start, each on the images the runs before did not fool.
        seed: integer for a repeatable run; ``None`` draws from NumPy's global generator, which
            ``keras.utils.set_random_seed`` seeds.
        **kwargs: the keyword arguments below.

    Keyword Args:
        clip (tuple[float, float] | None): the valid input range, default ``(0, 1)``; ``None`` turns clipping
            off.
        norm (str): ``"inf"``, the only one (L2 and L1 APGD: ``robustmask.attacks.ARTAutoPGD(norm=2)``).
        from_logits (bool | None): ``None`` (default) detects whether the model ends in softmax or outputs
            logits; True or False says which.
        targeted (bool): ``y`` holds target classes and the attack lowers their cross-entropy (default
            False; ``loss_type="ce"`` only).
        batch_size (int): images attacked together (default 128).

    Example::

        apgd = robustmask.attacks.AutoPGD(loss_type="dlr", steps=100, seed=0)
        x_adv = apgd(model, x_test, y_test, eps=8 / 255)
    """

    graph_safe = False  # images drop out as they fall and step sizes halve at checkpoints: Python decides

    def __init__(
        self,
        loss_type: str = "ce",
        steps: int = 100,
        restarts: int = 1,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if self.norm.name != "inf":
            raise AttackError(
                f"the native AutoPGD is the L-inf attack, got norm={self.norm.name!r}; for L2 or L1 use "
                "robustmask.attacks.ARTAutoPGD(norm=2) (registry name 'art-autopgd')"
            )
        if loss_type not in LOSS_TYPES:
            raise AttackError(f"AutoPGD: loss_type must be 'ce' or 'dlr', got {loss_type!r}")
        if loss_type == "dlr" and self.targeted:
            raise AttackError(
                "AutoPGD(loss_type='dlr') is untargeted (AutoAttack's targeted DLR needs the true labels "
                "as well as the targets); use loss_type='ce' for a targeted attack"
            )
        self.loss_type = loss_type
        self.steps = check_steps(steps, "steps")
        self.restarts = check_steps(restarts, "restarts")
        self.seed = check_seed(seed, error=AttackError)
        self._compiled = PerModelCache()

    def __repr__(self) -> str:
        return (
            f"{self.name}(loss_type={self.loss_type!r}, steps={self.steps}, restarts={self.restarts}, "
            f"seed={self.seed}, targeted={self.targeted})"
        )

    def __call__(
        self, model: Model, x: Images, y: Labels | None = None, eps: Epsilons | None = None
    ) -> np.ndarray:
        classes = self.model_info(model).num_classes
        if self.loss_type == "dlr" and classes < 3:
            raise AttackError(
                f"AutoPGD(loss_type='dlr') needs a model with at least 3 classes (DLR divides by the gap "
                f"between the largest and third-largest logit); this model has {classes}: use loss_type='ce'"
            )
        return super().__call__(model, x, y, eps)

    def generate(
        self, model: Model, x: tf.Tensor, y: tf.Tensor, epsilons: Sequence[float] | tf.Tensor
    ) -> tf.Tensor:
        x, y = tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(y, tf.float32)
        evaluate, step = self._functions(model, x.shape, y.shape)
        seed = self.seed if self.seed is not None else int(np.random.randint(2**31 - 1))
        rng = np.random.default_rng(seed)
        reached = self.predict_labels(model, x.numpy()) == np.argmax(y.numpy(), axis=1)
        standing = ~reached if self.targeted else reached  # images already misclassified are not attacked
        return tf.stack(
            [
                self._attack(evaluate, step, x, y, float(eps), standing.copy(), rng)
                for eps in np.reshape(epsilons, -1)
            ]
        )

    # ------------------------------------------------------------------ one eps
    def _attack(
        self,
        evaluate: Callable,
        step: Callable,
        x: tf.Tensor,
        y: tf.Tensor,
        eps: float,
        standing: np.ndarray,
        rng: np.random.Generator,
    ) -> tf.Tensor:
        """AutoAttack's ``perturb``: restarts on the images neither the clean input nor a run has fooled."""
        best = x.numpy()
        best_loss = np.full(len(best), -np.inf, np.float32)
        for _ in range(self.restarts if eps > 0 else 0):  # eps 0: nothing to search
            todo = np.flatnonzero(standing)
            if todo.size == 0:
                break
            start = self._random_start(tf.gather(x, todo), eps, rng)
            run = Run(evaluate, step, tf.gather(x, todo), tf.gather(y, todo), start, eps)
            x_run, fooled, loss = run.search(self.steps)
            higher = ~fooled & (loss > best_loss[todo])
            take = fooled | higher
            best[todo[take]] = x_run[take]
            best_loss[todo[higher]] = loss[higher]
            standing[todo[fooled]] = False
        return tf.convert_to_tensor(best)

    def _random_start(self, x: tf.Tensor, eps: float, rng: np.random.Generator) -> tf.Tensor:
        """AutoAttack's start: uniform noise in [-1, 1] scaled so each image's largest entry is eps."""
        t = 2 * rng.random(tuple(x.shape), dtype=np.float32) - 1
        largest = np.abs(t.reshape(len(t), -1)).max(axis=1).reshape((-1,) + (1,) * (t.ndim - 1))
        return self.project(x + eps * t / largest, x, eps)

    # ------------------------------------------------------------------ compiled functions
    def _functions(
        self, model: Model, x_shape: tf.TensorShape, y_shape: tf.TensorShape
    ) -> tuple[Callable, Callable]:
        info = self.model_info(model)
        key = (tuple(x_shape[1:]), tuple(y_shape[1:]), info, self.loss_type, self.targeted, self.clip)
        images = tf.TensorSpec([None, *x_shape[1:]], tf.float32)
        labels = tf.TensorSpec([None, *y_shape[1:]], tf.float32)
        per_image = tf.TensorSpec([None, *[1] * (len(x_shape) - 1)], tf.float32)
        scalar = tf.TensorSpec([], tf.float32)

        def make(model_ref: Callable[[], object]) -> tuple[Callable, Callable]:
            loss = _dlr if self.loss_type == "dlr" else _cross_entropy
            evaluate = tf.function(
                functools.partial(_evaluate, model_ref, info, loss, self.targeted),
                input_signature=[images, labels],
            )
            step = tf.function(
                functools.partial(_step, evaluate, self.project),
                input_signature=[images, labels, images, images, images, per_image, scalar, scalar],
            )
            return evaluate, step

        return cast("tuple[Callable, Callable]", self._compiled.get(model, key, make))


def _cross_entropy(y: tf.Tensor, log_probs: tf.Tensor) -> tf.Tensor:
    return -tf.reduce_sum(y * log_probs, axis=-1)


def _dlr(y: tf.Tensor, log_probs: tf.Tensor) -> tf.Tensor:
    """Croce & Hein's eq. 5 on log-probabilities, which equal the logits up to one constant per
    image: DLR only reads differences of them, so it is the DLR of the model's logits."""
    ranked = tf.sort(log_probs, axis=-1, direction="DESCENDING")
    return _MARGIN(y, log_probs) / (ranked[:, 0] - ranked[:, 2] + 1e-12)


def _evaluate(
    model_ref: Callable[[], Any], info: ModelInfo, loss: Callable, targeted: bool, x: tf.Tensor, y: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Per image: the loss the attack ascends, its gradient, and whether the attack's goal is unmet."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        log_probs = log_probabilities(model_ref()(x, training=False), info)
        value = loss(y, log_probs)
        value = -value if targeted else value
        total = tf.reduce_sum(value)
    reached = tf.equal(tf.argmax(log_probs, axis=-1), tf.argmax(y, axis=-1))
    standing = ~reached if targeted else reached
    return value, tape.gradient(total, x, unconnected_gradients=tf.UnconnectedGradients.ZERO), standing


def _step(
    evaluate: Callable,
    project: Callable,
    x: tf.Tensor,
    y: tf.Tensor,
    x_adv: tf.Tensor,
    x_previous: tf.Tensor,
    grad: tf.Tensor,
    step_size: tf.Tensor,
    momentum: tf.Tensor,
    eps: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """AutoAttack's L-inf update: a signed step, projected, then mixed with the previous move."""
    z = project(x_adv + step_size * tf.sign(grad), x, eps)
    x_next = project(x_adv + (z - x_adv) * momentum + (x_adv - x_previous) * (1 - momentum), x, eps)
    return (x_next, *evaluate(x_next, y))
