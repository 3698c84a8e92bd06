"""Evaluate my model: a 3-class softmax, a 2-class softmax, a one-unit sigmoid and a logits model.

The code of docs/tasks/evaluate.md (tests/test_docs_examples.py runs it). Tiny sizes: it runs in
well under a minute on 2 CPU cores; scale n_per_class, image_size and epochs up for real numbers.

    python examples/docs_evaluate_my_model.py
"""

from __future__ import annotations

import keras
import numpy as np

import robustmask
from robustmask.attacks import PGD
from robustmask.datasets import synthetic_face_masks
from robustmask.evaluation import robustness_table


def small_model(outputs: int, activation: str | None) -> keras.Model:
    """Any Keras classifier of [0, 1] images works; this one is small so the example is fast."""
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(outputs, activation=activation),
        ]
    )
    if outputs == 1:  # one sigmoid unit: P(class 1); labels are 0 and 1
        loss = "binary_crossentropy"
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=activation is None)
    model.compile(keras.optimizers.Adam(3e-3), loss=loss, metrics=["accuracy"])
    return model


# Three classes (incorrect_mask, with_mask, without_mask) or two: `classes` picks them, labels 0..n-1.
two = ["with_mask", "without_mask"]
cases = {
    "3-class softmax": (3, "softmax", None),
    "2-class softmax": (2, "softmax", two),
    "one-unit sigmoid": (1, "sigmoid", two),
    "2-class logits": (2, None, two),
}
pgd = PGD(steps=5, seed=0)
for name, (outputs, activation, classes) in cases.items():
    x, y = synthetic_face_masks(n_per_class=40, image_size=32, seed=0, classes=classes)
    x_test, y_test = synthetic_face_masks(n_per_class=20, image_size=32, seed=1, classes=classes)
    keras.utils.set_random_seed(0)
    model = small_model(outputs, activation)
    model.fit(x, y, epochs=15, batch_size=16, verbose=0)

    # Keras' own clean accuracy; robustmask's must agree with it (eps 0 is the clean image).
    keras_accuracy = 100 * model.evaluate(x_test, y_test, verbose=0)[1]
    table = robustmask.Evaluator(pgd, [0.0, 2 / 255, 8 / 255]).evaluate(model, (x_test, y_test))
    clean = float(table["Accuracy (%)"].iloc[0])
    assert np.isclose(clean, keras_accuracy, atol=0.01), (name, clean, keras_accuracy)
    print(f"{name}: clean {clean:.1f}% (model.evaluate {keras_accuracy:.1f}%)")
    print(table.to_string(index=False))

    # Many attacks, one worst case per image (FGSM and PGD here; standard_attacks() adds Square).
    worst = robustness_table(
        model, (x_test, y_test), {"FGSM": robustmask.attacks.FGSM(), "PGD": pgd}, [8 / 255]
    )
    print(worst.to_string(index=False))

print("evaluate-my-model example done")
