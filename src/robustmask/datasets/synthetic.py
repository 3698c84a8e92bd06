"""A procedural face-mask data set: robustmask's embedded default data (nothing can be downloaded).

:func:`synthetic_face_masks` draws cartoon faces in the three classes of the Kaggle "Sophisticated
Face Mask Dataset" that the reference study used (Sheikh & Zafar 2023), with its sub-categories:

* ``with_mask`` -- the mask covers nose and mouth; ``simple`` or ``complex``;
* ``incorrect_mask`` -- the mask sits on the chin only (``mask_on_chin``) or over mouth and chin with
  the nose showing (``mask_on_mouth_chin``), half and half;
* ``without_mask`` -- no mask; ``simple`` or ``complex``.

"Complex" images carry what the paper calls complex: beards, long hair hanging past the face and a
hand over part of it; they come at the paper's ratios (with_mask 789 of 4,789, without_mask 746 of
4,746).

The images are made so that no single trivial cue gives the class away: mask colours include
skin-like and background-like colours, faces of every class wear scarves and gloves in mask-like
colours, backgrounds can be skin-coloured, and lighting, noise, face size, position and rotation
vary. What separates the classes is *where* a covering sits on the face, as in the real task; a
test checks that mean colour alone does not separate the classes while raw pixels do.

Everything is drawn with vectorised NumPy in relative (face) coordinates, so any size from 32 to
224 pixels works, and 3,000 images of 64 px take a few seconds.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, overload

import numpy as np

from robustmask.datasets._face_drawing import render
from robustmask.datasets._face_params import assign_labels, draw_params
from robustmask.datasets.directory import CLASS_NAMES
from robustmask._io import write_atomically
from robustmask.errors import DataError, RobustmaskError

if TYPE_CHECKING:  # pragma: no cover - Pillow is imported where it is used
    from PIL import Image

__all__ = [
    "SUBCATEGORIES",
    "synthetic_face_masks",
    "write_synthetic_face_mask_directory",
]

#: Sub-categories per class, as in the Kaggle set's sub-folders.
SUBCATEGORIES: dict[str, tuple[str, ...]] = {
    "incorrect_mask": ("mask_on_chin", "mask_on_mouth_chin"),
    "with_mask": ("simple", "complex"),
    "without_mask": ("simple", "complex"),
}


# Pixels rendered at once. Small chunks keep NumPy's temporaries on the malloc heap: large ones are
# mmap-ed and page-faulted afresh on every allocation, which cost more than the drawing itself.
_PIXELS_PER_CHUNK = 32768
_FILES_PER_FOLDER = 50  # images per nested ``part_XX`` folder in the written layout

_F = np.float32


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------


@overload
def synthetic_face_masks(
    n_per_class: int = ...,
    image_size: int = ...,
    seed: int | None = ...,
    return_subcategories: Literal[False] = ...,
    classes: Sequence[str | int] | None = ...,
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def synthetic_face_masks(
    n_per_class: int = ...,
    image_size: int = ...,
    seed: int | None = ...,
    *,
    return_subcategories: Literal[True],
    classes: Sequence[str | int] | None = ...,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
@overload
def synthetic_face_masks(
    n_per_class: int = ...,
    image_size: int = ...,
    seed: int | None = ...,
    return_subcategories: bool = ...,
    classes: Sequence[str | int] | None = ...,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def synthetic_face_masks(
    n_per_class: int = 200,
    image_size: int = 64,
    seed: int | None = 0,
    return_subcategories: bool = False,
    classes: Sequence[str | int] | None = None,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n_per_class`` synthetic face images in each class (of three, or of ``classes``).

    Args:
        n_per_class: images per class (the class balance is exact).
        image_size: side of the square images in pixels, 32 to 224 works well (any >= 8 runs).
        seed: the same seed gives identical arrays; another seed gives other images (``None``: fresh
            randomness each call).
        return_subcategories: also return each image's sub-category (see :data:`SUBCATEGORIES`).
        classes: only these classes, by name (``"with_mask"``) or index into :data:`CLASS_NAMES`,
            labelled ``0..k-1`` in the order given: ``classes=("with_mask", "without_mask")`` is a
            binary set with label 1 for no mask. The images are those of the full set (same seed)
            in those classes.

    Returns:
        ``(x, y)`` or ``(x, y, subcategories)``: ``x`` float32 ``(N, image_size, image_size, 3)`` in
        [0, 1]; ``y`` int64 labels, label ``i`` meaning ``CLASS_NAMES[i]`` (or ``classes[i]``),
        classes shuffled deterministically by ``seed``; ``subcategories`` an array of strings.
    """
    n_per_class = _check_int("n_per_class", n_per_class, 1)
    size = _check_int("image_size", image_size, 8)
    chosen = class_indices(classes)
    seq = np.random.SeedSequence(seed)
    param_seq, noise_seq = seq.spawn(2)
    rng = np.random.default_rng(param_seq)

    labels, subcats = assign_labels(n_per_class, rng)
    p = draw_params(labels, subcats, rng)
    n = len(labels)
    x = np.empty((n, size, size, 3), _F)
    chunk = max(1, min(256, _PIXELS_PER_CHUNK // (size * size)))
    chunk_seqs = noise_seq.spawn((n + chunk - 1) // chunk)
    for k, start in enumerate(range(0, n, chunk)):
        idx = slice(start, min(start + chunk, n))
        params = {name: value[idx] for name, value in p.items()}
        planes = render(params, size, np.random.default_rng(chunk_seqs[k]))
        for c in range(3):  # channel by channel: much faster than one transposing copy
            x[idx, :, :, c] = planes[c]
    y = labels.astype(np.int64)
    if chosen is not None:
        keep = np.isin(y, chosen)
        relabel = np.full(len(CLASS_NAMES), -1, np.int64)
        relabel[chosen] = np.arange(len(chosen))  # class index -> its position in `classes`
        x, y, subcats = x[keep], relabel[y[keep]], subcats[keep]
    if return_subcategories:
        return x, y, subcats
    return x, y


def write_synthetic_face_mask_directory(
    path: str | os.PathLike,
    n_per_class: int = 200,
    image_size: int = 64,
    seed: int | None = 0,
    overwrite: bool = False,
    classes: Sequence[str | int] | None = None,
) -> Path:
    """Write :func:`synthetic_face_masks` images as PNG files in the Kaggle folder layout.

    The layout mirrors the "Sophisticated Face Mask Dataset": one folder per class, sub-folders per
    sub-category and a further nested level, ``path/<class>/<subcategory>/part_XX/img_NNNNN.png``.
    ``NNNNN`` is the image's 1-based index in the arrays :func:`synthetic_face_masks` returns for the
    same arguments; pixels are those values rounded to 8 bits.

    Each file is written atomically (a hidden temporary file in the same folder, then
    :func:`os.replace`), so a reader never sees half a PNG.

    Args:
        path: the folder to create or fill.
        overwrite: by default a non-empty ``path`` is refused. With ``overwrite=True`` the three
            class folders under ``path`` are deleted first (so no stale images of an earlier,
            larger write survive); other files and folders in ``path`` are left alone.
        classes: only these classes' folders (see :func:`synthetic_face_masks`); a folder loader
            labels them by sorted folder name.

    Returns:
        ``path`` as a :class:`pathlib.Path`.
    """
    from PIL import Image

    root = Path(path)
    if root.exists() and not root.is_dir():
        raise DataError(f"cannot write the synthetic data set to {root}: it is a file, not a folder")
    non_empty = root.is_dir() and any(root.iterdir())
    if non_empty and not overwrite:
        raise DataError(
            f"refusing to write the synthetic data set into the non-empty folder {root}; "
            "pass overwrite=True or choose an empty folder"
        )
    x, y, subcats = synthetic_face_masks(
        n_per_class, image_size, seed, return_subcategories=True, classes=classes
    )
    names = [CLASS_NAMES[i] for i in class_indices(classes) or range(len(CLASS_NAMES))]
    if non_empty:  # only now that the arguments proved good
        for name in CLASS_NAMES:
            if (root / name).is_dir():
                shutil.rmtree(root / name)
    pixels = np.round(x * 255.0).astype(np.uint8)
    counters: dict[tuple[int, str], int] = {}
    for i in range(len(y)):
        key = (int(y[i]), str(subcats[i]))
        j = counters.get(key, 0)
        counters[key] = j + 1
        folder = root / names[key[0]] / key[1] / f"part_{j // _FILES_PER_FOLDER + 1:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        _write_png_atomically(Image.fromarray(pixels[i]), folder / f"img_{i + 1:05d}.png")
    return root


# ----------------------------------------------------------------------------------------------
# Helpers: arguments, files
# ----------------------------------------------------------------------------------------------


def class_indices(classes: Sequence[str | int] | None) -> list[int] | None:
    """Indices into :data:`CLASS_NAMES` of `classes` (names or indices, distinct), or None for all."""
    if classes is None:
        return None
    if isinstance(classes, str):
        classes = [classes]
    chosen = []
    for c in classes:
        if isinstance(c, str) and c in CLASS_NAMES:
            chosen.append(CLASS_NAMES.index(c))
        elif isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c < len(CLASS_NAMES):
            chosen.append(int(c))
        else:
            raise RobustmaskError(
                f"classes: {c!r} is not a synthetic class; give names from {', '.join(CLASS_NAMES)} "
                f"or indices 0..{len(CLASS_NAMES) - 1}"
            )
    if not chosen or len(set(chosen)) != len(chosen):
        raise RobustmaskError(f"classes must name distinct synthetic classes, got {list(classes)!r}")
    return chosen


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise RobustmaskError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _write_png_atomically(image: Image.Image, target: Path) -> None:
    write_atomically(target, lambda tmp: image.save(tmp, format="PNG"))
