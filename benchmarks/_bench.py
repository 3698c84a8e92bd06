"""Shared pieces of benchmarks/run.py: the model, timing, peak memory and trace counts (limits: _limits).

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


# ---------------------------------------------------------------------------------------- tracing
def shared_traces(model: Any) -> dict:
    """Trace counts of every compiled function robustmask's shared caches hold for `model`.

    Both caches: the attacks' (``generate`` and gradients, one per setting and image shape) and the
    Evaluator's scorers. Keyed ``("attack" | "score", cache key)``; empty when the model has none.
    """
    from robustmask.attacks.gradient_attack import _SHARED
    from robustmask.evaluation._scoring import _SCORERS

    attacks: dict[Any, Any] = _SHARED._entries.get(id(model), {})
    scorers: dict[Any, Any] = _SCORERS._entries.get(id(model), {})
    counts = {("attack", key): f.experimental_get_tracing_count() for key, f in attacks.items()}
    for key, scorer in scorers.items():
        counts[("score", key)] = scorer.score.experimental_get_tracing_count()
    return counts
