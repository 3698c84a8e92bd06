"""Threat models: the L-inf, L2 and L1 balls an attack's ``eps`` bounds.

A norm is a concept of its own, as in Foolbox 3: it measures a perturbation, projects one back into
the eps ball, gives the steepest-ascent step of unit size, and draws a random starting point inside
the ball. Attacks take it by name (``norm="inf"``, ``2`` or ``1``) and never special-case it, so
FGSM with ``norm=2`` is the Fast Gradient Method (Goodfellow et al. 2015, L2 form) and PGD with
``norm=2`` is Madry et al.'s L2 PGD.

Every operation works per image: a tensor ``(batch, ...)`` with ``eps`` a scalar or one value per
image, shape ``(batch,)``.

* **L-inf**: projection clips every coordinate to [-eps, eps]; the step is ``sign(g)``.
* **L2**: projection rescales onto the sphere when outside; the step is ``g / ||g||_2``.
* **L1**: projection is the exact Euclidean projection onto the L1 ball (Duchi, Shalev-Shwartz,
  Singer & Chandra, ICML 2008); the step is Tramer & Boneh's sparse L1 descent (SLIDE, "Adversarial
  Training and Robustness for Multiple Perturbations", NeurIPS 2019, arXiv 1904.13000): the sign of
  the gradient on its largest ``100 - l1_percentile`` percent of coordinates, scaled to unit L1 norm.
  A dense sign step would spend the whole L1 budget on the tiny first move of every coordinate.

Example::

    norm = robustmask.attacks.norms.get(2)
    delta = norm.project(x_adv - x, eps=0.5)       # back into the L2 ball of radius 0.5
    norm.size(delta)                               # per-image L2 norms, all <= 0.5
"""

from __future__ import annotations

import abc
import math
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import tensorflow as tf

from robustmask.errors import AttackError

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import TensorEps

__all__ = ["Norm", "LInf", "L2", "L1", "get", "NORMS"]

_TINY = 1e-12


class Norm(abc.ABC):
    """One L-p threat model: measure, project, step and sample inside the eps ball, per image."""

    name: ClassVar[str]  # "inf", "2" or "1": the value of ``norm=`` that names it
    label: ClassVar[str]  # "L-inf", "L2", "L1": how tables and reports name it
    order: ClassVar[float]  # np.inf, 2 or 1: what NumPy and ART call it
    # The projection is elementwise (no reduction whose order XLA could change): attacks may fuse
    # it with XLA and get the same values.
    elementwise: ClassVar[bool] = False

    def __repr__(self) -> str:
        return f"norms.get({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(self.name)

    @abc.abstractmethod
    def size(self, delta: tf.Tensor) -> tf.Tensor:
        """The norm of each image's perturbation: shape (batch,)."""

    @abc.abstractmethod
    def project(self, delta: tf.Tensor, eps: TensorEps) -> tf.Tensor:
        """The closest perturbation inside the eps ball (unchanged when already inside)."""

    def clip_to_ball(self, x_adv: tf.Tensor, x: tf.Tensor, eps: TensorEps) -> tf.Tensor:
        """``x_adv`` moved to the closest point of the eps ball around ``x``."""
        return x + self.project(x_adv - x, eps)

    @abc.abstractmethod
    def step(self, gradient: tf.Tensor) -> tf.Tensor:
        """The steepest-ascent direction of unit norm for each image's gradient (zero for a zero gradient)."""

    @abc.abstractmethod
    def random(self, shape: tf.Tensor, eps: TensorEps, seed: tf.Tensor | None = None) -> tf.Tensor:
        """A perturbation drawn uniformly from the eps ball.

        ``shape``: ``tf.shape(x)``; ``seed``: a shape-[2] integer tensor (stateless, reproducible) or
        None (fresh noise).
        """


def _flat(t: tf.Tensor) -> tf.Tensor:
    return tf.reshape(t, [tf.shape(t)[0], -1])


def _per_image(eps: TensorEps, like: tf.Tensor) -> tf.Tensor:
    """eps as a tensor that broadcasts against ``like`` (batch, ...): a scalar stays a scalar."""
    eps = tf.cast(tf.convert_to_tensor(eps), like.dtype)
    if eps.shape.rank == 0:
        return eps
    return tf.reshape(eps, [-1] + [1] * (like.shape.rank - 1))


def _uniform(shape: tf.Tensor, seed: tf.Tensor | None, low: float = 0.0, high: float = 1.0) -> tf.Tensor:
    if seed is None:
        return tf.random.uniform(shape, low, high)
    return tf.random.stateless_uniform(shape, seed, low, high)


def _normal(shape: tf.Tensor, seed: tf.Tensor | None) -> tf.Tensor:
    if seed is None:
        return tf.random.normal(shape)
    return tf.random.stateless_normal(shape, seed)


def _reseed(seed: tf.Tensor | None, k: int) -> tf.Tensor | None:
    """A different stream of the same seed, for the second draw of one sample."""
    return None if seed is None else seed + tf.constant([0, 7919 * k], seed.dtype)


class LInf(Norm):
    """The L-inf ball: every pixel value moves by at most eps (the paper's threat model)."""

    name, label, order = "inf", "L-inf", np.inf
    elementwise = True

    def size(self, delta: tf.Tensor) -> tf.Tensor:
        return tf.reduce_max(tf.abs(_flat(delta)), axis=1)

    def project(self, delta: tf.Tensor, eps: TensorEps) -> tf.Tensor:
        eps = _per_image(eps, delta)
        return tf.clip_by_value(delta, -eps, eps)

    def clip_to_ball(self, x_adv: tf.Tensor, x: tf.Tensor, eps: TensorEps) -> tf.Tensor:
        # Clip the images themselves: x + clip(delta) can round one ulp outside [x - eps, x + eps].
        eps = _per_image(eps, x)
        return tf.clip_by_value(x_adv, x - eps, x + eps)

    def step(self, gradient: tf.Tensor) -> tf.Tensor:
        return tf.sign(gradient)

    def random(self, shape: tf.Tensor, eps: TensorEps, seed: tf.Tensor | None = None) -> tf.Tensor:
        noise = _uniform(shape, seed, -1.0, 1.0)
        return noise * _per_image(eps, noise)


class L2(Norm):
    """The L2 ball: the Euclidean length of the whole perturbation is at most eps."""

    name, label, order = "2", "L2", 2.0

    def size(self, delta: tf.Tensor) -> tf.Tensor:
        return tf.norm(_flat(delta), axis=1)

    def project(self, delta: tf.Tensor, eps: TensorEps) -> tf.Tensor:
        eps = _per_image(eps, delta)
        length = _per_image(self.size(delta), delta)
        return delta * tf.minimum(1.0, eps / tf.maximum(length, _TINY))

    def step(self, gradient: tf.Tensor) -> tf.Tensor:
        return gradient / tf.maximum(_per_image(self.size(gradient), gradient), _TINY)

    def random(self, shape: tf.Tensor, eps: TensorEps, seed: tf.Tensor | None = None) -> tf.Tensor:
        # Uniform in the ball: a uniform direction (normalised Gaussian) at radius eps * u^(1/d).
        direction = self.step(_normal(shape, seed))
        dims = tf.cast(tf.reduce_prod(shape[1:]), tf.float32)
        radius = _uniform(shape[:1], _reseed(seed, 1)) ** (1.0 / dims)
        return direction * _per_image(radius, direction) * _per_image(eps, direction)


class L1(Norm):
    """The L1 ball: the summed absolute change of all pixel values is at most eps.

    Args:
        l1_percentile: the SLIDE step moves the coordinates whose gradient magnitude is above this
            percentile (Tramer & Boneh used 80 to 99; 99 moves the top 1%).
    """

    name, label, order = "1", "L1", 1.0

    def __init__(self, l1_percentile: float = 99.0) -> None:
        if (
            isinstance(l1_percentile, bool)
            or not isinstance(l1_percentile, (int, float))
            or not 0.0 <= l1_percentile < 100.0
        ):
            raise AttackError(f"l1_percentile must be a number in [0, 100), got {l1_percentile!r}")
        self.l1_percentile = float(l1_percentile)

    def size(self, delta: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(tf.abs(_flat(delta)), axis=1)

    def project(self, delta: tf.Tensor, eps: TensorEps) -> tf.Tensor:
        # Duchi et al. 2008, Fig. 1: soft-threshold |delta| at the theta that makes its sum eps.
        flat = _flat(delta)
        magnitude = tf.abs(flat)
        eps_col = tf.reshape(tf.broadcast_to(tf.cast(eps, flat.dtype), tf.shape(flat)[:1]), [-1, 1])
        ordered = tf.sort(magnitude, axis=1, direction="DESCENDING")
        cumulative = tf.cumsum(ordered, axis=1)
        index = tf.cast(tf.range(1, tf.shape(flat)[1] + 1), flat.dtype)
        positive = ordered - (cumulative - eps_col) / index > 0
        rho = tf.maximum(tf.reduce_sum(tf.cast(positive, tf.int32), axis=1), 1)
        theta = (tf.gather(cumulative, rho - 1, batch_dims=1) - eps_col[:, 0]) / tf.cast(rho, flat.dtype)
        inside = tf.reduce_sum(magnitude, axis=1) <= eps_col[:, 0]
        theta = tf.where(inside, tf.zeros_like(theta), theta)
        projected = tf.sign(flat) * tf.maximum(magnitude - theta[:, None], 0.0)
        return tf.reshape(projected, tf.shape(delta))

    def step(self, gradient: tf.Tensor) -> tf.Tensor:
        flat = _flat(gradient)
        share = 1.0 - self.l1_percentile / 100.0
        keep = tf.maximum(1, tf.cast(tf.math.ceil(share * tf.cast(tf.shape(flat)[1], tf.float32)), tf.int32))
        threshold = tf.math.top_k(tf.abs(flat), k=keep).values[:, -1:]
        chosen = tf.cast((tf.abs(flat) >= threshold) & (flat != 0), flat.dtype)
        direction = tf.sign(flat) * chosen
        direction = direction / tf.maximum(tf.reduce_sum(chosen, axis=1, keepdims=True), 1.0)
        return tf.reshape(direction, tf.shape(gradient))

    def random(self, shape: tf.Tensor, eps: TensorEps, seed: tf.Tensor | None = None) -> tf.Tensor:
        # Uniform in the ball: d + 1 exponential draws, normalised, give a uniform point of the
        # simplex {v >= 0, sum(v) <= 1}; random signs make it uniform in the L1 ball.
        batch, dims = shape[0], tf.reduce_prod(shape[1:])
        exponential = -tf.math.log(_uniform(tf.stack([batch, dims + 1]), seed, 1e-12, 1.0))
        simplex = exponential[:, :-1] / tf.reduce_sum(exponential, axis=1, keepdims=True)
        signs = tf.sign(_uniform(tf.stack([batch, dims]), _reseed(seed, 1), -1.0, 1.0))
        sample = tf.reshape(simplex * signs, shape)
        return sample * _per_image(eps, sample)


NORMS: dict[str, type[Norm]] = {"inf": LInf, "2": L2, "1": L1}
_ALIASES = {
    "inf": "inf",
    "linf": "inf",
    "l-inf": "inf",
    "l_inf": "inf",
    "2": "2",
    "l2": "2",
    "1": "1",
    "l1": "1",
}


def get(norm: str | float | Norm) -> Norm:
    """The `Norm` for ``"inf"`` (or ``np.inf``), ``2`` or ``1`` (also ``"linf"``, ``"l2"``, ``"l1"``)."""
    if isinstance(norm, Norm):
        return norm
    key = _key(norm)
    if key is None:
        raise AttackError(f"norm must be 'inf', 2 or 1 (L-inf, L2, L1), got {norm!r}")
    return NORMS[key]()


def _key(norm: object) -> str | None:
    if isinstance(norm, bool):
        return None
    if isinstance(norm, (int, float, np.integer, np.floating)):
        value = float(norm)
        return "inf" if math.isinf(value) and value > 0 else {2.0: "2", 1.0: "1"}.get(value)
    if isinstance(norm, str):
        return _ALIASES.get(norm.strip().lower())
    return None
