"""JSMA and BIM against the paper's face-mask classifier: two attacks Sheikh & Zafar (2023) name as future work.

* BIM (Kurakin et al. 2016, https://arxiv.org/abs/1607.02533): robustmask's native, L-inf bounded
  iterative FGSM; it spreads a tiny change over every pixel.
* JSMA (Papernot et al. 2016, https://arxiv.org/abs/1511.07528): ART's saliency-map attack through the
  robustmask adapter; it changes a few pixels a lot (small L0, large L-inf) and takes no eps.

The model is the paper's architecture, `robustmask.zoo.facemask_mobilenetv2`, on robustmask's synthetic
face-mask images. By default the run is quick (under a minute on 2 CPU cores): 32-px images, a frozen,
randomly initialised MobileNetV2 base with recalibrated BatchNorm statistics and a briefly trained head.
That model is weak, so the attacks are run on images it classifies correctly (the success rate is the
share of those whose prediction the attack changes). For a real model pass ``--fine-tune`` and more
data and epochs, e.g. ``--size 64 --per-class 500 --epochs 20 --fine-tune``, or use ImageNet weights.

Run:  python examples/jsma_and_bim_facemask.py [--size 32] [--per-class 120] [--epochs 8] [--fine-tune]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="image side in pixels (32 to 224)")
    parser.add_argument("--per-class", type=int, default=120, help="synthetic images per class")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs")
    parser.add_argument("--fine-tune", action="store_true", help="train the whole network, not only the head")
    parser.add_argument("--attack-images", type=int, default=8, help="correctly classified images to attack")
    parser.add_argument(
        "--eps", type=float, nargs="+", default=[0.002, 0.005, 0.01], help="BIM budgets (L-inf)"
    )
    parser.add_argument("--gamma", type=float, default=0.05, help="JSMA: largest fraction of values changed")
    args = parser.parse_args()
    started = time.perf_counter()

    import keras
    import numpy as np
    import pandas as pd

    import robustmask
    from robustmask.attacks import attack_report
    from robustmask.datasets import CLASS_NAMES, synthetic_face_masks
    from robustmask.zoo import facemask_mobilenetv2, recalibrate_batchnorm

    # ---- data: synthetic faces in the paper's three classes, [0, 1] pixels, 90% / 10% split
    x, y = synthetic_face_masks(n_per_class=args.per_class, image_size=args.size, seed=0)
    split = int(0.9 * len(x))
    x_train, y_train, x_test, y_test = x[:split], y[:split], x[split:], y[split:]

    # ---- model: the paper's MobileNetV2 + dense head, random init (nothing to download)
    keras.utils.set_random_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a frozen random base warns: its BatchNorm is recalibrated below
        model = facemask_mobilenetv2(
            (args.size, args.size, 3),
            weights=None,
            freeze_base=not args.fine_tune,
            dropout=(0.2, 0.2, 0.2),
            epochs=args.epochs,
        )
    recalibrate_batchnorm(model, x_train[:256], batch_size=256)
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, verbose=0)
    if args.fine_tune:
        recalibrate_batchnorm(model, x_train[:256], batch_size=256)

    def predict(images):
        return np.argmax(model.predict(images, verbose=0), axis=1)

    train_acc = np.mean(predict(x_train) == y_train)
    test_acc = np.mean(predict(x_test) == y_test)
    print(
        f"face-mask model ({'fine-tuned' if args.fine_tune else 'frozen random base, trained head'}), "
        f"{args.size}x{args.size} px: train accuracy {train_acc:.2f}, test accuracy {test_acc:.2f} "
        f"({time.perf_counter() - started:.0f} s)"
    )

    # ---- images to attack: correctly classified ones, test images first
    pool_x, pool_y = np.concatenate([x_test, x_train]), np.concatenate([y_test, y_train])
    right = np.flatnonzero(predict(pool_x) == pool_y)[: args.attack_images]
    if len(right) == 0:
        raise SystemExit("the model classifies no image correctly: train longer (--epochs)")
    xa, ya = pool_x[right], pool_y[right]

    # ---- BIM: native, eps-bounded, one row per eps
    bim = robustmask.attacks.BIM(steps=10)
    bim_table = attack_report(bim, model, xa, ya, eps=args.eps)
    # ---- JSMA: ART through robustmask's adapter; chooses its own perturbation size, so no eps
    jsma = robustmask.attacks.JSMA(theta=1.0, gamma=args.gamma)
    jsma_table = attack_report(jsma, model, xa, ya)

    columns = ["Epsilon", "Success rate (%)", "L0 (mean)", "L2 (mean)", "Linf (mean)", "Time (s)"]
    with pd.option_context("display.width", 120, "display.precision", 4):
        print(f"\nBIM (10 steps) on {len(xa)} correctly classified images:")
        print(bim_table[columns].to_string(index=False))
        print(
            f"\nJSMA (theta=1, gamma={args.gamma}) on the same images; L0 counts changed values "
            f"out of {xa[0].size}:"
        )
        print(jsma_table[columns[1:]].to_string(index=False))

    # ---- what happened to a few images
    x_bim = bim(model, xa, ya, eps=max(args.eps))
    x_jsma = jsma(model, xa, ya)
    p_bim, p_jsma = predict(x_bim), predict(x_jsma)
    print("\nimage  true            BIM (eps=%g)     JSMA" % max(args.eps))
    for i in range(min(4, len(xa))):
        print(f"{i:5d}  {CLASS_NAMES[ya[i]]:15s} {CLASS_NAMES[p_bim[i]]:16s} {CLASS_NAMES[p_jsma[i]]}")
    bim_rate = bim_table["Success rate (%)"].iloc[-1]
    jsma_rate, jsma_l0 = jsma_table["Success rate (%)"].iloc[0], jsma_table["L0 (mean)"].iloc[0]
    print(
        f"\nsuccess: BIM {bim_rate:.0f}% at eps={max(args.eps):g} (every value may move by eps); "
        f"JSMA {jsma_rate:.0f}% changing {jsma_l0:.0f} of {xa[0].size} values on average"
    )
    print(f"JSMA and BIM example done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
