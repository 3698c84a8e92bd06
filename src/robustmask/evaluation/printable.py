"""Files a person or a camera pipeline can use: a printable patch (PNG) and a universal pattern (.npy).

Two formats, read by ``robustmask scan --patch FILE.png --universal FILE.npy``:

* a patch (Brown et al., "Adversarial Patch", 2017, https://arxiv.org/abs/1712.09665): an RGB PNG,
  upscaled with nearest-neighbour to its physical print size at ``dpi``, the DPI in the PNG's
  ``pHYs`` chunk (so a printer prints it at that size) and the patch's own pixel size in a text
  chunk (so `load_patch` gives back the learnt patch);
* a universal perturbation (Moosavi-Dezfooli et al., CVPR 2017, https://arxiv.org/abs/1610.08401;
  Shafahi et al., AAAI 2020, https://arxiv.org/abs/1812.03705): an additive float32 (H, W, 3)
  pattern in a .npy file, values in [-eps, eps], added to [0, 1] images and clipped.

Example::

    save_printable_patch(patch.patch, "patch.png", width_cm=6.0)        # 6 cm wide at 300 dpi
    save_universal_perturbation(uap.perturbation, "universal.npy")
    sticker = load_patch("patch.png")                                  # the learnt patch, [0, 1]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from robustmask._io import write_atomically
from robustmask._validation import check_positive_int, check_positive_number
from robustmask.errors import DataError, RobustmaskError

__all__ = [
    "load_patch",
    "load_universal_perturbation",
    "print_size_cm",
    "save_printable_patch",
    "save_universal_perturbation",
]

CM_PER_INCH = 2.54
_SIZE_KEY = "robustmask:patch-size"  # PNG text chunk: the learnt patch's "HEIGHTxWIDTH" in pixels


def save_printable_patch(
    patch: Any, path: str | os.PathLike[str], width_cm: float = 5.0, dpi: int = 300, overwrite: bool = False
) -> Path:
    """Write ``patch`` as a PNG to print ``width_cm`` wide at ``dpi`` dots per inch.

    The patch (H, W, 3) in [0, 1] is upscaled with nearest-neighbour (no blur: every patch pixel
    becomes a block of printed dots) to ``round(width_cm / 2.54 * dpi)`` pixels wide, the height
    in proportion; the DPI goes into the PNG's metadata. Written atomically; an existing file is
    refused unless ``overwrite``. Returns the path.

    Example::

        save_printable_patch(attack.patch, "patch.png", width_cm=6.0, dpi=300)   # 709 px wide
    """
    from PIL import Image, PngImagePlugin

    array = _check_patch(patch)
    width_cm = check_positive_number(width_cm, "width_cm")
    dpi = check_positive_int(dpi, "dpi")
    path = _output_path(path, ".png", overwrite)
    width = max(1, round(width_cm / CM_PER_INCH * dpi))
    height = max(1, round(width * array.shape[0] / array.shape[1]))
    image = Image.fromarray(np.round(array * 255.0).astype(np.uint8), "RGB").resize(
        (width, height), Image.Resampling.NEAREST
    )
    info = PngImagePlugin.PngInfo()
    info.add_text(_SIZE_KEY, f"{array.shape[0]}x{array.shape[1]}")
    return write_atomically(
        path, lambda tmp: image.save(tmp, format="PNG", dpi=(dpi, dpi), pnginfo=info), suffix=".png"
    )


def load_patch(path: str | os.PathLike[str], size: tuple[int, int] | None = None) -> np.ndarray:
    """A patch image as float32 (H, W, 3) in [0, 1].

    ``size=(height, width)`` resizes it (nearest-neighbour); without it, a PNG written by
    `save_printable_patch` comes back at the learnt patch's size (exactly, up to 8-bit rounding),
    any other image at its own size.

    Example::

        sticker = load_patch("patch.png")                   # e.g. (11, 17, 3), as learnt
        on_a_face = load_patch("patch.png", size=(22, 34))  # for a 96 px face
    """
    from PIL import Image, UnidentifiedImageError

    path = _existing_file(path, "patch")
    try:
        with Image.open(path) as im:
            image = im.convert("RGB")
            stored = im.info.get(_SIZE_KEY)
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{path}: not a readable image ({error.__class__.__name__})") from None
    if size is None and isinstance(stored, str):
        try:
            size = tuple(int(v) for v in stored.split("x"))  # type: ignore[assignment]
        except ValueError:
            size = None
    if size is not None:
        try:
            height, width = (check_positive_int(v, "size") for v in size)
        except (TypeError, ValueError):
            raise DataError(f"size must be (height, width) in pixels, got {size!r}") from None
        if (width, height) != image.size:
            image = image.resize((width, height), Image.Resampling.NEAREST)
    return np.asarray(image, np.float32) / 255.0


def print_size_cm(path: str | os.PathLike[str]) -> tuple[float, float]:
    """(width, height) in cm that a PNG prints at: its pixels over the DPI of its metadata.

    Example::

        width_cm, height_cm = print_size_cm("patch.png")    # (5.0, 3.23)
    """
    from PIL import Image, UnidentifiedImageError

    path = _existing_file(path, "patch")
    try:
        with Image.open(path) as im:
            dpi, (width, height) = im.info.get("dpi"), im.size
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{path}: not a readable image ({error.__class__.__name__})") from None
    if not dpi or not all(float(d) > 0 for d in dpi):
        raise DataError(f"{path}: no DPI in the image's metadata, so no print size")
    return width / float(dpi[0]) * CM_PER_INCH, height / float(dpi[1]) * CM_PER_INCH


def save_universal_perturbation(pattern: Any, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write an additive pattern (H, W, 3) (or (1, H, W, 3)) as a float32 .npy file, atomically.

    Values must be finite and within [-1, 1] (a perturbation of [0, 1] images); an existing file is
    refused unless ``overwrite``. Returns the path.

    Example::

        save_universal_perturbation(uap.perturbation, "universal.npy")
    """
    array = _check_pattern(pattern, "pattern")
    path = _output_path(path, ".npy", overwrite)
    return write_atomically(path, lambda tmp: np.save(tmp, array, allow_pickle=False), suffix=".npy")


def load_universal_perturbation(path: str | os.PathLike[str]) -> np.ndarray:
    """A pattern written by `save_universal_perturbation`: float32 (H, W, 3), values in [-1, 1].

    Example::

        x_adv = np.clip(x + load_universal_perturbation("universal.npy"), 0.0, 1.0)
    """
    path = _existing_file(path, "universal perturbation")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read it as a .npy array ({error.__class__.__name__})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        raise DataError(
            f"{path}: a universal perturbation is a float (height, width, 3) array, "
            f"got {getattr(array, 'dtype', type(array).__name__)}"
        )
    return _check_pattern(array, str(path))


# ---------------------------------------------------------------------------------------------- helpers
def _check_patch(patch: Any) -> np.ndarray:
    array = _float_array(patch, "patch")
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or array.shape[-1] != 3 or 0 in array.shape:
        raise DataError(f"patch must be an RGB image (H, W, 3), got shape {array.shape}")
    if not np.all(np.isfinite(array)) or array.min() < -1e-6 or array.max() > 1 + 1e-6:
        raise DataError("patch values must be finite and in [0, 1] (scale 8-bit images: divide by 255)")
    return np.clip(array, 0.0, 1.0)


def _check_pattern(pattern: Any, name: str) -> np.ndarray:
    array = _float_array(pattern, name)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or array.shape[-1] != 3 or 0 in array.shape:
        raise DataError(
            f"{name}: a universal perturbation is a float (height, width, 3) array, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise DataError(f"{name}: the perturbation holds NaN/inf values")
    if np.abs(array).max() > 1.0:
        raise DataError(
            f"{name}: perturbation values reach {np.abs(array).max():g}; an additive pattern for [0, 1] "
            "images holds values in [-eps, eps] within [-1, 1]"
        )
    return array


def _float_array(value: Any, name: str) -> np.ndarray:
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be a numeric array, got {type(value).__name__}") from None
    if array.dtype == object or array.dtype.kind not in "fiub":
        raise DataError(f"{name} must be a numeric array, got dtype {array.dtype}")
    return array.astype(np.float32)


def _output_path(path: str | os.PathLike[str], suffix: str, overwrite: bool) -> Path:
    path = Path(path)
    if path.suffix.lower() != suffix:
        raise RobustmaskError(f"{path}: the file name must end in {suffix}")
    if path.is_dir():
        raise RobustmaskError(f"{path} is a folder; give a file name ending in {suffix}")
    if path.exists() and not overwrite:
        raise RobustmaskError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    return path


def _existing_file(path: str | os.PathLike[str], what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such {what} file")
    return path
