"""Native FGSM / BIM / PGD against ART's FastGradientMethod / BasicIterativeMethod / ProjectedGradientDescent.

Same Keras 3 model, same batch, same budget (eps, step size, steps, one random start for PGD), in one
process. Prints seconds per attack call (median of --repeats; native attacks get one untimed
warm-up call first, which traces their graphs; ART has no graphs to trace), the ratio ART / native,
and how far native is from its bare limit (_limits.attack_limit): the attack's gradient steps in one
compiled loop, each with the signed step and the projection, read back once. Native and its limit
run round-robin (_bench.race, best of max(--repeats, 5)) for "limit (s)" and "native/limit". The
limit is a lower bound: "limit" says "yes" when native takes at least 0.95x of it and "limit wrong"
when native beats it by more (_verdicts.limit_verdict). An earlier limit multiplied the time of one
compiled forward + backward pass, read back each time, by the number of steps; native beat it.
"same values" checks that both sides computed the same images.

ART side: ``art.estimators.classification.TensorFlowV2Classifier`` with
``loss_object=keras.losses.CategoricalCrossentropy()`` (the model ends in softmax) and
``clip_values=(0, 1)``; ART's attacks get ``batch_size=--batch`` so they also see one batch. (ART's
``predict`` ignores its batch_size argument and runs the whole input at once; with one batch that
does not matter.)

    python benchmarks/bench_attacks.py --image-size 64 --batch 64 --repeats 3 --pgd-steps 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build_model(image_size: int, kind: str):
    import keras

    inputs = keras.Input((image_size, image_size, 3))
    if kind == "mobilenetv2":  # the paper's architecture, slimmed (alpha 0.35) and randomly initialised
        base = keras.applications.MobileNetV2(
            input_shape=(image_size, image_size, 3), alpha=0.35, include_top=False, weights=None
        )
        features = keras.layers.GlobalAveragePooling2D()(base(inputs))
    else:
        h = keras.layers.Conv2D(32, 3, strides=2, activation="relu")(inputs)
        h = keras.layers.Conv2D(64, 3, strides=2, activation="relu")(h)
        features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(64, 3, activation="relu")(h))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(32, activation="relu")(features))
    return keras.Model(inputs, outputs)


def timed(fn, repeats: int, warmup: bool = True):
    if warmup:
        fn()  # traces the graphs, fills caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", choices=["mobilenetv2", "cnn"], default="mobilenetv2")
    parser.add_argument("--eps", type=float, default=0.004, help="L-inf budget (the paper's Table 4 range)")
    parser.add_argument("--bim-steps", type=int, default=10)
    parser.add_argument(
        "--pgd-steps", type=int, default=20, help="Madry et al. used 40; 20 keeps ART's run short"
    )
    args = parser.parse_args(argv)

    import keras
    import numpy as np
    import tensorflow as tf
    from art.attacks.evasion import BasicIterativeMethod, FastGradientMethod, ProjectedGradientDescent
    from art.estimators.classification import TensorFlowV2Classifier

    import _bench
    import _limits
    from _verdicts import limit_verdict

    from robustmask.attacks import BIM, FGSM, PGD
    from robustmask.datasets import synthetic_face_masks

    keras.utils.set_random_seed(0)
    model = build_model(args.image_size, args.model)
    x = synthetic_face_masks(n_per_class=-(-args.batch // 3), image_size=args.image_size, seed=0)[0][
        : args.batch
    ]
    labels = np.argmax(model.predict(x, verbose=0), axis=1)  # attack the model's own predictions
    y = np.eye(3, dtype=np.float32)[labels]

    classifier = TensorFlowV2Classifier(
        model,
        nb_classes=3,
        input_shape=x.shape[1:],
        clip_values=(0.0, 1.0),
        loss_object=keras.losses.CategoricalCrossentropy(),
    )
    eps, n = args.eps, args.batch
    bim, pgd = BIM(steps=args.bim_steps, batch_size=n), PGD(steps=args.pgd_steps, batch_size=n, seed=0)
    pairs = [
        ("FGSM", 1, FGSM(batch_size=n), FastGradientMethod(classifier, eps=eps, batch_size=n)),
        (
            f"BIM ({args.bim_steps} steps)",
            args.bim_steps,
            bim,
            BasicIterativeMethod(
                classifier,
                eps=eps,
                eps_step=bim.rel_stepsize * eps,
                max_iter=args.bim_steps,
                batch_size=n,
                verbose=False,
            ),
        ),
        (
            f"PGD ({args.pgd_steps} steps)",
            args.pgd_steps,
            pgd,
            ProjectedGradientDescent(
                classifier,
                eps=eps,
                eps_step=pgd.rel_stepsize * eps,
                max_iter=args.pgd_steps,
                num_random_init=1,
                batch_size=n,
                verbose=False,
            ),
        ),
    ]

    x_t, y_t = tf.constant(x), tf.constant(y)
    one_pass = _limits.attack_limit(model, x_t, y_t, steps=1, eps=eps, step=eps, random_start=False)

    def agreement(a, b):  # same budget, same result: share of input values equal to 1e-6
        return f"{100.0 * np.mean(np.abs(a - b) <= 1e-6):.1f}%"

    classifier.loss_gradient(x[:2], y[:2])  # ART's first call sets things up: keep it out of the timings

    print(
        f"model {args.model} at {args.image_size} px ({model.count_params():,} parameters), batch {n}, "
        f"eps {eps}, {args.repeats} repeats, TF {tf.__version__}, Keras {keras.__version__}, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"one bare FGSM step of the batch: {timed(one_pass, max(args.repeats, 5))[0] * 1000:.1f} ms\n")
    header = (
        f"{'attack':<17}{'native (s)':>11}{'ART (s)':>10}{'ART/native':>11}{'limit (s)':>10}"
        f"{'native/limit':>13}{'limit':>12}{'same values':>13}"
    )
    print(header)
    print("-" * len(header))
    for name, steps, native, art in pairs:
        native_time, x_native = timed(lambda: native(model, x, labels, eps=eps), args.repeats)
        art_time, x_art = timed(lambda: art.generate(x, y), args.repeats, warmup=False)
        bare = _limits.attack_limit(
            model,
            x_t,
            y_t,
            steps=steps,
            eps=eps,
            step=eps if steps == 1 else native.rel_stepsize * eps,
            random_start=getattr(native, "random_start", False),
        )
        # The attack and its limit round-robin, best of each, so that load from other processes
        # lands on both alike (medians of runs timed one after the other swung 0.5x-9x on a busy machine).
        pair = _bench.race(
            {"native": lambda native=native: native(model, x, labels, eps=eps), "limit": bare},
            max(args.repeats, 5),
        )
        limit, ratio = pair["limit"], pair["native"] / pair["limit"]
        same = "(random)" if name.startswith("PGD") else agreement(x_native, x_art)
        print(
            f"{name:<17}{native_time:>11.3f}{art_time:>10.3f}{art_time / native_time:>11.2f}{limit:>10.3f}"
            f"{ratio:>13.2f}{limit_verdict(pair['native'], limit):>12}{same:>13}"
        )


if __name__ == "__main__":
    main()
