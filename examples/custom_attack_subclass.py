"""Write your own attack: a short `robustmask.GradientAttack` subclass, used like the built-in ones.

R+FGSM (Tramer et al., "Ensemble Adversarial Training: Attacks and Defenses", ICLR 2018,
https://arxiv.org/abs/1705.07204) takes a random step of size alpha first, then an FGSM step of
size eps - alpha from there. It escapes the sharp curvature at the data point that fools
FGSM-trained models. The base class does the rest: labels, the eps sweep, projection onto the eps
ball, clipping, batching, NumPy in and out, and a graph-safe `generate` for training loops.

Run:  python examples/custom_attack_subclass.py
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import robustmask  # noqa: E402
from robustmask.attacks import FGSM, attack_report  # noqa: E402


class RFGSM(robustmask.GradientAttack):
    """R+FGSM: x' = x + alpha * sign(N(0, I)), then x'' = x' + (eps - alpha) * sign(grad at x')."""

    def __init__(self, rel_alpha: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.rel_alpha = rel_alpha  # alpha as a fraction of eps (the paper: alpha = eps / 2)

    def run(self, model, x, y, eps):
        x_rand = self.project(x + self.rel_alpha * eps * tf.sign(tf.random.normal(tf.shape(x))), x, eps)
        return x_rand + (1.0 - self.rel_alpha) * eps * tf.sign(self.gradient(model, x_rand, y))


def small_model_and_data():
    """A tiny CNN trained for a few seconds on the library's synthetic face-mask images (32 px)."""
    from robustmask.datasets import synthetic_face_masks

    x, y = synthetic_face_masks(n_per_class=60, image_size=32, seed=0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    return model, x, y


def main():
    model, x, y = small_model_and_data()
    epsilons = [0.0, 0.004, 0.01, 0.03]
    for attack in (FGSM(), RFGSM()):
        table = attack_report(attack, model, x, y, eps=epsilons)
        print(f"\n{attack.name} on {len(x)} synthetic face-mask images:")
        print(
            table[["Epsilon", "Success rate (%)", "Linf (max)", "L2 (mean)", "Time (s)"]].to_string(
                index=False
            )
        )
    # The same attack object also works by name once registered, and in the Evaluator.
    robustmask.attacks.register("rfgsm", RFGSM)
    evaluation = robustmask.Evaluator(robustmask.attacks.get("rfgsm"), eps=epsilons).evaluate(model, (x, y))
    print("\nEvaluator with the registered 'rfgsm':")
    print(evaluation.to_string(index=False))
    print("custom attack example done")


if __name__ == "__main__":
    main()
