"""Native Square Attack against ART's, and against its bare limit, on the shipped robust MobileNetV2.

The model AutoAttack's Square costs most on: `robustmask.zoo.robust_mobilenetv2()` (alpha 1.0, 96 px)
on unseen synthetic faces. One process, the same batch, the same budget and query count per image:

* **at the suite's eps** (8/255 by default): native `SquareAttack` and ART's
  (`robustmask.attacks.ARTSquareAttack`, the suite's Square before the native one), each once, with
  its robust accuracy (random searches with different draws: they should agree within a few images)
  and the model queries each made;
* **where nothing falls** (eps 1e-4: every image takes every step, as most do at 0.009 on a robust
  model): native against its bare limit, ``steps + 1`` compiled forward passes of the whole batch, each
  read back (the least any implementation that asks the model once per step can take), raced
  round-robin (_bench.race). The limit is a lower bound: ``limit wrong`` if native beats it by more
  than 5% (_verdicts.limit_verdict).

Targets (issue 17's suite cost): native at least 2x faster than ART at the suite's eps, and within
1.25x of its limit.

    python benchmarks/bench_square.py                      # about 10 minutes on 2 cores
    python benchmarks/bench_square.py --steps 50 --batch 16 --repeats 1   # a smoke run
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SPEEDUP_TARGET = 2.0  # ART's time / native's, at the suite's eps
LIMIT_TARGET = 1.25  # native / its bare limit, where nothing falls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="faces attacked together")
    parser.add_argument(
        "--steps", type=int, default=300, help="Square's queries per image (the suite: 5,000)"
    )
    parser.add_argument("--eps", type=float, default=8 / 255)
    parser.add_argument("--repeats", type=int, default=3, help="round-robin rounds of native and its limit")
    args = parser.parse_args(argv)

    import keras
    import numpy as np
    import tensorflow as tf

    import _bench
    from _verdicts import limit_verdict, time_verdict

    from robustmask.attacks import ARTSquareAttack, SquareAttack
    from robustmask.datasets import synthetic_face_masks
    from robustmask.zoo import robust_mobilenetv2

    model = robust_mobilenetv2()
    x, labels = synthetic_face_masks(n_per_class=-(-args.batch // 3), image_size=96, seed=1)
    x, labels = x[: args.batch], labels[: args.batch]

    def accuracy(images: np.ndarray) -> float:
        return float(np.mean(np.argmax(model.predict(images, verbose=0), 1) == labels))

    native = SquareAttack(steps=args.steps, seed=0, batch_size=args.batch)
    art = ARTSquareAttack(steps=args.steps, batch_size=args.batch)
    native(model, x[:2], labels[:2], eps=args.eps)  # traces native's two functions
    art(model, x[:2], labels[:2], eps=args.eps)  # builds ART's estimator
    keras.utils.set_random_seed(0)
    runs = {}
    for name, attack in (("native", native), ("ART", art)):
        start = time.perf_counter()
        adversarial = attack(model, x, labels, eps=args.eps)
        runs[name] = (time.perf_counter() - start, accuracy(adversarial), attack.queries)

    forward = tf.function(lambda images: model(images, training=False))
    x_t = tf.constant(x)
    forward(x_t)

    def limit() -> None:
        for _ in range(args.steps + 1):
            forward(x_t).numpy()

    best = _bench.race(
        {"native": lambda: native(model, x, labels, eps=1e-4), "limit": limit}, max(args.repeats, 1)
    )

    print(
        f"robust_mobilenetv2 (96 px, {model.count_params():,} parameters), {args.batch} unseen faces "
        f"(clean accuracy {accuracy(x):.1%}), {args.steps} queries per image, TF {tf.__version__}, "
        f"Keras {keras.__version__}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()})\n"
    )
    (native_s, native_acc, native_q), (art_s, art_acc, art_q) = runs["native"], runs["ART"]
    print(f"| at eps {args.eps:.4g} | seconds | robust accuracy | model queries |")
    print("|---|---:|---:|---:|")
    print(f"| native SquareAttack | {native_s:.1f} | {native_acc:.1%} | {native_q:,} |")
    print(f"| ARTSquareAttack | {art_s:.1f} | {art_acc:.1%} | {art_q:,} |")
    speedup = art_s / native_s
    print(
        f"\nART / native: {speedup:.2f}x (target >= {SPEEDUP_TARGET}x: "
        f"{time_verdict(native_s, art_s, 'faster', SPEEDUP_TARGET)})"
    )
    ratio = best["native"] / best["limit"]
    print(
        f"nothing falls (eps 1e-4), best of {max(args.repeats, 1)}: native {best['native']:.2f} s, limit "
        f"({args.steps + 1} forward passes) {best['limit']:.2f} s, native / limit {ratio:.2f} "
        f"(target <= {LIMIT_TARGET}: {limit_verdict(best['native'], best['limit'], LIMIT_TARGET)})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
