"""The compiled functions of native attacks: one tf.function per model, attack settings and image shape.

Instances of the same class with equal settings share one (`SHARED`, holding each model weakly): a
fresh ``FGSM()`` per call, as scripts and notebooks make, costs no new trace. An instance with a
setting that cannot be hashed (a tensor) keeps its functions in its own cache. The input signature
leaves the batch (and the number of epsilons) open, so the last, smaller batch of a data set does not
trace a function again.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Protocol, cast

import tensorflow as tf

from robustmask._weakrefs import PerModelCache
from robustmask.attacks.norms import Norm

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Model

#: Compiled functions shared by all instances with equal settings, per model (held weakly).
SHARED = PerModelCache()


class CompiledAttack(Protocol):
    """What compiling needs of an attack (a `robustmask.attacks.GradientAttack`)."""

    _compiled: PerModelCache  # the functions of this instance alone
    _mask: tf.Tensor | None

    def _generate(self, model: Model, x: tf.Tensor, y: tf.Tensor, epsilons: tf.Tensor) -> tf.Tensor: ...

    def loss_gradient(self, model: Model, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor: ...


def compiled(
    attack: CompiledAttack,
    model: Model,
    body: Callable[..., tf.Tensor],
    x_shape: tf.TensorShape,
    y_shape: tf.TensorShape,
    more: list[tf.TensorSpec],
) -> Callable[..., tf.Tensor]:
    """`body` (`generate_body` or `loss_gradient_body`) compiled for `attack` on `model`, cached.

    Its signature: batches of x's and y's shapes (any batch size), then the specs in `more`.
    """
    settings = settings_key(attack)
    cache = attack._compiled if settings is None else SHARED
    key = (body.__name__, settings, tuple(x_shape[1:]), tuple(y_shape[1:]))
    signature = [
        tf.TensorSpec([None, *x_shape[1:]], tf.float32),
        tf.TensorSpec([None, *y_shape[1:]], tf.float32),
        *more,
    ]
    function = cache.get(model, key, lambda model_ref: _compile(attack, model_ref, body, signature))
    return cast(Callable[..., tf.Tensor], function)


def _compile(
    attack: CompiledAttack,
    model_ref: Callable[[], object],
    body: Callable[..., tf.Tensor],
    signature: list[tf.TensorSpec],
) -> Callable[..., tf.Tensor]:
    # The function runs a snapshot of the instance: a setting changed later makes a new key,
    # never a silently different function under the old one. The model is held weakly.
    snapshot = copy.copy(attack)
    snapshot._mask = None
    # A partial, not a closure: TensorFlow counts traces per code object, and the closures of one
    # factory share theirs, so each new model or setting would be reported as "retracing".
    return tf.function(functools.partial(body, snapshot, model_ref), input_signature=signature)


def settings_key(attack: object) -> Hashable | None:
    """What the compiled graph depends on: the class and every public setting; None if unhashable.

    A norm is keyed by its own settings (L1's percentile), not by its name only; an eager tensor (a
    trainer's per-update seed) by its value. A setting that cannot be hashed (a symbolic tensor)
    keeps the compiled function to this instance.
    """
    items: list[tuple[str, type, object]] = []
    for name, value in sorted(vars(attack).items()):
        if name.startswith("_") or name == "batch_size":  # batch_size only splits NumPy input
            continue
        if isinstance(value, Norm):
            value = (type(value), tuple(sorted(vars(value).items())))
        elif isinstance(value, tf.__internal__.EagerTensor):  # keyed by its value: a later value is a new key
            value = (value.dtype.name, tuple(value.shape), value.numpy().tobytes())
        try:
            hash(value)
        except TypeError:
            return None
        items.append((name, type(value), value))
    return (type(attack), tuple(items))


def generate_body(
    attack: CompiledAttack, model_ref: Callable[[], object], x: tf.Tensor, y: tf.Tensor, epsilons: tf.Tensor
) -> tf.Tensor:
    """The body of a compiled `generate`: ``attack`` on the model ``model_ref`` refers to."""
    return attack._generate(cast("Model", model_ref()), x, y, epsilons)


def loss_gradient_body(
    attack: CompiledAttack, model_ref: Callable[[], object], x: tf.Tensor, y: tf.Tensor
) -> tf.Tensor:
    """The body of a compiled `loss_gradient`."""
    return attack.loss_gradient(cast("Model", model_ref()), x, y)
