"""The bare limits of the benchmarks: what robustmask's tasks cannot be faster than.

A bare limit makes the model passes a task cannot avoid, and the elementwise work around them, in
the fewest compiled calls, with the loss the library ascends (the log-probabilities behind the
softmax); it reads nothing back until the task's result is due, so on an accelerator the passes
queue. It must never be beaten by more than the noise (_verdicts.limit_verdict): a limit the
library beats does work the library does not, and bounds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf


def input_gradient(model: Any, info: Any, x: tf.Tensor, y_onehot: tf.Tensor) -> tf.Tensor:
    """The cross-entropy gradient with respect to the inputs: one forward and one backward pass.

    ``info``: the model's `robustmask.modelinfo.ModelInfo` (`model_info`).
    """
    from robustmask.modelinfo import cross_entropy, log_probabilities

    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = cross_entropy(y_onehot, log_probabilities(model(x, training=False), info))
    return tape.gradient(loss, x)


def model_info(model: Any, sample: Any) -> Any:
    """What the library detects about `model` (softmax or logits, the classes) from a sample batch."""
    from robustmask.modelinfo import inspect_model

    return inspect_model(model, None, sample)


def sweep_limit(
    model: Any, batches: Sequence[tuple[tf.Tensor, tf.Tensor]], epsilons: Sequence[float]
) -> Callable[[], None]:
    """The bare Table-4 sweep: per batch, one compiled call making the input gradient and the copies
    at every eps (step and clip fused by XLA, as the library fuses them), then one compiled forward
    pass per variant, clean first, called one at a time from Python as the Evaluator calls them.

    Nothing is read back before the end of the sweep (the library reads once per batch). An earlier
    limit read every forward pass back and clipped each copy unfused: the library beat it (0.91x
    to 0.96x), so it bounded nothing.
    """
    info = model_info(model, batches[0][0])
    eps = tf.constant(list(epsilons), tf.float32)
    step_and_clip = tf.function(
        lambda x, g, e: tf.clip_by_value(x[None] + tf.reshape(e, [-1, 1, 1, 1, 1]) * g[None], 0.0, 1.0),
        jit_compile=True,
    )

    @tf.function(reduce_retracing=True)
    def copies(x: tf.Tensor, y: tf.Tensor, e: tf.Tensor) -> tf.Tensor:
        return step_and_clip(x, tf.sign(input_gradient(model, info, x, y)), e)

    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def run() -> None:
        outputs = []
        for x, y in batches:
            adversarial = copies(x, y, eps)
            outputs += [forward(x)] + [forward(adversarial[i]) for i in range(len(epsilons))]
        for output in outputs:  # the read-back, once, at the end
            output.numpy()

    return run


def attack_limit(
    model: Any, x: tf.Tensor, y_onehot: tf.Tensor, *, steps: int, eps: float, step: float, random_start: bool
) -> Callable[[], object]:
    """The bare passes of an L-inf attack on one batch: `steps` input gradients in one compiled loop,
    each followed by the signed step and the projection onto the eps ball and [0, 1] (from a uniform
    random start in the ball when `random_start`: PGD); one read-back at the end, since the attack
    returns NumPy. FGSM is one step of size eps.

    An earlier limit called a compiled gradient `steps` times from Python and read each back: the
    library, whose loop runs in one graph, beat it (0.91x to 0.96x).
    """
    info = model_info(model, x)

    @tf.function
    def attack(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        start = x + tf.random.uniform(tf.shape(x), -eps, eps, seed=0) if random_start else x
        x_adv = tf.clip_by_value(start, 0.0, 1.0)
        for _ in tf.range(steps):  # a tf.while_loop, as the library's
            moved = x_adv + step * tf.sign(input_gradient(model, info, x_adv, y))
            x_adv = tf.clip_by_value(tf.clip_by_value(moved, x - eps, x + eps), 0.0, 1.0)
        return x_adv

    return lambda: attack(x, y_onehot).numpy()


def trainer_limit(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    clean_per_step: int,
    gradients: int,
    epsilons: Sequence[float],
    keep_clean: bool,
    soft_labels: bool = False,
) -> Callable[[], None]:
    """One bare epoch of the passes an adversarial trainer must make, in one compiled step.

    Per step: (with soft labels, one forward pass of the clean batch), `gradients` input gradients
    of the clean batch's copies (FGSM: 1; PGD: its steps), one copy per epsilon from the last
    gradient, and one training forward + backward pass with an Adam update on the copies (and the
    clean batch when `keep_clean`). The steps queue: only the epoch's last loss is read back.
    """
    import keras

    net = keras.models.clone_model(model)
    net.set_weights(model.get_weights())
    info = model_info(net, x[:clean_per_step])
    optimizer = keras.optimizers.Adam(1e-3)
    classes = int(model.output_shape[-1])
    eps = tf.constant(list(epsilons), tf.float32)

    @tf.function(reduce_retracing=True)
    def step(xb: tf.Tensor, yb: tf.Tensor) -> tf.Tensor:
        target = tf.one_hot(yb, classes)
        if soft_labels:
            target = tf.stop_gradient(net(xb, training=False))
        x_adv, g = xb, tf.zeros_like(xb)
        for _ in range(gradients):
            g = tf.sign(input_gradient(net, info, x_adv, target))
            x_adv = tf.clip_by_value(x_adv + eps[-1] / gradients * g, 0.0, 1.0)
        copies = [tf.clip_by_value(xb + e * g, 0.0, 1.0) for e in tf.unstack(eps)]
        images = tf.concat(([xb] if keep_clean else []) + copies, axis=0)
        labels = tf.tile(tf.one_hot(yb, classes), [len(copies) + int(keep_clean), 1])
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.categorical_crossentropy(labels, net(images, training=True)))
        grads = tape.gradient(loss, net.trainable_variables)
        optimizer.apply_gradients(zip(grads, net.trainable_variables))
        return loss

    batches = [
        (tf.constant(x[i : i + clean_per_step]), tf.constant(y[i : i + clean_per_step]))
        for i in range(0, len(x), clean_per_step)
    ]

    def epoch() -> None:
        for xb, yb in batches:
            loss = step(xb, yb)
        loss.numpy()  # the read-back, once, when the epoch's work is done

    return epoch
