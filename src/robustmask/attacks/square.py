"""Square Attack, native: AutoAttack's gradient-free member, one compiled query per image and step.

Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient black-box adversarial
attack via random search", ECCV 2020, https://arxiv.org/abs/1912.00049, in the L-inf form that
AutoAttack's standard suite runs (Croce & Hein 2020, https://arxiv.org/abs/2003.01690): start at a
vertex of the eps ball made of vertical stripes, then at every step move one random square of the
image to another vertex (every image of the batch gets the same square and signs, as in AutoAttack's
own code) and keep the move for each image whose margin it lowers. Images already misclassified stop
being queried.

Why a native one beside ART's (`robustmask.attacks.art.blackbox.ARTSquareAttack`): ART asks the
model three times per step (the whole batch's predictions, the current loss and the new one), in
NumPy, through a function that retraces as the batch shrinks. Here each step is one compiled call on
the images still correctly classified, their margins kept between steps; the query counts of the
paper hold, and the suite's Square costs several times less (benchmarks/bench_square.py).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import tensorflow as tf

from robustmask._validation import check_positive_number, check_seed
from robustmask._weakrefs import PerModelCache
from robustmask.attacks.base import Attack
from robustmask.attacks.bim import check_steps
from robustmask.attacks.losses import margin_loss
from robustmask.errors import AttackError
from robustmask.modelinfo import ModelInfo, log_probabilities

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Sequence

    from robustmask._types import Epsilons, Images, Labels, Model

__all__ = ["SquareAttack"]

# AutoAttack's schedule of p, the fraction of the image one square covers: p_init halves at these
# points of the run, given per 10,000 steps and rescaled to the run's length.
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
_MARGIN = margin_loss()  # max_{j != y} log p_j - log p_y per image, uncapped


class SquareAttack(Attack):
    """Square Attack (L-inf): random search over square updates at the vertices of the eps ball.

    Andriushchenko et al., ECCV 2020, https://arxiv.org/abs/1912.00049, as AutoAttack runs it
    (margin loss on the logits, p halved on AutoAttack's schedule). Score-based: it reads the
    model's outputs, never its gradients, so a model that masks its gradients does not stop it.
    ``attack.queries``: the images the model was asked about in the last call, over all its batches
    (one per image and step, one per image and restart for the start, and one per image for the
    labels when ``y`` is None).

    Args:
        steps: the query budget per image and restart (AutoAttack: 5,000).
        p_init: the fraction of the image the first squares cover (AutoAttack: 0.8).
        restarts: runs from a new random start, each on the images the runs before did not fool.
        seed: integer for a repeatable run; ``None`` draws from NumPy's global generator, which
            ``keras.utils.set_random_seed`` seeds.
        **kwargs: the keyword arguments below.

    Keyword Args:
        clip (tuple[float, float] | None): the valid input range, default ``(0, 1)``; ``None`` turns clipping
            off.
        norm (str): ``"inf"``, the only one (L2 Square: ``robustmask.attacks.ARTSquareAttack(norm=2)``).
        from_logits (bool | None): ``None`` (default) detects whether the model ends in softmax or outputs
            logits; True or False says which.
        targeted (bool): ``y`` holds target classes and the attack pushes towards them (default False).
        batch_size (int): images attacked together (default 128).

    Example::

        square = robustmask.attacks.SquareAttack(steps=5000, seed=0)
        x_adv = square(model, x_test, y_test, eps=8 / 255)
        print(square.queries)
    """

    needs_gradients = False
    graph_safe = False  # the loop shrinks the batch as images fall: Python decides, between compiled steps

    def __init__(
        self,
        steps: int = 5000,
        p_init: float = 0.8,
        restarts: int = 1,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if self.norm.name != "inf":
            raise AttackError(
                f"the native SquareAttack is the L-inf attack, got norm={self.norm.name!r}; for L2 use "
                "robustmask.attacks.ARTSquareAttack(norm=2) (registry name 'art-square')"
            )
        self.steps = check_steps(steps, "steps")
        self.p_init = check_positive_number(p_init, "p_init", error=AttackError)
        if self.p_init > 1:
            raise AttackError(f"p_init is a fraction of the image, in (0, 1]; got {p_init!r}")
        self.restarts = check_steps(restarts, "restarts")
        self.seed = check_seed(seed, error=AttackError)
        self.queries = 0
        self._steps_compiled = PerModelCache()

    def __repr__(self) -> str:
        return (
            f"{self.name}(steps={self.steps}, p_init={self.p_init}, restarts={self.restarts}, "
            f"seed={self.seed}, targeted={self.targeted})"
        )

    def __call__(
        self, model: Model, x: Images, y: Labels | None = None, eps: Epsilons | None = None
    ) -> np.ndarray:
        self.queries = 0
        return super().__call__(model, x, y, eps)

    def predict_labels(self, model: Model, x: np.ndarray) -> np.ndarray:
        self.queries += len(x)  # the labels of y=None are queries too
        return super().predict_labels(model, x)

    def generate(
        self, model: Model, x: tf.Tensor, y: tf.Tensor, epsilons: Sequence[float] | tf.Tensor
    ) -> tf.Tensor:
        x, y = tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(y, tf.float32)
        if x.shape.rank != 4 or min(x.shape[1:3]) < 2:
            raise AttackError(
                f"SquareAttack moves squares of pixels: it needs images (batch, height, width, channels) at "
                f"least 2x2, got inputs of shape {tuple(x.shape)}"
            )
        margin_of, step = self._functions(model, x.shape, y.shape)
        seed = self.seed if self.seed is not None else int(np.random.randint(2**31 - 1))
        rng = np.random.default_rng(seed)
        eps_values = np.asarray(epsilons, np.float32).reshape(-1)
        return tf.stack([self._attack(_Search(margin_of, step, float(eps), rng), x, y) for eps in eps_values])

    # ------------------------------------------------------------------ one eps
    def _attack(self, search: _Search, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        """The best images over `restarts` runs: each run attacks the images no run has fooled yet."""
        best, best_margin = x, tf.fill(tf.shape(x)[:1], math.inf)
        for _ in range(self.restarts):
            todo = np.flatnonzero(best_margin.numpy() > 0)
            if todo.size == 0:
                break
            index = tf.constant(todo[:, None])
            x_run, margin = self._run(search, tf.gather_nd(x, index), tf.gather_nd(y, index))
            better = margin < tf.gather_nd(best_margin, index)
            best = tf.tensor_scatter_nd_update(
                best, index, tf.where(_per_image(better), x_run, tf.gather_nd(best, index))
            )
            best_margin = tf.tensor_scatter_nd_update(
                best_margin, index, tf.where(better, margin, tf.gather_nd(best_margin, index))
            )
        return best

    def _run(self, search: _Search, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """One run: the stripes start, then `steps` square moves on the images not yet fooled."""
        eps, rng = search.eps, search.rng
        height, width, channels = (int(d) for d in x.shape[1:])
        stripes = rng.choice(np.array([-eps, eps], np.float32), size=(x.shape[0], 1, width, channels))
        best = self.project(x + stripes, x, eps)
        images = _Active(x, y, best, search.margin_of(best, y))
        self.queries += int(x.shape[0])
        for i in range(self.steps):
            if images.remaining == 0:
                break
            side = self._square_side(i, height, width)
            corner = (rng.integers(0, height - side), rng.integers(0, width - side))
            move = np.zeros((height, width, channels), np.float32)
            move[corner[0] : corner[0] + side, corner[1] : corner[1] + side] = (
                2 * eps * rng.choice([-1.0, 1.0], channels)
            )
            fooled = images.step(search.step, tf.constant(move), eps)
            self.queries += images.remaining
            if fooled:
                images.drop_fooled()
        return images.results()

    def _square_side(self, i: int, height: int, width: int) -> int:
        """The side of step i's square: sqrt(p * pixels), p_init halved on AutoAttack's schedule."""
        progress = int(i / self.steps * 10000)
        p = self.p_init / 2 ** sum(progress > point for point in _HALVINGS)
        return min(max(round(math.sqrt(p * height * width)), 1), min(height, width) - 1)

    # ------------------------------------------------------------------ compiled functions
    def _functions(
        self, model: Model, x_shape: tf.TensorShape, y_shape: tf.TensorShape
    ) -> tuple[Callable, Callable]:
        info = self.model_info(model)
        key = (tuple(x_shape[1:]), tuple(y_shape[1:]), info, self.targeted, self.clip)
        signature = [
            tf.TensorSpec([None, *x_shape[1:]], tf.float32),
            tf.TensorSpec([None, *y_shape[1:]], tf.float32),
        ]

        def make(model_ref: Callable[[], object]) -> tuple[Callable, Callable]:
            margin_of = tf.function(
                functools.partial(_margin, model_ref, info, self.targeted), input_signature=signature
            )
            step = tf.function(
                functools.partial(_square_step, margin_of, self.project),
                input_signature=[
                    *signature,
                    tf.TensorSpec([None, *x_shape[1:]], tf.float32),
                    tf.TensorSpec([None], tf.float32),
                    tf.TensorSpec(x_shape[1:], tf.float32),
                    tf.TensorSpec([], tf.float32),
                ],
            )
            return margin_of, step

        return cast("tuple[Callable, Callable]", self._steps_compiled.get(model, key, make))


@dataclass(frozen=True)
class _Search:
    """What every run at one eps shares: the two compiled functions, the budget, the random draws."""

    margin_of: Callable
    step: Callable
    eps: float
    rng: np.random.Generator


class _Active:
    """A run's images and, compacted, the ones still to fool: each step runs on those alone."""

    def __init__(self, x: tf.Tensor, y: tf.Tensor, best: tf.Tensor, margin: tf.Tensor) -> None:
        self.x, self.y, self.best, self.margin = x, y, best, margin
        self._gather()

    @property
    def remaining(self) -> int:
        """How many images are still to fool (each is queried once per step)."""
        return int(self.index.shape[0])

    def _gather(self) -> None:
        """Keep the images still correctly classified (margin > 0), by position in x."""
        active = np.flatnonzero(self.margin.numpy() > 0)
        self.index = tf.constant(active[:, None], tf.int64)
        self.xa, self.ya = tf.gather_nd(self.x, self.index), tf.gather_nd(self.y, self.index)
        self.best_a, self.margin_a = (
            tf.gather_nd(self.best, self.index),
            tf.gather_nd(self.margin, self.index),
        )

    def step(self, step: Callable, move: tf.Tensor, eps: float) -> bool:
        """One square move on the active images; True if it fooled one."""
        self.best_a, self.margin_a, fooled = step(self.xa, self.ya, self.best_a, self.margin_a, move, eps)
        return bool(fooled.numpy())

    def _scatter(self) -> None:
        self.best = tf.tensor_scatter_nd_update(self.best, self.index, self.best_a)
        self.margin = tf.tensor_scatter_nd_update(self.margin, self.index, self.margin_a)

    def drop_fooled(self) -> None:
        """Write the active images back and keep only those still correctly classified."""
        self._scatter()
        self._gather()

    def results(self) -> tuple[tf.Tensor, tf.Tensor]:
        self._scatter()
        return self.best, self.margin


def _margin(
    model_ref: Callable[[], Any], info: ModelInfo, targeted: bool, x: tf.Tensor, y: tf.Tensor
) -> tf.Tensor:
    """How far each image is from the attack's goal (<= 0: reached): the true class's log-probability
    over the best other's (untargeted), or the best other's over the target's. On log-probabilities
    it is the logit margin AutoAttack uses, since log p_i - log p_j = z_i - z_j."""
    best_other_over_label = _MARGIN(y, log_probabilities(model_ref()(x, training=False), info))
    return best_other_over_label if targeted else -best_other_over_label


def _square_step(
    margin_of: Callable,
    project: Callable,
    x: tf.Tensor,
    y: tf.Tensor,
    best: tf.Tensor,
    margin: tf.Tensor,
    move: tf.Tensor,
    eps: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Move every image's square to the vertex the signs say; keep it where the margin drops."""
    candidate = project(best + move, x, eps)
    candidate_margin = margin_of(candidate, y)
    improved = candidate_margin < margin
    margin = tf.where(improved, candidate_margin, margin)
    return tf.where(_per_image(improved), candidate, best), margin, tf.reduce_any(margin <= 0)


def _per_image(flags: tf.Tensor) -> tf.Tensor:
    return tf.reshape(flags, [-1, 1, 1, 1])
