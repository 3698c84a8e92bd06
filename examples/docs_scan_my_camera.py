"""Scan my camera: detect faces in a frame, classify each, attack the faces and count what changed.

The code of docs/tasks/camera.md (tests/test_docs_examples.py runs it). A real camera frame goes
through OpenCV's face detector (``FaceDetector()``, needs ``pip install 'robustmask[video]'``);
here a synthetic frame with two faces and a detector that knows where they are stand in for it, so
the example runs anywhere in under a minute.

    python examples/docs_scan_my_camera.py
"""

from __future__ import annotations

import keras
import numpy as np

from robustmask.camera import FaceBox, FacePipeline, SceneAttack
from robustmask.datasets import CLASS_NAMES, synthetic_face_masks
from robustmask.zoo import facemask_cnn

# A face-mask classifier of 32 x 32 faces (any Keras model of [0, 1] RGB images works).
x, y = synthetic_face_masks(n_per_class=60, image_size=32, seed=0)
keras.utils.set_random_seed(0)
model = facemask_cnn((32, 32, 3), filters=(16, 32), dense=32)
model.fit(x, y, epochs=15, batch_size=32, verbose=0)

# A 96 x 160 frame (RGB floats in [0, 1], as read_frames gives) with two 64 x 64 faces on grey.
faces, _ = synthetic_face_masks(n_per_class=1, image_size=64, seed=5, classes=["with_mask", "without_mask"])
frame = np.full((96, 160, 3), 0.5, np.float32)
boxes = [FaceBox(8, 16, 64, 64, 1.0), FaceBox(88, 16, 64, 64, 1.0)]
for face, box in zip(faces, boxes):
    frame[box.y : box.y + box.h, box.x : box.x + box.w] = face


def detector(image: np.ndarray) -> list[FaceBox]:
    """Any function of an RGB frame that returns FaceBoxes is a detector; FaceDetector() is OpenCV's."""
    return boxes


pipeline = FacePipeline(model, detector, class_names=list(CLASS_NAMES), margin=0.0)
for d in pipeline(frame):
    print(f"face {d.face} at ({d.x}, {d.y}): {d.class_name} {100 * d.confidence:.0f}%")

# PGD on the face boxes only, at 8/255 of the [0, 1] pixel range; the detector runs again afterwards.
result = SceneAttack("pgd", eps=8 / 255, region="faces", steps=10, seed=0)(pipeline, frame)
comparison = result.comparison
print(
    f"faces {comparison.faces}: changed {comparison.changed}, lost {comparison.lost}, gained {comparison.gained}"
)
print(f"largest pixel change {np.abs(result.frame - frame).max():.4f} (budget {8 / 255:.4f})")
print("scan-my-camera example done")
