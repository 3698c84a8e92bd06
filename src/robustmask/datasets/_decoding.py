"""Decoding one image file to uint8 RGB at a fixed size: the Pillow reader behind both folder loaders.

The colour rules (grayscale replicated, alpha composited onto black, 16- and 32-bit scaled from
their actual range, EXIF orientation applied) are the ones `robustmask.datasets.directory`
documents; `load_face_mask_directory`, `load_image` and `stream_face_mask_directory` all decode
through `_read_rgb`, so an image has the same pixels in each. `_check_size` and `_check_dtype`
check what the images are decoded to.
"""

from __future__ import annotations

import os
import struct
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from robustmask.errors import RobustmaskError

if TYPE_CHECKING:  # pragma: no cover
    import numpy.typing as npt


def _check_size(image_size: object) -> tuple[int, int]:
    is_int = lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool)  # noqa: E731
    pair = (image_size, image_size) if is_int(image_size) else image_size
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(is_int(s) and s >= 1 for s in pair)):
        raise RobustmaskError(f"image_size must be a positive int or (height, width), got {image_size!r}")
    return int(pair[0]), int(pair[1])


def _check_dtype(dtype: npt.DTypeLike) -> type[np.float32] | type[np.uint8]:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in ("float32", "uint8"):
        raise RobustmaskError(f"dtype must be 'float32' or 'uint8', got {dtype!r}")
    return np.float32 if name == "float32" else np.uint8


class _Unreadable(Exception):
    """A file that cannot be used as an image; the message is the one-line reason."""


# What Pillow raises for a bad file: OSError for truncated or corrupt data ("image file is
# truncated", "broken data stream"), SyntaxError and ValueError from format plugins that reject a
# header, EOFError and struct.error where a plugin reads past the end. Anything else (MemoryError,
# a bug) is no property of the file and propagates.
_BAD_FILE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


def _decode_all(files, out, size, workers):
    """Decode ``files`` into rows of ``out``; returns ``(ok, note_or_reason)`` per file."""
    scale = out.dtype == np.float32

    def one(i):
        try:
            rgb, note = _read_rgb(files[i], size)
        except _Unreadable as err:
            return False, str(err)
        out[i] = rgb / np.float32(255.0) if scale else rgb
        return True, note

    if not files:
        return []
    n_workers = workers or min(8, os.cpu_count() or 1)
    if n_workers <= 1 or len(files) < 8:
        return [one(i) for i in range(len(files))]
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        return list(pool.map(one, range(len(files)), chunksize=16))


def _read_rgb(path: str, size: tuple[int, int] | None) -> tuple[np.ndarray, str | None]:
    """Decode one file to uint8 RGB ``(H, W, 3)`` at ``size`` (or its own size when None).

    Returns ``(array, note)``, where note describes a colour conversion or is None.
    Raises :class:`_Unreadable` with a one-line reason.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()  # Pillow decodes lazily; load() is what detects truncated files
            im = ImageOps.exif_transpose(im)
            rgb, note = _to_rgb8(im)
    except UnidentifiedImageError:
        raise _Unreadable("not an image (Pillow cannot identify the format)") from None
    except Image.DecompressionBombError as err:
        raise _Unreadable(f"image too large ({_one_line(err)})") from None
    except _Unreadable:
        raise
    except _BAD_FILE_ERRORS as err:
        raise _Unreadable(f"corrupt or truncated image ({_one_line(err)})") from None
    if size is not None and rgb.shape[:2] != tuple(size):
        resized = Image.fromarray(rgb).resize((size[1], size[0]), Image.Resampling.BILINEAR)
        rgb = np.asarray(resized, np.uint8)
    return rgb, note


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:200]


def _to_rgb8(im):
    """Convert a loaded Pillow image to uint8 RGB; see the module docstring for the rules."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im, np.uint8), None
    if mode in ("L", "1"):
        return np.asarray(im.convert("RGB"), np.uint8), f"grayscale ({mode}) replicated to RGB"
    if mode == "P" and "transparency" in im.info:
        im, mode = im.convert("RGBA"), "P with transparency"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La", "P with transparency"):
        rgba = np.asarray(im if im.mode == "RGBA" else im.convert("RGBA"), np.uint16)
        rgb = (rgba[..., :3] * rgba[..., 3:4] + 127) // 255
        return rgb.astype(np.uint8), f"{mode} alpha composited onto black"
    if mode.startswith("I;16") or mode in ("I", "F"):
        data = np.nan_to_num(np.asarray(im, np.float64))
        lo, hi = float(data.min()), float(data.max())
        grey = np.zeros(data.shape, np.uint8) if hi <= lo else np.round((data - lo) * (255.0 / (hi - lo)))
        grey = grey.astype(np.uint8)
        note = f"{mode} scaled from [{lo:g}, {hi:g}] to 0..255 and replicated to RGB"
        return np.repeat(grey[..., None], 3, axis=2), note
    try:
        rgb = np.asarray(im.convert("RGB"), np.uint8)
    except (ValueError, OSError) as err:
        raise _Unreadable(f"unsupported colour mode {mode} ({_one_line(err)})") from None
    return rgb, f"{mode} converted to RGB"
