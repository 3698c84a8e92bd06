"""Load an image folder in the layout of the Kaggle "Sophisticated Face Mask Dataset".

The layout is one folder per class at the top, with sub-folders (per sub-category, nested deeper
than one level) beneath it::

    root/incorrect_mask/mask_on_chin/.../img.jpg
    root/with_mask/simple/...
    root/without_mask/complex/...

:func:`load_face_mask_directory` takes the class from the *top* folder and walks everything beneath
it, resizes to a fixed size, scales to [0, 1] and splits train/test stratified by class (the paper:
224 x 224, 93 % / 7 %). It never fails on one bad file in a big folder: corrupt, truncated and
non-image files are skipped and reported; odd colour modes are converted and reported. What cannot
be used at all (a missing folder, no class folders, a class without a readable image) raises a
one-line :class:`~robustmask.errors.DataError` naming the problem and the path.

Colour conversion (every converted file is listed in ``FaceMaskData.converted``):

* grayscale ``L`` and bilevel ``1``: the grey value is copied to R, G and B;
* ``RGBA``, ``LA``, ``PA`` and palette ``P`` images with transparency: composited onto **black**,
  ``rgb * alpha / 255`` rounded. Black is what fully transparent pixels most often store, so the
  result agrees with the plain ``convert("RGB")`` that Keras and TensorFlow loaders apply in the
  common case, while half-transparent pixels get a defined value;
* ``CMYK`` (and ``YCbCr``, ``RGBX``, palette ``P``): Pillow's conversion to RGB (no ICC profile);
* 16-bit ``I;16*`` and 32-bit ``I`` / ``F`` images: scaled linearly from their *actual* range
  ``[min, max]`` to 0..255 (not clipped at 255, not divided by 65535, so 10- and 12-bit sensor data
  keep their contrast); a constant image becomes all zeros.

EXIF orientation tags are applied (phones store photos sideways with such a tag), so the model sees
a photo as a person does.

This module finds the files (the layout); `_decoding` reads each one (the rules above) and
`_splitting` makes the stratified split in place.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robustmask._validation import check_test_split
from robustmask.datasets._decoding import _check_dtype, _check_size, _decode_all, _read_rgb, _Unreadable
from robustmask.datasets._splitting import _gather_rows_in_place, _stratified_split
from robustmask.errors import DataError, RobustmaskError

__all__ = ["CLASS_NAMES", "FaceMaskData", "load_face_mask_directory", "load_image"]

#: The three classes in fixed (alphabetical, as the Kaggle folders sort) order: label ``i`` means
#: ``CLASS_NAMES[i]``.
CLASS_NAMES: tuple[str, ...] = ("incorrect_mask", "with_mask", "without_mask")

# Top-level folders that archive tools leave behind and that are never classes.
_IGNORED_TOP_FOLDERS = frozenset({"__MACOSX"})
_MAX_LISTED = 3  # paths named in the "skipped" warning


@dataclass
class FaceMaskData:
    """A loaded image folder, split into train and test sets.

    Attributes:
        x_train, x_test: images ``(N, H, W, 3)``; float32 in [0, 1], or uint8 0..255 when loaded
            with ``dtype="uint8"``.
        y_train, y_test: int64 labels, label ``i`` meaning ``class_names[i]``.
        class_names: the classes in label order.
        skipped: ``(path, reason)`` of each file that could not be used.
        converted: ``(path, what)`` of each file whose colour mode was converted to 8-bit RGB.
        paths_train, paths_test: the source file of each image, in array order.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    converted: list[tuple[str, str]] = field(default_factory=list)
    paths_train: list[str] = field(default_factory=list)
    paths_test: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One paragraph: image size and type, counts per class in each split, skipped, converted."""
        shape = "x".join(str(d) for d in self.x_train.shape[1:]) or "?"
        kind = "uint8 0..255" if self.x_train.dtype == np.uint8 else f"{self.x_train.dtype} in [0, 1]"
        per_class = ", ".join(
            f"{name} {int(np.sum(self.y_train == i))}/{int(np.sum(self.y_test == i))}"
            for i, name in enumerate(self.class_names)
        )
        return (
            f"{len(self.y_train)} train and {len(self.y_test)} test images of {shape} ({kind}) in "
            f"{len(self.class_names)} classes (train/test per class: {per_class}); "
            f"{len(self.skipped)} file(s) skipped, {len(self.converted)} converted to RGB."
        )


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------


def load_face_mask_directory(
    path: str | os.PathLike,
    image_size: int | tuple[int, int] = 224,
    split: float = 0.07,
    seed: int = 0,
    class_names: tuple[str, ...] | list[str] | None = None,
    dtype: str = "float32",
    workers: int | None = None,
) -> FaceMaskData:
    """Load a folder with one sub-folder per class (any depth beneath it) and split it.

    Memory: the whole folder is held in memory. The full Kaggle set (14,535 images) at 224 x 224
    takes 8.7 GB as float32; ``dtype="uint8"`` keeps the raw 0..255 values (a quarter of that) and
    leaves scaling to the caller (divide by 255). Train and test arrays are views into one buffer
    filled in place, so loading needs no second copy.

    Args:
        path: the root folder.
        image_size: ``s`` for ``s x s`` or ``(height, width)``; every image is resized to it
            (bilinear, Pillow's area-aware reduction when shrinking).
        split: the test fraction, 0 <= split < 1 (paper: 0.07). Each class contributes
            ``round(split * n_class)`` test images (at least one when ``split > 0`` and the class
            has two or more images), so the split is stratified exactly.
        seed: seeds the split and the shuffling of each set; the same seed gives the same split.
        class_names: the classes in label order; by default the sorted names of the top-level
            folders (for the Kaggle set this equals :data:`CLASS_NAMES`). Naming a subset loads only
            those folders; a named folder that is missing is an error.
        dtype: ``"float32"`` (scaled to [0, 1]) or ``"uint8"`` (0..255, unscaled).
        workers: decoding threads (Pillow releases the GIL while decoding); default
            ``min(8, cpu count)``.

    Returns:
        A :class:`FaceMaskData`.

    Raises:
        DataError: the folder is missing or not a folder, has no class folders, a named class folder
            is missing, or a class has no readable image.
    """
    size = _check_size(image_size)
    check_test_split(split)
    out_dtype = _check_dtype(dtype)
    root, names, root_files = _class_root(path, class_names)
    outside = "file in the root folder, not inside a class folder"
    skipped: list[tuple[str, str]] = [(str(f), outside) for f in root_files]
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        found = _walk_images(root / name)
        if not found:
            raise _empty_class(root, name, 0)
        files += found
        labels += [label] * len(found)

    h, w = size
    x = np.empty((len(files), h, w, 3), out_dtype)
    results = _decode_all(files, x, size, workers)
    ok = np.array([res[0] for res in results], bool)
    converted = [(files[i], res[1]) for i, res in enumerate(results) if res[0] and res[1]]
    skipped += [(files[i], res[1]) for i, res in enumerate(results) if not res[0]]
    y_all = np.asarray(labels, np.int64)

    for label, name in enumerate(names):
        if not np.any(ok & (y_all == label)):
            raise _empty_class(root, name, int(np.sum(y_all == label)))

    train_rows, test_rows = _stratified_split(np.flatnonzero(ok), y_all, split, seed)
    order = np.concatenate([train_rows, test_rows]).astype(np.int64)
    _gather_rows_in_place(x, order)
    n_tr, n_te = len(train_rows), len(test_rows)

    if skipped:
        listed = "; ".join(f"{p} ({why})" for p, why in skipped[:_MAX_LISTED])
        more = f"; and {len(skipped) - _MAX_LISTED} more" if len(skipped) > _MAX_LISTED else ""
        warnings.warn(
            f"skipped {len(skipped)} file(s) under {root}: {listed}{more} (see FaceMaskData.skipped)",
            stacklevel=2,
        )
    return FaceMaskData(
        x_train=x[:n_tr],
        y_train=y_all[train_rows],
        x_test=x[n_tr : n_tr + n_te],
        y_test=y_all[test_rows],
        class_names=tuple(names),
        skipped=skipped,
        converted=converted,
        paths_train=[files[i] for i in train_rows],
        paths_test=[files[i] for i in test_rows],
    )


def load_image(
    path: str | os.PathLike,
    image_size: int | tuple[int, int] | None = 224,
    dtype: str = "float32",
) -> np.ndarray:
    """Load one image as ``(H, W, 3)``, converted to RGB like the folder loader does.

    Args:
        path: an image file.
        image_size: ``s``, ``(height, width)`` or ``None`` to keep the file's size.
        dtype: ``"float32"`` (scaled to [0, 1]) or ``"uint8"`` (0..255).

    Raises:
        DataError: the file is missing, a folder, not an image, corrupt or truncated.
    """
    size = None if image_size is None else _check_size(image_size)
    out_dtype = _check_dtype(dtype)
    file = _existing_path(
        path, Path.is_file, "image file {path} does not exist", "image path {path} is not a file"
    )
    try:
        rgb, _ = _read_rgb(str(file), size)
    except _Unreadable as err:
        raise DataError(f"cannot read image {file}: {err}") from None
    return rgb.astype(np.float32) / np.float32(255.0) if out_dtype == np.float32 else rgb


# ----------------------------------------------------------------------------------------------
# The layout: the path, the class folders and the files beneath them
# ----------------------------------------------------------------------------------------------


def _existing_path(
    path: str | os.PathLike, is_kind: Callable[[Path], bool], missing: str, wrong_kind: str
) -> Path:
    """``path`` as a Path; a DataError when nothing is there (``missing``) or ``is_kind`` refuses it (``wrong_kind``).

    The two messages name the path as ``{path}``.
    """
    found = Path(path)
    if not found.exists():
        raise DataError(missing.format(path=found))
    if not is_kind(found):
        raise DataError(wrong_kind.format(path=found))
    return found


def _class_root(
    path: str | os.PathLike, class_names: Sequence[str] | None
) -> tuple[Path, list[str], list[Path]]:
    """The data folder as a Path, its class folder names in label order and the files in its root."""
    root = _existing_path(
        path,
        Path.is_dir,
        "data folder {path} does not exist",
        "data folder {path} is not a folder (expected one sub-folder per class)",
    )
    names, root_files = _class_folders(root, class_names)
    return root, names, root_files


def _class_folders(root: Path, class_names: Sequence[str] | None) -> tuple[list[str], list[Path]]:
    """The class folder names in label order, and the (non-hidden) files lying in the root."""
    entries = sorted(os.scandir(root), key=lambda e: e.name)
    visible = [e for e in entries if not e.name.startswith(".")]
    folders = [e.name for e in visible if e.is_dir() and e.name not in _IGNORED_TOP_FOLDERS]
    root_files = [Path(e.path) for e in visible if e.is_file()]
    if class_names is None:
        if not folders:
            found = f"; it holds {len(root_files)} file(s) directly" if root_files else "; it is empty"
            raise DataError(
                f"no class folders in {root}{found}: expected one sub-folder per class "
                f"(e.g. {', '.join(CLASS_NAMES)}) with the images beneath them"
            )
        return folders, root_files
    if isinstance(class_names, str):
        class_names = [class_names]
    names = list(class_names) if isinstance(class_names, (list, tuple)) else []
    plain = all(
        isinstance(n, str) and n not in ("", ".", "..") and "/" not in n and "\\" not in n for n in names
    )
    if not names or not plain or len(set(names)) != len(names):
        raise RobustmaskError(
            f"class_names must be distinct folder names directly in the root, got {class_names!r}"
        )
    missing = [n for n in names if not (root / n).is_dir()]
    if missing:
        raise DataError(
            f"class folder(s) {', '.join(missing)} missing in {root} "
            f"(found: {', '.join(folders) or 'no class folders'})"
        )
    return names, root_files


def _empty_class(root: Path, name: str, n_unreadable: int) -> DataError:
    return DataError(
        f"class '{name}' has no readable image under {root / name} ({n_unreadable} file(s) could not "
        "be read); put images in it or leave it out with class_names="
    )


def _walk_images(folder: Path) -> list[str]:
    """Every non-hidden file beneath ``folder``, at any depth, in sorted (reproducible) order."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith(".")]
    return found
