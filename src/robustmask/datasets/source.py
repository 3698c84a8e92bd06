"""One loader for "a folder of class sub-folders, or else the embedded synthetic faces".

Every command, the study and the robust preset get their images here, so the two sources are read
(and split) the same way everywhere.

Example::

    faces = load_faces(None, image_size=48, n_per_class=500, split=0.12)   # synthetic, 88/12
    faces = load_faces("faces/", image_size=(96, 96))                      # every image of a folder
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from robustmask.datasets.directory import CLASS_NAMES, FaceMaskData, load_face_mask_directory
from robustmask.datasets.synthetic import synthetic_face_masks
from robustmask.errors import DataError

__all__ = ["load_faces"]


def load_faces(
    data: str | os.PathLike[str] | None = None,
    *,
    image_size: int | tuple[int, int],
    n_per_class: int = 200,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    split: float = 0.0,
) -> FaceMaskData:
    """The images of the folder `data`, or without it `n_per_class` synthetic faces per class.

    Args:
        data: a folder with one sub-folder per class (`load_face_mask_directory`), or None for
            the embedded synthetic faces (`synthetic_face_masks`).
        image_size: ``s`` for ``s x s`` or ``(height, width)``; the synthetic faces are square.
        n_per_class: synthetic images per class (unused with `data`).
        seed: the same seed gives the same images, order and split.
        class_names: only these classes, in this label order (default: every class folder, or
            the three synthetic classes).
        split: the test fraction, 0 <= split < 1. A folder is split by its loader (exactly
            ``round(split * n)`` test images per class); the synthetic faces by scikit-learn's
            stratified ``train_test_split`` with `seed`. With 0 every image is in ``x_train``
            (shuffled by `seed` for a folder) and the test arrays are empty.

    Returns:
        A `FaceMaskData` (``x_train``, ``y_train``, ``x_test``, ``y_test``, ``class_names``).

    Raises:
        DataError: a bad folder, or a non-square `image_size` for the synthetic faces.
        RobustmaskError: a class name the synthetic faces do not have.
    """
    names = None if class_names is None else list(class_names)
    if data:
        return load_face_mask_directory(
            data, image_size=image_size, split=split, seed=seed, class_names=names
        )
    height, width = image_size if isinstance(image_size, (tuple, list)) else (image_size, image_size)
    if height != width:
        raise DataError(
            f"the synthetic faces are square; got image_size {height}x{width}: give a folder of images"
        )
    x, y = synthetic_face_masks(n_per_class=n_per_class, image_size=int(height), seed=seed, classes=names)
    classes = tuple(names) if names else CLASS_NAMES
    if not split:
        return FaceMaskData(x, y, x[:0], y[:0], classes)
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=split, stratify=y, random_state=seed)
    return FaceMaskData(x_train, y_train, x_test, y_test, classes)
