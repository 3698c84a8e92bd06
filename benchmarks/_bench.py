"""Shared pieces of benchmarks/run.py: the model, timing, peak memory and the bare limits.

Timing: every compared pair runs round-robin (A, B, A, B, ...) after one untimed warm-up each, and
each side keeps its best time, so a burst of load from another process hurts both alike and the
ratio stays meaningful on a shared machine.

Peak memory: the kernel's high-water mark of this process (VmHWM in /proc/self/status) is reset
before each probe by writing "5" to /proc/self/clear_refs; a probe reports VmHWM after the task
minus VmRSS before it, i.e. the peak increase over the baseline, with the data already in memory.
Where clear_refs cannot be written, a thread samples VmRSS every 2 ms instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf


def build_model(image_size: int, kind: str, x: np.ndarray, y: np.ndarray) -> Any:
    """MobileNetV2 (alpha 0.35, random init) + a small head, or a tiny CNN; one epoch of training.

    The epoch matters: a randomly initialised MobileNetV2 outputs the same probabilities for every
    image, and an attack on it has no gradient to follow.
    """
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((image_size, image_size, 3))
    if kind == "mobilenetv2":
        base = keras.applications.MobileNetV2(
            input_shape=(image_size, image_size, 3), alpha=0.35, include_top=False, weights=None
        )
        features = keras.layers.GlobalAveragePooling2D()(base(inputs))
    else:
        h = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(inputs)
        h = keras.layers.Conv2D(32, 3, strides=2, activation="relu")(h)
        features = keras.layers.GlobalAveragePooling2D()(h)
    hidden = keras.layers.Dense(32, activation="relu")(features)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    # BatchNorm's moving statistics barely move in one epoch (momentum 0.999): set them to the
    # statistics of a batch, or inference sees unnormalised activations and a constant output.
    norms = [layer for layer in _layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    momentum = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(x[:128], training=True)
    for layer, value in zip(norms, momentum):
        layer.momentum = value
    return model


def _layers(model: Any) -> list[Any]:
    found = []
    for layer in model.layers:
        found += _layers(layer) if hasattr(layer, "layers") else [layer]
    return found


def race(tasks: dict[str, Callable[[], object]], repeats: int, cold: Sequence[str] = ()) -> dict[str, float]:
    """Best wall time of each task, the tasks run round-robin `repeats` times after a warm-up.

    Tasks named in `cold` get no warm-up: ART's attacks trace no graphs, and theirs is the long run.
    """
    for name, fn in tasks.items():
        if name not in cold:
            fn()
    best = {name: float("inf") for name in tasks}
    for _ in range(repeats):
        for name, fn in tasks.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


# ---------------------------------------------------------------------------------------- memory
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def _release() -> None:
    """Hand freed memory back to the OS, so that a probe's allocations show in RSS.

    Without it, memory an earlier task freed is reused by the next one without raising RSS.
    """
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def peak_increase_mb(task: Callable[[], object]) -> tuple[float, str]:
    """Peak RSS increase (MB) of this process while `task` runs, and how it was measured."""
    _release()
    baseline = _status_kb("VmRSS")
    if _reset_peak():
        task()
        return (_status_kb("VmHWM") - baseline) / 1024.0, "VmHWM reset by clear_refs, after malloc_trim"
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _status_kb("VmRSS"))
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        task()
    finally:
        done.set()
        sampler.join()
    return (peak[0] - baseline) / 1024.0, "VmRSS sampled every 2 ms"


# ---------------------------------------------------------------------------------------- limits
def input_gradient(model: Any, x: tf.Tensor, y_onehot: tf.Tensor) -> tf.Tensor:
    """The cross-entropy gradient with respect to the inputs: one forward and one backward pass."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = -tf.reduce_sum(y_onehot * tf.math.log(model(x, training=False) + 1e-12), axis=-1)
    return tape.gradient(loss, x)


def sweep_limit(model: Any, batches: Sequence[tuple[tf.Tensor, tf.Tensor]], epsilons: Sequence[float]):
    """The bare Table-4 sweep: per batch one compiled gradient, then one compiled forward per eps.

    The forward passes run one at a time from Python, as the Evaluator runs them; eleven passes in
    one graph are slower on two cores (TensorFlow runs them side by side), which made the old
    "limit" of docs/benchmarks.md slower than the library it was meant to bound.
    """
    sign = tf.function(lambda x, y: tf.sign(input_gradient(model, x, y)), reduce_retracing=True)
    forward = tf.function(
        lambda x, g, e: model(tf.clip_by_value(x + e * g, 0.0, 1.0), training=False), reduce_retracing=True
    )
    eps = [tf.constant(e, tf.float32) for e in (0.0, *epsilons)]

    def run() -> None:
        for x, y in batches:
            g = sign(x, y)
            for e in eps:
                forward(x, g, e).numpy()

    return run


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
    clean batch when `keep_clean`).
    """
    import keras

    net = keras.models.clone_model(model)
    net.set_weights(model.get_weights())
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
            g = tf.sign(input_gradient(net, x_adv, target))
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
            step(xb, yb)

    return epoch
