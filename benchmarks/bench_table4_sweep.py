"""Time a Table-4 sweep (FGSM at the paper's ten epsilons) three ways on the same model and data.

* naive: Algorithm 1 run per epsilon (compiled too): one gradient per eps, then predict;
* library: robustmask.Evaluator, one compiled gradient per batch shared by all epsilons;
* limit: the bare passes of the sweep, _limits.sweep_limit (what the sweep cannot beat): per batch one
  compiled call for the gradient and every copy, then one forward pass per row, read back once.

The three run round-robin after a warm-up (_bench.race). Prints seconds, the ratio naive / library
(target: >= 3x, since ten gradients become one) and library / limit, which a true lower bound keeps
at 0.95x or more ("limit wrong" below: _verdicts.limit_verdict).
benchmarks/run.py measures this sweep with every other target of the library, into docs/benchmarks.md.

    python benchmarks/bench_table4_sweep.py --image-size 96 --images 256
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import _bench
import _limits
import robustmask
from _verdicts import limit_verdict
from robustmask.attacks import FGSM
from robustmask.datasets import synthetic_face_masks
from robustmask.paper import EPSILONS as PAPER_EPSILONS
from robustmask.zoo import facemask_mobilenetv2, recalibrate_batchnorm


_NAIVE_STEPS: dict = {}  # one compiled step per model: tracing is a one-off cost, not part of a sweep


def naive_sweep(model, x, y, batch_size):
    """One compiled FGSM gradient per epsilon, as a per-eps loop over Algorithm 1 does.

    The step is compiled once per model and reused by every call (it used to be made afresh in each
    call, which put its tracing into every timed naive sweep).
    """
    if id(model) not in _NAIVE_STEPS:

        @tf.function(reduce_retracing=True)
        def step(xb, yb, eps):
            with tf.GradientTape() as tape:
                tape.watch(xb)
                value = tf.reduce_sum(-tf.math.log(tf.reduce_sum(model(xb, training=False) * yb, 1) + 1e-12))
            adversarial = tf.clip_by_value(xb + eps * tf.sign(tape.gradient(value, xb)), 0.0, 1.0)
            return model(adversarial, training=False)

        _NAIVE_STEPS[id(model)] = step
    step = _NAIVE_STEPS[id(model)]
    rows = []
    for eps in (0.0, *PAPER_EPSILONS):
        correct = 0
        for start in range(0, len(x), batch_size):
            xb, yb = tf.constant(x[start : start + batch_size]), tf.one_hot(y[start : start + batch_size], 3)
            p = step(xb, yb, tf.constant(eps)) if eps > 0 else model(xb, training=False)
            correct += int(tf.reduce_sum(tf.cast(tf.argmax(p, 1) == tf.argmax(yb, 1), tf.int32)))
        rows.append((eps, 100 * correct / len(x)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    x, y = synthetic_face_masks(n_per_class=-(-args.images // 3), image_size=args.image_size, seed=0)
    x, y = x[: args.images], y[: args.images]
    model = facemask_mobilenetv2(
        input_shape=(args.image_size, args.image_size, 3), weights=None, compile=False
    )
    recalibrate_batchnorm(model, x[:128])
    evaluator = robustmask.Evaluator(FGSM(), PAPER_EPSILONS, batch_size=args.batch)

    batches = [
        (tf.constant(x[i : i + args.batch]), tf.one_hot(y[i : i + args.batch], 3))
        for i in range(0, len(x), args.batch)
    ]
    # Round-robin after one untimed call each (tracing is a one-off cost, not part of a sweep).
    times = _bench.race(
        {
            "naive": lambda: naive_sweep(model, x, y, args.batch),
            "library": lambda: evaluator.evaluate(model, (x, y)),
            "limit": _limits.sweep_limit(model, batches, PAPER_EPSILONS),
        },
        args.repeats,
    )
    naive, library, limit = times["naive"], times["library"], times["limit"]

    # The two sweeps must agree, or the timing compares different work.
    table = evaluator.evaluate(model, (x, y))
    reference = np.array([row[1] for row in naive_sweep(model, x, y, args.batch)])
    agree = np.max(np.abs(table["Accuracy (%)"].to_numpy() - reference))

    print(
        f"Table-4 sweep: {args.images} images at {args.image_size} px, batch {args.batch}, "
        f"10 rows (clean + 9 eps), MobileNetV2 + paper head, best of {args.repeats}"
    )
    print(f"{'way':<10}{'seconds':>10}{'vs library':>12}")
    for name, seconds in (("naive", naive), ("library", library), ("limit", limit)):
        print(f"{name:<10}{seconds:>10.2f}{seconds / library:>11.2f}x")
    print(
        f"speed-up naive/library: {naive / library:.2f}x (target >= 3x); "
        f"library/limit: {library / limit:.2f}x (limit: {limit_verdict(library, limit)})"
    )
    print(f"max accuracy difference between the two sweeps: {agree:.3f} points")


if __name__ == "__main__":
    main()
