"""Detect, crop, classify and draw: a face-mask classifier on whole photos and video frames."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from robustmask.camera.detection import Detector, FaceBox, FaceDetector, import_cv2, to_uint8
from robustmask.errors import ModelError, RobustmaskError

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import tensorflow as tf

    from robustmask.modelinfo import ModelInfo

__all__ = ["Detection", "FacePipeline", "crop_box", "differentiable_crops", "draw_detections"]

_COLOURS = {  # RGB
    "with_mask": (40, 200, 60),
    "without_mask": (230, 40, 40),
    "incorrect_mask": (250, 160, 20),
}


@dataclass(frozen=True)
class Detection:
    """One classified face of one frame: its box (pixels), the detector's score and the class.

    ``label`` is the class index, ``class_name`` its name and ``confidence`` its probability.
    """

    frame: int
    face: int
    x: int
    y: int
    w: int
    h: int
    score: float
    label: int
    class_name: str
    confidence: float

    @property
    def box(self) -> FaceBox:
        return FaceBox(self.x, self.y, self.w, self.h, self.score)

    def as_row(self) -> dict[str, Any]:
        """The fields as a dict (one CSV row)."""
        return asdict(self)


def crop_box(box: FaceBox, frame_shape: Sequence[int], margin: float = 0.15) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the crop around `box`: `margin` of its width (height) added on the left
    and right (top and bottom), clipped to the frame of shape ``(H, W, ...)``.

    >>> crop_box(FaceBox(100, 50, 40, 60), (240, 320, 3), margin=0.5)
    (80, 20, 160, 140)
    """
    height, width = int(frame_shape[0]), int(frame_shape[1])
    dx, dy = round(margin * box.w), round(margin * box.h)
    x0, y0 = max(0, box.x - dx), max(0, box.y - dy)
    x1, y1 = min(width, box.x + box.w + dx), min(height, box.y + box.h + dy)
    if x1 <= x0 or y1 <= y0:
        raise RobustmaskError(f"face box {box} lies outside the {width}x{height} frame")
    return x0, y0, x1, y1


def differentiable_crops(
    frame: tf.Tensor, crops: Sequence[tuple[int, int, int, int]], size: tuple[int, int]
) -> tf.Tensor:
    """The `crops` (``(x0, y0, x1, y1)``) of an (H, W, 3) frame tensor, each bilinearly resized to `size`.

    Slicing and ``tf.image.resize`` are both differentiable, so a gradient of anything computed on
    the crops reaches the frame's pixels (those inside the crops only). The crops equal
    ``tf.image.resize(frame[y0:y1, x0:x1], size)`` exactly, the resize that classifies clean frames:
    ``tf.image.crop_and_resize`` would sample the crop on another (align-corners) grid.
    """
    import tensorflow as tf

    return tf.stack([tf.image.resize(frame[y0:y1, x0:x1], size) for x0, y0, x1, y1 in crops])


class FacePipeline:
    """Detect faces, crop each (with a margin), resize it to the model's input size and classify it.

    Args:
        model: a Keras classifier taking RGB float images in [0, 1] at its input size and
            returning class probabilities.
        detector: a `FaceDetector` (default: ``FaceDetector()``, the res10 SSD) or any function of
            an RGB frame returning `FaceBox` es.
        class_names: names of the model's outputs (default: ``class_0``, ``class_1``, ...).
        margin: fraction of a face box's width (height) added each side before cropping.

    >>> pipeline = FacePipeline(model, class_names=["with_mask", "without_mask"])
    >>> detections = pipeline(frame)         # [Detection(frame=0, face=0, x=..., class_name=...), ...]
    >>> picture = pipeline.draw(frame, detections)   # uint8 RGB with boxes and "with_mask 97%"
    """

    def __init__(
        self,
        model: keras.Model,
        detector: Detector | None = None,
        class_names: Sequence[str] | None = None,
        margin: float = 0.15,
    ) -> None:
        self.model = model
        self._info: ModelInfo | None = None
        self.input_size = model_input_size(model)
        self.detector: Detector = detector if detector is not None else FaceDetector()
        outputs = int(model.output_shape[-1])
        self.class_names = list(class_names) if class_names else [f"class_{i}" for i in range(outputs)]
        if len(self.class_names) != outputs:
            raise ModelError(
                f"{len(self.class_names)} class names ({', '.join(self.class_names)}) for a model with "
                f"{outputs} outputs; give one name per output"
            )
        if not 0.0 <= margin <= 2.0:
            raise RobustmaskError(f"margin is a fraction of the box (0 to 2), got {margin!r}")
        self.margin = float(margin)

    def __call__(self, frame: np.ndarray, frame_index: int = 0) -> list[Detection]:
        """Detect and classify the faces of an RGB frame (float in [0, 1] or uint8)."""
        image = as_float_frame(frame)
        return self.classify(image, list(self.detector(image)), frame_index)

    def crops_of(
        self, boxes: Sequence[FaceBox], frame_shape: Sequence[int]
    ) -> list[tuple[int, int, int, int]]:
        """The crop ``(x0, y0, x1, y1)`` of each box (with the margin)."""
        return [crop_box(box, frame_shape, self.margin) for box in boxes]

    def probabilities(self, frame: np.ndarray, boxes: Sequence[FaceBox]) -> np.ndarray:
        """The model's output on each box's crop: (n_boxes, n_classes)."""
        import tensorflow as tf

        if not boxes:
            return np.zeros((0, len(self.class_names)), np.float32)
        crops = differentiable_crops(
            tf.constant(as_float_frame(frame)), self.crops_of(boxes, frame.shape), self.input_size
        )
        from robustmask.modelinfo import inspect_model, log_probabilities

        outputs = self.model(crops, training=False)
        if self._info is None:  # softmax, logits or one sigmoid unit: class probabilities either way
            self._info = inspect_model(self.model, None, crops)
        return np.exp(np.asarray(log_probabilities(outputs, self._info), np.float32))

    def classify(self, frame: np.ndarray, boxes: Sequence[FaceBox], frame_index: int = 0) -> list[Detection]:
        """Classify the given boxes of a frame (no detection)."""
        probs = self.probabilities(frame, boxes)
        detections = []
        for i, (box, label) in enumerate(zip(boxes, probs.argmax(axis=1).tolist())):
            detections.append(
                Detection(
                    frame=frame_index,
                    face=i,
                    x=box.x,
                    y=box.y,
                    w=box.w,
                    h=box.h,
                    score=round(float(box.score), 6),
                    label=label,
                    class_name=self.class_names[label],
                    confidence=float(probs[i, label]),
                )
            )
        return detections

    def draw(self, frame: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
        """The frame (uint8 RGB copy) with each detection's box and ``"class 97%"`` label."""
        return draw_detections(frame, detections)


def draw_detections(frame: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
    """An uint8 RGB copy of `frame` with a box and a ``"class_name 97%"`` label per detection."""
    cv2 = import_cv2()
    image = np.ascontiguousarray(to_uint8(np.asarray(frame)).copy())
    thickness = max(1, round(min(image.shape[:2]) / 240))
    for d in detections:
        colour = class_colour(d.class_name)
        cv2.rectangle(image, (d.x, d.y), (d.x + d.w - 1, d.y + d.h - 1), colour, thickness)
        text = f"{d.class_name} {d.confidence:.0%}"
        scale = 0.4 * thickness
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = d.y - th - base - 2 if d.y - th - base - 2 >= 0 else d.y + d.h
        cv2.rectangle(image, (d.x, top), (d.x + tw + 2, top + th + base + 2), colour, -1)
        cv2.putText(image, text, (d.x + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1)
    return image


def class_colour(name: str) -> tuple[int, int, int]:
    """The box colour of a class: green with mask, red without, orange incorrect, else fixed per name."""
    if name in _COLOURS:
        return _COLOURS[name]
    hue = zlib.crc32(name.encode()) % 256
    return (hue, 255 - hue, 160)


def model_input_size(model: keras.Model) -> tuple[int, int]:
    """(height, width) of the model's RGB input; a one-line ModelError when it declares none."""
    shape = getattr(model, "input_shape", None)
    if not shape or len(shape) != 4 or shape[1] is None or shape[2] is None or shape[3] != 3:
        raise ModelError(f"the classifier must take RGB images (batch, height, width, 3); it takes {shape}")
    return int(shape[1]), int(shape[2])


def as_float_frame(frame: np.ndarray) -> np.ndarray:
    """An RGB frame as float32 in [0, 1] (uint8 is divided by 255)."""
    array = np.asarray(frame)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise RobustmaskError(f"a frame is an RGB image (height, width, 3), got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    image = array.astype(np.float32, copy=False)
    if image.size and (float(image.min()) < 0.0 or float(image.max()) > 1.0):
        raise RobustmaskError(
            f"a float frame holds values in [0, 1], got [{image.min():g}, {image.max():g}]: divide by 255"
        )
    return image
