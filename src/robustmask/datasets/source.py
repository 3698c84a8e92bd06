"""One loader for "a folder of class sub-folders, or else the embedded synthetic faces".

Every command, the study and the robust preset get their images here, so the two sources are read
(and split) the same way everywhere: `load_faces` into memory, `stream_faces` from disk (a folder's
training share read batch by batch as it trains, its test share in memory).

Example::

    faces = load_faces(None, image_size=48, n_per_class=500, split=0.12)   # synthetic, 88/12
    faces = load_faces("faces/", image_size=(96, 96))                      # every image of a folder
    faces = stream_faces("faces/", image_size=96, batch_size=64, split=0.07)
    trainer.fit(model, faces.train)                                        # read from disk
    model.fit(shuffled_batches(faces.train, 32), epochs=5)                 # a new order every pass
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from robustmask.datasets.directory import CLASS_NAMES, FaceMaskData, load_face_mask_directory
from robustmask.datasets.streaming import StreamReport, stream_face_mask_directory, stream_report
from robustmask.datasets.synthetic import synthetic_face_masks
from robustmask.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

__all__ = ["StreamedFaces", "load_faces", "shuffled_batches", "stream_faces"]


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


@dataclass
class StreamedFaces:
    """A folder's training share streamed from disk and its test share in memory (`stream_faces`).

    Attributes:
        train: a batched tf.data.Dataset of ``(images, labels)``, decoded from disk on every pass,
            in a seeded order that is the same every pass (trainers shuffle it further per epoch).
        x_test: the test share's images, float32 in [0, 1] (empty with ``split=0``).
        y_test: their int64 labels.
        class_names: the classes in label order.
    """

    train: tf.data.Dataset
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def report(self) -> StreamReport:
        """The training stream's `StreamReport`: its files, and the bad files met so far in either share."""
        return stream_report(self.train)


def stream_faces(
    data: str | os.PathLike[str] | None,
    *,
    image_size: int | tuple[int, int],
    batch_size: int = 64,
    split: float = 0.0,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> StreamedFaces:
    """The folder `data` split as `load_faces` splits it, its training share streamed from disk.

    The split is made on the folder's listing, by the in-memory loader's rule (``round(split * n)``
    test files per class, drawn by `seed`), and the training files keep that loader's seeded order,
    so a folder without bad files gives the images of ``load_faces(data, ...)`` in the same order.
    Memory holds the test share and a few batches, not the training images.

    Args:
        data: a folder with one sub-folder per class. The synthetic faces are drawn in memory: for
            them, use `load_faces`.
        image_size: ``s`` for ``s x s`` or ``(height, width)``.
        batch_size: images per batch of the training stream.
        split: the test fraction, 0 <= split < 1; the test share is decoded into memory.
        seed: the same seed gives the same split and order.
        class_names: only these classes, in this label order (default: every class folder).
        cache: a file path prefix where the decoded training images are cached on the first pass
            (`stream_face_mask_directory`); None: decode every pass.

    Returns:
        A `StreamedFaces`.

    Raises:
        DataError: no folder (`data` None), or a bad folder.
    """
    if not data:
        raise DataError(
            "stream_faces reads a folder: give data=DIR (the synthetic faces are drawn in memory: load_faces)"
        )
    names = None if class_names is None else list(class_names)
    shares = [
        stream_face_mask_directory(
            data, image_size, size, cache=cached, class_names=names, split=split, subset=subset, seed=seed
        )
        for subset, size, cached in (("train", batch_size, cache), ("test", 256, None))
    ]
    report, test_report = stream_report(shares[0]), stream_report(shares[1])
    # one list of skipped and converted files for both shares (the test share's are met below)
    test_report.skipped, test_report.converted = report.skipped, report.converted
    parts = [(x.numpy(), y.numpy()) for x, y in shares[1]] if test_report.files else []
    height, width = report.image_size
    x_test = np.concatenate([x for x, _ in parts]) if parts else np.zeros((0, height, width, 3), np.float32)
    y_test = np.concatenate([y for _, y in parts]) if parts else np.zeros(0, np.int64)
    return StreamedFaces(shares[0], x_test, y_test, report.class_names)


def shuffled_batches(
    dataset: tf.data.Dataset, batch_size: int, *, seed: int = 0, window: int = 4
) -> tf.data.Dataset:
    """`dataset`'s images in batches of `batch_size`, in a new order every pass, for Keras' ``fit``.

    The images are shuffled within a window of `window` batches (memory: those images, not the
    data set), after the stream's own order: give a stream in a mixed order (``subset="train"``,
    as `robustmask.datasets.stream_faces` makes it), not class by class.
    """
    from robustmask._validation import check_positive_int

    batch_size = check_positive_int(batch_size, "batch_size")
    buffer = check_positive_int(window, "window") * batch_size
    return dataset.unbatch().shuffle(buffer, seed=seed, reshuffle_each_iteration=True).batch(batch_size)
