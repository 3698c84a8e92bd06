"""Stream a face-mask folder from disk with tf.data, for folders larger than memory.

`stream_face_mask_directory` finds the same classes and files as the in-memory
`load_face_mask_directory` (its listing code, reused), and decodes each file with the same
function (Pillow: EXIF orientation, the colour conversions, bilinear resize), so an image has the
same float32 pixel values in both. The difference is memory: files are decoded as the batches are
drawn (``num_parallel_calls=AUTOTUNE`` threads; Pillow releases the GIL while it decodes), and at
most the prefetched batches are held, so memory does not grow with the folder.

Bad files (corrupt, truncated, not an image) are skipped, not fatal: the decoder catches the same
errors the in-memory loader catches and marks the file, which a ``filter`` then drops. That was
chosen over ``tf.io.decode_image`` with ``ignore_errors``: TensorFlow's decoders would give other
pixels (no EXIF orientation, no alpha compositing, another resize), and ``ignore_errors`` hides
which file failed and why. Skipped and converted files are counted in `stream_report` as they are
met (each file once, however many epochs); files lying in the root count as skipped at once.

Example::

    from robustmask.datasets.streaming import stream_face_mask_directory, stream_report

    test = stream_face_mask_directory("data/test", image_size=224, batch_size=64)
    table = robustmask.Evaluator(robustmask.attacks.FGSM(), [0.004]).evaluate(model, test)
    print(stream_report(test).skipped)          # [(path, reason), ...] met so far
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from robustmask._validation import check_positive_int
from robustmask.datasets._decoding import _check_size, _read_rgb, _Unreadable
from robustmask.datasets.directory import _class_folders, _empty_class, _existing_path, _walk_images
from robustmask.errors import RobustmaskError

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

__all__ = ["StreamReport", "stream_face_mask_directory", "stream_report"]


@dataclass
class StreamReport:
    """What a stream found: its classes and files, and the files it skipped or converted so far.

    Attributes:
        root: the folder.
        class_names: the classes in label order (label ``i`` is ``class_names[i]``).
        files: every file listed, in the unshuffled stream order (class by class, sorted paths).
        labels: each listed file's label.
        skipped: ``(path, reason)`` of each file skipped so far (the root's loose files from the
            start, bad files as the stream meets them).
        converted: ``(path, note)`` of each file whose colour mode was converted so far.
    """

    root: Path
    class_names: tuple[str, ...]
    files: list[str]
    labels: np.ndarray
    skipped: list[tuple[str, str]] = field(default_factory=list)
    converted: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _note(self, into: list[tuple[str, str]], path: str, why: str) -> bool:
        with self._lock:
            if any(p == path for p, _ in into):
                return False
            into.append((path, why))
            return True


def stream_face_mask_directory(
    path: str | os.PathLike,
    image_size: int | tuple[int, int] = 224,
    batch_size: int = 64,
    *,
    cache: str | os.PathLike | None = None,
    shuffle: bool = False,
    seed: int = 0,
    shuffle_buffer: int = 1024,
    class_names: tuple[str, ...] | list[str] | None = None,
) -> tf.data.Dataset:
    """A batched tf.data.Dataset of ``(images, labels)`` decoded from `path` as it is iterated.

    Images are float32 ``(batch, height, width, 3)`` in [0, 1], labels int64; the same files,
    classes and pixel values as `load_face_mask_directory` (see the module docstring), without its
    train/test split: give it a folder per split.

    Args:
        path: the root folder, one sub-folder per class (any depth beneath it).
        image_size: ``s`` for ``s x s`` or ``(height, width)``.
        batch_size: images per batch (the last batch may be smaller).
        cache: a file path prefix: the decoded images (uint8, a quarter of float32) are written there
            on the first pass and read back on later ones. The folder must exist; delete the cache
            files when the data change. None: decode every pass.
        shuffle: a new order each pass, drawn from `seed`. Without `cache` the file names are
            shuffled (nothing decoded is held); with it the decoded images pass a buffer of
            `shuffle_buffer` images (memory: that many images).
        seed: the shuffling seed; the same seed gives the same orders.
        shuffle_buffer: see `shuffle`.
        class_names: the classes in label order; default the sorted top-level folder names.

    Returns:
        The dataset; `stream_report` gives its classes, files and skipped files.

    Example::

        train = stream_face_mask_directory("data/train", 224, 32, shuffle=True, cache="/scratch/train")
        model.fit(train, epochs=5)
    """
    import tensorflow as tf  # here, so that importing robustmask.datasets does not load TensorFlow

    h, w = _check_size(image_size)
    batch_size = check_positive_int(batch_size, "batch_size")
    shuffle_buffer = check_positive_int(shuffle_buffer, "shuffle_buffer")
    root = _existing_path(
        path,
        Path.is_dir,
        "data folder {path} does not exist",
        "data folder {path} is not a folder (expected one sub-folder per class)",
    )
    if cache is not None and not Path(cache).parent.is_dir():
        raise RobustmaskError(
            f"cache folder {Path(cache).parent} does not exist: create it or give cache=None"
        )
    names, root_files = _class_folders(root, class_names)
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        found = _walk_images(root / name)
        if not found:
            raise _empty_class(root, name, 0)
        files += found
        labels += [label] * len(found)
    report = StreamReport(root, tuple(names), files, np.asarray(labels, np.int64))
    report.skipped += [(str(f), "file in the root folder, not inside a class folder") for f in root_files]

    def decode(file: bytes) -> tuple[np.ndarray, bool]:
        name = file.decode()
        try:
            rgb, note = _read_rgb(name, (h, w))
        except _Unreadable as err:
            if report._note(report.skipped, name, str(err)) and len(report.skipped) == 1 + len(root_files):
                warnings.warn(
                    f"skipped {name} ({err}) while streaming {root}; later bad files are skipped "
                    "quietly: see stream_report(dataset).skipped",
                    stacklevel=1,
                )
            return np.zeros((h, w, 3), np.uint8), False
        if note:
            report._note(report.converted, name, note)
        return rgb, True

    def read(file: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        image, ok = tf.numpy_function(decode, [file], [tf.uint8, tf.bool], name="decode_face_mask_file")
        image.set_shape((h, w, 3))
        ok.set_shape(())
        return image, label, ok

    data = tf.data.Dataset.from_tensor_slices((files, report.labels))
    if shuffle and cache is None:  # file names only: nothing decoded waits in a buffer
        data = data.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    data = data.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    data = data.filter(lambda image, label, ok: ok).map(lambda image, label, ok: (image, label))
    if cache is not None:
        data = data.cache(os.fspath(cache))
        if shuffle:
            data = data.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size)
    # the same division as the in-memory loader (uint8 / float32 255), after the cache: 4x smaller on disk
    data = data.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y), num_parallel_calls=tf.data.AUTOTUNE)
    data = data.prefetch(tf.data.AUTOTUNE)
    data._robustmask_report = report
    return data


def stream_report(dataset: tf.data.Dataset) -> StreamReport:
    """The `StreamReport` of a dataset made by `stream_face_mask_directory` (not of one derived from it)."""
    report = getattr(dataset, "_robustmask_report", None)
    if not isinstance(report, StreamReport):
        raise RobustmaskError(
            "this dataset has no stream report: pass the dataset stream_face_mask_directory returned "
            "(not one made from it with .take, .map, ...)"
        )
    return report
