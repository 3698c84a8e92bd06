"""Eps units and pixel ranges: eps is a distance between [0, 1] images; 8/255 is eight grey levels.

The code of docs/units.md (tests/test_docs_examples.py runs it).

    python examples/docs_eps_units.py
"""

from __future__ import annotations

import keras
import numpy as np

from robustmask.attacks import FGSM, PGD
from robustmask.datasets import synthetic_face_masks
from robustmask.errors import RobustmaskError
from robustmask.zoo import facemask_cnn

x, y = synthetic_face_masks(n_per_class=10, image_size=32, seed=0)  # float32 RGB in [0, 1]
print(f"pixels in [{x.min():.0f}, {x.max():.0f}], dtype {x.dtype}")
model = facemask_cnn((32, 32, 3), filters=(8,), dense=16)  # untrained: only the units matter here

# L-inf: eps is the largest change of any pixel, on the [0, 1] scale. 8/255 = 8 grey levels of 255.
x_adv = FGSM()(model, x, y, eps=8 / 255)
print(f"L-inf eps 8/255 = {8 / 255:.4f}: largest change {np.abs(x_adv - x).max() * 255:.1f} grey levels")

# 8 in the units of 0..255 pixels is refused with one line that names the likely meaning.
try:
    FGSM()(model, x, y, eps=8)
except RobustmaskError as error:
    print(f"eps=8 refused: {error}")

# L2: eps is the Euclidean length of the whole perturbation; it grows with the image, so it is not
# checked against the pixel range. eps 0.5 on a 32 x 32 x 3 image is an average change of about
# 0.5 / sqrt(3072) = 0.009 per value.
x_l2 = PGD(steps=5, norm=2, seed=0)(model, x, y, eps=0.5)
norms = np.sqrt(((x_l2 - x) ** 2).reshape(len(x), -1).sum(1))
print(f"L2 eps 0.5: largest per-image L2 norm {norms.max():.3f}")

# A model trained on [0, 255] pixels or on [-1, 1] inputs: put the mapping inside the model, so the
# attack still sees [0, 1] images and eps keeps its meaning (load_model(path, inputs=...) does it).
pixel_model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(255.0), model])
x_adv_pixels = FGSM()(pixel_model, x, y, eps=8 / 255)
print(
    f"[0, 255] model behind Rescaling(255): largest change {np.abs(x_adv_pixels - x).max() * 255:.1f} grey levels"
)
print("eps-units example done")
