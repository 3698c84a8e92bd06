"""The streaming folder loader: the in-memory loader's files and pixels, bad files skipped, memory flat
(issue 19, item 3)."""

from __future__ import annotations

import gc
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

from robustmask.datasets import load_face_mask_directory, write_synthetic_face_mask_directory
from robustmask.datasets.streaming import stream_face_mask_directory, stream_report
from robustmask.errors import DataError, RobustmaskError


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A synthetic Kaggle-layout folder (12 faces a class at 20 px) with the usual dirt in it."""
    root = write_synthetic_face_mask_directory(
        tmp_path_factory.mktemp("faces"), n_per_class=12, image_size=20
    )
    (root / "with_mask" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    good = next((root / "without_mask").rglob("*.png")).read_bytes()
    (root / "without_mask" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "without_mask" / "notes.txt").write_text("not an image")
    (root / "with_mask" / ".DS_Store").write_bytes(b"hidden: never listed")
    (root / "__MACOSX").mkdir()
    (root / "__MACOSX" / "junk.png").write_bytes(good)
    (root / "README.txt").write_text("a file in the root")
    # odd colour modes and sizes: the same conversions in both loaders
    Image.fromarray((np.arange(30 * 25) % 256).astype(np.uint8).reshape(30, 25), "L").save(
        root / "incorrect_mask" / "grey.png"
    )
    rgba = np.random.default_rng(0).integers(0, 256, (17, 23, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(root / "incorrect_mask" / "alpha.png")
    return root


def _stream_all(dataset):
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in dataset))
    return np.concatenate(xs), np.concatenate(ys)


def test_same_files_classes_and_pixels_as_the_in_memory_loader(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        memory = load_face_mask_directory(folder, image_size=20, split=0.0)
    stream = stream_face_mask_directory(folder, image_size=20, batch_size=7)
    with pytest.warns(UserWarning, match="skipped .*stream_report"):
        x, y = _stream_all(stream)
    report = stream_report(stream)
    assert report.class_names == memory.class_names == ("incorrect_mask", "with_mask", "without_mask")
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape[1:] == (20, 20, 3)
    # the same good files with the same labels, bad files skipped with the same reasons
    good = [f for f in report.files if f not in dict(report.skipped)]
    assert sorted(good) == sorted(memory.paths_train) and len(x) == len(good)
    assert sorted(report.skipped) == sorted(memory.skipped) and len(report.skipped) == 4
    assert sorted(report.converted) == sorted(memory.converted) and len(report.converted) == 2
    by_path = dict(zip(memory.paths_train, zip(memory.x_train, memory.y_train)))
    for path, image, label in zip(good, x, y):
        np.testing.assert_array_equal(image, by_path[path][0])  # bit for bit, not just close
        assert label == by_path[path][1]
    # a second pass counts nothing twice
    _stream_all(stream)
    assert len(report.skipped) == 4 and len(report.converted) == 2


def test_the_evaluator_reads_a_stream_as_it_reads_the_arrays(folder, tiny_model):
    from robustmask.attacks import FGSM
    from robustmask.evaluation import Evaluator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        memory = load_face_mask_directory(folder, image_size=12, split=0.0)
        stream = stream_face_mask_directory(folder, image_size=12, batch_size=8)
        evaluator = Evaluator(FGSM(), [0.01, 0.05], batch_size=8)
        streamed = evaluator.evaluate(tiny_model, stream)
        files = stream_report(stream).files
        order = [memory.paths_train.index(f) for f in files if f in memory.paths_train]
        in_memory = evaluator.evaluate(tiny_model, (memory.x_train[order], memory.y_train[order]))
        # a stream's batch is a block of 8 files less its bad ones: the same blocks from the arrays
        blocks = [
            [memory.paths_train.index(f) for f in files[i : i + 8] if f in memory.paths_train]
            for i in range(0, len(files), 8)
        ]
        spec = (tf.TensorSpec((None, 12, 12, 3), tf.float32), tf.TensorSpec((None,), tf.int64))
        same_blocks = tf.data.Dataset.from_generator(
            lambda: ((memory.x_train[b], memory.y_train[b]) for b in blocks if b), output_signature=spec
        )
        blockwise = evaluator.evaluate(tiny_model, same_blocks)
    assert any(len(b) < 8 for b in blocks[:-1])  # a bad file shortened a batch: not the arrays' batches
    pd.testing.assert_frame_equal(streamed, blockwise, check_exact=True)
    # against the arrays in batches of 8: each image's result is the same, the loss summed otherwise
    pd.testing.assert_frame_equal(streamed, in_memory, check_exact=False, rtol=1e-6)
    assert streamed["Accuracy (%)"].tolist() == in_memory["Accuracy (%)"].tolist()


def test_shuffle_and_cache(folder, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = _stream_all(stream_face_mask_directory(folder, 20, 8))
        for cache in (None, tmp_path / "cache"):
            stream = stream_face_mask_directory(folder, 20, 8, shuffle=True, seed=3, cache=cache)
            first, second = _stream_all(stream), _stream_all(stream)
            assert not np.array_equal(first[1], second[1]) or not np.array_equal(first[0], second[0])
            for x, y in (first, second):  # every pass: the same images and labels, in another order
                order, ref = np.lexsort(x.reshape(len(x), -1).T), np.lexsort(plain[0].reshape(len(x), -1).T)
                np.testing.assert_array_equal(x[order], plain[0][ref])
                np.testing.assert_array_equal(y[order], plain[1][ref])
            again = _stream_all(stream_face_mask_directory(folder, 20, 8, shuffle=True, seed=3, cache=cache))
            np.testing.assert_array_equal(again[1], first[1])  # the same seed, the same first order
        assert list(tmp_path.glob("cache*")), "the cache was not written"


@pytest.mark.parametrize("split", [1.0, -0.1, True, False, "0.1", None])
def test_both_loaders_refuse_a_bad_split_and_a_file_for_a_folder_with_one_message(tmp_path, folder, split):
    """One check (`check_test_split`, `_class_root`) serves the loader and the stream: the same words."""
    stream = lambda path, **kw: stream_face_mask_directory(path, 20, 8, **kw)  # noqa: E731
    for load in (load_face_mask_directory, stream):
        kwargs = {"subset": "train"} if load is stream else {}
        with pytest.raises(RobustmaskError) as caught:
            load(folder, split=split, **kwargs)
        assert str(caught.value) == f"split must be a test fraction with 0 <= split < 1, got {split!r}"
        (tmp_path / "faces.png").write_bytes(b"x")
        with pytest.raises(DataError) as caught:
            load(tmp_path / "faces.png")
        assert str(caught.value) == (
            f"data folder {tmp_path / 'faces.png'} is not a folder (expected one sub-folder per class)"
        )


def test_errors_are_one_line(tmp_path, folder):
    with pytest.raises(DataError, match="does not exist"):
        stream_face_mask_directory(tmp_path / "nothing")
    (tmp_path / "empty" / "with_mask").mkdir(parents=True)
    with pytest.raises(DataError, match="class 'with_mask' has no readable image"):
        stream_face_mask_directory(tmp_path / "empty")
    with pytest.raises(RobustmaskError, match="cache folder .* does not exist"):
        stream_face_mask_directory(folder, cache=tmp_path / "no" / "cache")
    with pytest.raises(RobustmaskError, match="no stream report"):
        stream_report(stream_face_mask_directory(folder, 20).take(1))


# ---------------------------------------------------------------------------------------------- memory


def _peak_python_bytes(make_dataset) -> int:
    """Peak of Python-heap allocations (NumPy arrays included) while a dataset is made and read once."""
    gc.collect()
    tracemalloc.start()
    try:
        for x, _ in make_dataset():
            float(tf.reduce_sum(x))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _holds_the_data(make_for, small_root, large_root, image_bytes, n_small) -> bool:
    """Does reading 4x the files raise the peak by more than half the small folder's own size?

    A loader that keeps the data grows by 3x the small folder's size; one that streams, by nothing
    that scales with the files."""
    _peak_python_bytes(lambda: make_for(small_root))  # warm: tracing, thread pools, imports
    small = _peak_python_bytes(lambda: make_for(small_root))
    large = _peak_python_bytes(lambda: make_for(large_root))
    return large - small > 0.5 * n_small * image_bytes


def _pipeline_holds(dataset, data_bytes: int) -> bool:
    """Does the tf.data pipeline itself keep data: an in-memory cache, or tensors of the data in its
    graph (``from_tensor_slices`` of arrays)? File names are allowed (a tenth of the data's size)."""
    serialized = dataset._as_serialized_graph().numpy()
    graph = tf.compat.v1.GraphDef.FromString(serialized)
    memory_cache = any(
        "MemoryCache" in node.attr["value"].tensor.resource_handle_val[0].maybe_type_name
        for node in graph.node
        if node.op == "Const" and node.attr["value"].tensor.resource_handle_val
    )
    return memory_cache or len(serialized) > 0.1 * data_bytes


@pytest.fixture(scope="module")
def two_sizes(tmp_path_factory):
    small = write_synthetic_face_mask_directory(
        tmp_path_factory.mktemp("small"), n_per_class=10, image_size=48
    )
    large = write_synthetic_face_mask_directory(
        tmp_path_factory.mktemp("large"), n_per_class=40, image_size=48
    )
    return small, large, 30


def test_the_stream_does_not_hold_the_data(two_sizes):
    """Reading 4x the files must not raise the peak of Python allocations by half the small folder's
    size, nor may the pipeline keep images (measured: +8 KB against 830 KB for the small folder's
    30 images; the in-memory loader adds 5 MB)."""
    small, large, n_small = two_sizes
    image_bytes = 48 * 48 * 3 * 4
    stream = lambda root: stream_face_mask_directory(root, 48, 8)  # noqa: E731
    assert not _holds_the_data(stream, small, large, image_bytes, n_small)
    assert not _pipeline_holds(stream(large), 120 * image_bytes)

    # the checks have teeth: a loader that decodes the folder into memory first fails both ...
    def holding(root):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = load_face_mask_directory(root, 48, split=0.0)
        return tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train)).batch(8)

    assert _holds_the_data(holding, small, large, image_bytes, n_small)
    assert _pipeline_holds(holding(large), 120 * image_bytes)
    # ... and a stream that caches in memory (TensorFlow's heap, unseen by tracemalloc) fails the second
    assert _pipeline_holds(stream(large).cache(), 120 * image_bytes)
