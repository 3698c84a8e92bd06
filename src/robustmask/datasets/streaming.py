"""Stream a face-mask folder from disk with tf.data, for folders larger than memory.

`stream_face_mask_directory` finds the same classes and files as the in-memory
`load_face_mask_directory` (its listing code, reused), and decodes each file with the same
function (Pillow: EXIF orientation, the colour conversions, bilinear resize), so an image has the
same float32 pixel values in both. The difference is memory: files are decoded as the batches are
drawn (``num_parallel_calls=AUTOTUNE`` threads; Pillow releases the GIL while it decodes), and at
most the prefetched batches are held, so memory does not grow with the folder.

Batches are blocks of files: batch ``i`` of a pass holds the readable files among files
``[i * batch_size, (i + 1) * batch_size)`` of the pass's order, so a bad file shortens its batch
and moves no other file to another batch (a block with no readable file gives no batch). A
batch's images are therefore known from the listing alone, before anything is decoded: that is
what lets `stream_slice` read batches ``[start, stop)`` without decoding the files before them,
and N shards of a sharded evaluation hold exactly the batches of one process.

Bad files (corrupt, truncated, not an image) are skipped, not fatal: the decoder catches the same
errors the in-memory loader catches and marks the file, which is then dropped from its batch. That
was chosen over ``tf.io.decode_image`` with ``ignore_errors``: TensorFlow's decoders would give
other pixels (no EXIF orientation, no alpha compositing, another resize), and ``ignore_errors``
hides which file failed and why. Skipped and converted files are counted in `stream_report` as
they are met (each file once, however many epochs); files lying in the root count as skipped at once.

Example::

    from robustmask.datasets.streaming import stream_face_mask_directory, stream_report

    test = stream_face_mask_directory("data/test", image_size=224, batch_size=64)
    table = robustmask.Evaluator(robustmask.attacks.FGSM(), [0.004]).evaluate(model, test)
    print(stream_report(test).skipped)          # [(path, reason), ...] met so far
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from robustmask._validation import check_choice, check_positive_int, check_test_split
from robustmask.datasets._decoding import _check_size, _read_rgb, _Unreadable
from robustmask.datasets._splitting import _stratified_split
from robustmask.datasets.directory import _class_root, _empty_class, _walk_images
from robustmask.errors import RobustmaskError

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

__all__ = [
    "StreamReport",
    "is_stream",
    "stream_face_mask_directory",
    "stream_report",
    "stream_slice",
]

SUBSETS = ("train", "test")


@dataclass
class StreamReport:
    """What a stream found: its classes and files, and the files it skipped or converted so far.

    Attributes:
        root: the folder.
        class_names: the classes in label order (label ``i`` is ``class_names[i]``).
        files: every file the stream reads, in its unshuffled order (class by class, sorted paths;
            with a `subset`, the split's seeded order).
        labels: each listed file's label.
        image_size: ``(height, width)`` of the images.
        batch_size: files per batch (see the module docstring).
        shuffled: whether every pass draws a new order (then batches are not fixed blocks).
        skipped: ``(path, reason)`` of each file skipped so far (the root's loose files from the
            start, bad files as the stream meets them).
        converted: ``(path, note)`` of each file whose colour mode was converted so far.
    """

    root: Path
    class_names: tuple[str, ...]
    files: list[str]
    labels: np.ndarray
    image_size: tuple[int, int] = (0, 0)
    batch_size: int = 1
    shuffled: bool = False
    skipped: list[tuple[str, str]] = field(default_factory=list)
    converted: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def batches(self) -> int:
        """Blocks of `batch_size` files of one pass: its batches, less any block of bad files only."""
        return math.ceil(len(self.files) / self.batch_size)

    @property
    def readable(self) -> int:
        """Files of the stream not skipped so far (all its readable files once it was read through)."""
        return len(self.files) - len({path for path, _ in self.skipped} & set(self.files))

    def fingerprint(self) -> str:
        """The files (relative to `root`), their labels and the batch size, in one line: equal for the
        same stream read on any machine (a sharded evaluation's shards are checked against it)."""
        digest = hashlib.sha256(repr(self.batch_size).encode())
        for file, label in zip(self.files, self.labels.tolist()):
            digest.update(f"{os.path.relpath(file, self.root)}\0{label}\n".encode())
        return f"{len(self.files)} files in {self.batches} batches of {self.batch_size}, {digest.hexdigest()[:16]}"

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
    split: float = 0.0,
    subset: str | None = None,
) -> tf.data.Dataset:
    """A batched tf.data.Dataset of ``(images, labels)`` decoded from `path` as it is iterated.

    Images are float32 ``(batch, height, width, 3)`` in [0, 1], labels int64; the same files,
    classes and pixel values as `load_face_mask_directory` (see the module docstring).

    Args:
        path: the root folder, one sub-folder per class (any depth beneath it).
        image_size: ``s`` for ``s x s`` or ``(height, width)``.
        batch_size: files per batch (a bad file's batch is one image shorter; the last may be smaller).
        cache: a file path prefix: the decoded images (uint8, a quarter of float32) are written there
            on the first pass and read back on later ones. The folder must exist; delete the cache
            files when the data change. None: decode every pass.
        shuffle: a new order each pass, drawn from `seed`. Without `cache` the file names are
            shuffled (nothing decoded is held); with it the decoded images pass a buffer of
            `shuffle_buffer` images (memory: that many images).
        seed: the shuffling seed (and the split's); the same seed gives the same orders.
        shuffle_buffer: see `shuffle`.
        class_names: the classes in label order; default the sorted top-level folder names.
        split: with `subset`, the test fraction, 0 <= split < 1, split as `load_face_mask_directory`
            splits (``round(split * n)`` test files per class, drawn by `seed`), by file: a bad
            file still takes its place in its share.
        subset: None (every file, listing order), "train" or "test": that share of `split`, in the
            in-memory loader's seeded order (with ``split=0``, "train" is every file in that order:
            a mixed order, fixed across passes, that a trainer can shuffle further).

    Returns:
        The dataset; `stream_report` gives its classes, files and skipped files.

    Example::

        train = stream_face_mask_directory("data/train", 224, 32, shuffle=True, cache="/scratch/train")
        model.fit(train, epochs=5)
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    shuffle_buffer = check_positive_int(shuffle_buffer, "shuffle_buffer")
    report = _listing(path, _check_size(image_size), class_names, split, subset, seed)
    report.batch_size, report.shuffled = batch_size, bool(shuffle)
    if cache is not None and not Path(cache).parent.is_dir():
        raise RobustmaskError(
            f"cache folder {Path(cache).parent} does not exist: create it or give cache=None"
        )
    return _pipeline(report, cache, seed, shuffle_buffer)


def stream_report(dataset: tf.data.Dataset) -> StreamReport:
    """The `StreamReport` of a dataset made by `stream_face_mask_directory` (not of one derived from it)."""
    report = getattr(dataset, "_robustmask_report", None)
    if not isinstance(report, StreamReport):
        raise RobustmaskError(
            "this dataset has no stream report: pass the dataset stream_face_mask_directory returned "
            "(not one made from it with .take, .map, ...)"
        )
    return report


def is_stream(dataset: object) -> bool:
    """Whether `dataset` was made by `stream_face_mask_directory` (or `stream_slice`)."""
    return isinstance(getattr(dataset, "_robustmask_report", None), StreamReport)


def stream_slice(dataset: tf.data.Dataset, start: int, stop: int) -> tf.data.Dataset:
    """Batches ``[start, stop)`` of an unshuffled stream, without decoding the files before them.

    The batches are those the whole stream gives (blocks of files, see the module docstring), read
    from the files of blocks ``start`` to ``stop - 1`` only, without the stream's `cache`. The
    slice's `stream_report` lists its own files; the files it skips or converts are noted in the
    stream's report too (one list: a shard's bad files are reported by the stream it was cut from).
    """
    report = stream_report(dataset)
    if report.shuffled:
        raise RobustmaskError("a shuffled stream has no fixed batches to slice: make it with shuffle=False")
    if not 0 <= start <= stop <= report.batches:
        raise RobustmaskError(f"batches [{start}, {stop}) are not within the stream's {report.batches}")
    a, b = start * report.batch_size, stop * report.batch_size
    return _pipeline(replace(report, files=report.files[a:b], labels=report.labels[a:b]), None, 0, 1)


# ---------------------------------------------------------------------------------------------- the pieces


def _listing(
    path: str | os.PathLike,
    size: tuple[int, int],
    class_names: tuple[str, ...] | list[str] | None,
    split: float,
    subset: str | None,
    seed: int,
) -> StreamReport:
    """The report of the files the stream reads: every file of each class, or one share of `split`."""
    check_test_split(split)
    if subset is not None:
        check_choice(subset, SUBSETS, "subset")
    elif split:
        raise RobustmaskError(f"split={split} needs subset='train' or subset='test' (which share to read)")
    root, names, root_files = _class_root(path, class_names)
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        found = _walk_images(root / name)
        if not found:
            raise _empty_class(root, name, 0)
        files += found
        labels += [label] * len(found)
    y = np.asarray(labels, np.int64)
    if subset is not None:  # the in-memory loader's split and order, made on the listing
        train, test = _stratified_split(np.arange(len(files)), y, split, seed)
        rows = train if subset == "train" else test
        files, y = [files[i] for i in rows], y[rows]
    report = StreamReport(root, tuple(names), files, y, image_size=size)
    report.skipped += [(str(f), "file in the root folder, not inside a class folder") for f in root_files]
    return report


def _pipeline(
    report: StreamReport, cache: str | os.PathLike | None, seed: int, buffer: int
) -> tf.data.Dataset:
    """The tf.data pipeline that reads `report`'s files (see the module docstring for its batches)."""
    import tensorflow as tf  # here, so that importing robustmask.datasets does not load TensorFlow

    (h, w), loose = report.image_size, len(report.skipped)

    def decode(file: bytes) -> tuple[np.ndarray, bool]:
        name = file.decode()
        try:
            rgb, note = _read_rgb(name, (h, w))
        except _Unreadable as err:
            if report._note(report.skipped, name, str(err)) and len(report.skipped) == 1 + loose:
                warnings.warn(
                    f"skipped {name} ({err}) while streaming {report.root}; later bad files are skipped "
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

    def readable(x: tf.Tensor, y: tf.Tensor, ok: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # the same division as the in-memory loader (uint8 / float32 255), after the cache: 4x smaller on disk
        return tf.cast(tf.boolean_mask(x, ok), tf.float32) / 255.0, tf.boolean_mask(y, ok)

    files = tf.constant(report.files, tf.string, shape=[len(report.files)])
    data = tf.data.Dataset.from_tensor_slices((files, report.labels))
    if report.shuffled and cache is None:  # file names only: nothing decoded waits in a buffer
        data = data.shuffle(len(report.files), seed=seed, reshuffle_each_iteration=True)
    data = data.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache is not None:
        data = data.cache(os.fspath(cache))
        if report.shuffled:
            data = data.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    data = data.batch(report.batch_size).map(readable, num_parallel_calls=tf.data.AUTOTUNE)
    data = data.filter(lambda x, y: tf.shape(y)[0] > 0).prefetch(tf.data.AUTOTUNE)
    data._robustmask_report = report
    return data
