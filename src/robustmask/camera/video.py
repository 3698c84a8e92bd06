"""Frames in and out (photos, videos, CSV) and fixed perturbations pasted onto every detected face."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robustmask.camera.detection import FaceBox, import_cv2, to_uint8
from robustmask.camera.pipeline import as_float_frame
from robustmask.errors import DataError, RobustmaskError
from robustmask.evaluation.printable import load_patch, load_universal_perturbation

#: ``--universal FILE.npy`` and ``--patch FILE.png``: the formats `robustmask universal` writes have
#: one reader each, in evaluation/printable.py (a patch comes back at its learnt size).
load_universal = load_universal_perturbation

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_FOURCC",
    "VIDEO_SUFFIX",
    "FrameSource",
    "VideoWriter",
    "apply_patch",
    "apply_universal",
    "load_patch",
    "load_universal",
    "open_source",
    "read_frames",
    "write_detections_csv",
    "write_image",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: The codec and container robustmask writes: MPEG-4 part 2 in .mp4, which opencv-python-headless
#: writes and reads back without system codecs.
VIDEO_FOURCC, VIDEO_SUFFIX = "mp4v", ".mp4"


@dataclass(frozen=True)
class FrameSource:
    """A photo or a video: its path, kind, number of frames (OpenCV's count for a video), frames per
    second (0 for a photo) and frame size in pixels."""

    path: Path
    kind: Literal["image", "video"]
    frames: int
    fps: float
    width: int
    height: int


def open_source(path: str | os.PathLike) -> FrameSource:
    """Check that `path` is a photo or a video OpenCV can read, and describe it (one-line DataError if not)."""
    cv2 = import_cv2()
    source = Path(path)
    if not source.is_file():
        raise DataError(f"{source}: no such image or video file")
    if source.suffix.lower() in IMAGE_SUFFIXES:
        image = next(read_frames(source))
        return FrameSource(source, "image", 1, 0.0, image.shape[1], image.shape[0])
    capture = cv2.VideoCapture(str(source))
    try:
        ok, frame = capture.read() if capture.isOpened() else (False, None)
        if not ok or frame is None:
            raise DataError(
                f"{source}: OpenCV cannot read a frame of it; give a photo ({', '.join(IMAGE_SUFFIXES)}) "
                "or a video OpenCV decodes (.mp4, .avi)"
            )
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
        return FrameSource(source, "video", max(count, 1), fps, frame.shape[1], frame.shape[0])
    finally:
        capture.release()


def read_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """The frames of a photo (one) or a video, each RGB float32 (H, W, 3) in [0, 1].

    >>> for frame in read_frames("street.mp4"): ...
    """
    cv2 = import_cv2()
    source = Path(path)
    if source.suffix.lower() in IMAGE_SUFFIXES:
        bgr = cv2.imread(str(source), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DataError(f"{source}: OpenCV cannot read this image; is it a valid image file?")
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        return
    capture = cv2.VideoCapture(str(source))
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    finally:
        capture.release()


class VideoWriter:
    """Write RGB frames (float in [0, 1] or uint8) to an .mp4 (``mp4v``) with OpenCV.

    >>> with VideoWriter("out.mp4", fps=25, size=(640, 480)) as video:
    ...     video.write(frame)
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int]) -> None:
        cv2 = import_cv2()
        self.path, self.size, self.frames = Path(path), (int(size[0]), int(size[1])), 0
        self._writer = cv2.VideoWriter(
            str(self.path), cv2.VideoWriter_fourcc(*VIDEO_FOURCC), float(fps), self.size
        )
        if not self._writer.isOpened():
            raise RobustmaskError(f"OpenCV cannot write the video {self.path} (codec {VIDEO_FOURCC})")

    def write(self, frame: np.ndarray) -> None:
        image = to_uint8(np.asarray(frame))
        if (image.shape[1], image.shape[0]) != self.size:
            raise RobustmaskError(
                f"frame of {image.shape[1]}x{image.shape[0]} for a {self.size[0]}x{self.size[1]} video"
            )
        self._writer.write(np.ascontiguousarray(image[..., ::-1]))
        self.frames += 1

    def close(self) -> None:
        self._writer.release()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_image(path: str | os.PathLike, frame: np.ndarray) -> Path:
    """Write an RGB frame (float in [0, 1] or uint8) as an image file (format from the suffix)."""
    cv2 = import_cv2()
    if not cv2.imwrite(str(path), np.ascontiguousarray(to_uint8(np.asarray(frame))[..., ::-1])):
        raise RobustmaskError(f"OpenCV cannot write the image {path}; use a .png or .jpg name")
    return Path(path)


def write_detections_csv(
    path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]
) -> Path:
    """Write one CSV row per detection (pandas), with these `columns` in this order (also when empty)."""
    import pandas as pd

    pd.DataFrame(list(rows), columns=list(columns)).to_csv(path, index=False)
    return Path(path)


# ---------------------------------------------------------------------------------- fixed perturbations
def apply_universal(frame: np.ndarray, boxes: Sequence[FaceBox], pattern: np.ndarray) -> np.ndarray:
    """`frame` with `pattern` resized to each face box and added inside it, clipped to [0, 1].

    >>> adversarial = apply_universal(frame, detector(frame), np.load("universal.npy"))
    """
    out = as_float_frame(frame).copy()
    for box in boxes:
        x0, y0, x1, y1 = box.corners
        out[y0:y1, x0:x1] = np.clip(out[y0:y1, x0:x1] + _resized(pattern, x1 - x0, y1 - y0), 0.0, 1.0)
    return out


def apply_patch(frame: np.ndarray, boxes: Sequence[FaceBox], patch: np.ndarray) -> np.ndarray:
    """`frame` with the RGB `patch` (in [0, 1]) scaled onto the mask region of each face box
    (`mask_region_box`), as a camera sees the printed patch: its pixels as blocks, area-averaged.

    >>> adversarial = apply_patch(frame, detector(frame), load_patch("patch.png"))
    """
    from robustmask.camera.scene_attack import mask_region_box

    out = as_float_frame(frame).copy()
    for box in boxes:
        x0, y0, x1, y1 = mask_region_box(box).corners
        out[y0:y1, x0:x1] = np.clip(_resized(patch, x1 - x0, y1 - y0, printed=True), 0.0, 1.0)
    return out


def _resized(image: np.ndarray, width: int, height: int, printed: bool = False) -> np.ndarray:
    """`image` resized to width x height: area averaging when it shrinks, and when a `printed` patch
    grows (its pixels become blocks, averaged where they straddle a frame pixel); else bilinear."""
    cv2 = import_cv2()
    array = np.asarray(image, np.float32)
    shrinks = width < array.shape[1] or height < array.shape[0]
    interpolation = cv2.INTER_AREA if shrinks or printed else cv2.INTER_LINEAR
    return cv2.resize(array, (width, height), interpolation=interpolation).reshape(height, width, 3)
