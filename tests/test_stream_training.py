"""Training from a folder streamed from disk (issue 19, item 3): Algorithm 2 over the whole folder
(subset 1.0) reads it batch by batch and ends with the weights of the same run on the same images
held in memory; `stream_faces` splits a folder as `load_faces` does."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tensorflow as tf

from conftest import build_cnn
from robustmask.datasets import load_faces, stream_faces, write_synthetic_face_mask_directory
from robustmask.datasets.streaming import stream_report
from robustmask.defenses import MultiEpsilonAdversarialTrainer
from robustmask.errors import DataError

SIZE = 16


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """8 synthetic faces a class at 16 px, written by the `robustmask synthetic` writer."""
    return write_synthetic_face_mask_directory(tmp_path_factory.mktemp("train"), 8, SIZE, seed=2)


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(0)
    model = build_cnn(3, size=SIZE)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def _algorithm_2(model, data, epochs=2):
    trainer = MultiEpsilonAdversarialTrainer([0.01, 0.03], subset=1.0, epochs=epochs, batch_size=6, seed=1)
    defended, history = trainer.fit(model, data, verbose=0)
    return defended, history


def test_stream_faces_splits_as_load_faces(faces):
    memory = load_faces(faces, image_size=SIZE, split=0.25, seed=3)
    streamed = stream_faces(faces, image_size=SIZE, batch_size=5, split=0.25, seed=3)
    x = np.concatenate([b.numpy() for b, _ in streamed.train])
    y = np.concatenate([b.numpy() for _, b in streamed.train])
    np.testing.assert_array_equal(x, memory.x_train)  # the same images, in the same order, bit for bit
    np.testing.assert_array_equal(y, memory.y_train)
    np.testing.assert_array_equal(streamed.x_test, memory.x_test)
    np.testing.assert_array_equal(streamed.y_test, memory.y_test)
    assert streamed.class_names == memory.class_names
    assert streamed.report.files == memory.paths_train
    with pytest.raises(DataError, match="stream_faces reads a folder: give data=DIR"):
        stream_faces(None, image_size=SIZE)


def test_the_test_shares_bad_files_are_reported_with_the_training_stream(faces, tmp_path):
    import shutil

    folder = shutil.copytree(faces, tmp_path / "faces")
    bad = sorted((folder / "with_mask").rglob("*.png"))
    for file in bad:
        file.write_bytes(b"not an image")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        streamed = stream_faces(folder, image_size=SIZE, split=0.25, seed=3)
    assert 1 not in streamed.y_test  # the bad class's test files were skipped ...
    skipped = {path for path, _ in streamed.report.skipped}
    test_files = set(map(str, bad)) - set(streamed.report.files)
    assert test_files and test_files <= skipped  # ... and reported where the training stream's are


def test_algorithm_2_over_a_streamed_folder_ends_with_the_in_memory_weights(faces, model):
    """The whole folder (subset 1.0), streamed, against the same images in the same order held in
    memory as a dataset: the same weights. (Given as arrays, the trainer draws another order: a
    permutation of all the images per epoch, which a stream cannot afford; the stream is shuffled
    within windows of eight batches instead.)"""
    streamed = stream_faces(faces, image_size=SIZE, batch_size=5)
    memory = load_faces(faces, image_size=SIZE)  # the same seeded order as the stream's files
    in_memory = tf.data.Dataset.from_tensor_slices((memory.x_train, memory.y_train)).batch(5)
    from_disk, history = _algorithm_2(model, streamed.train)
    held, held_history = _algorithm_2(model, in_memory)
    for a, b in zip(from_disk.get_weights(), held.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(history.history["loss"], held_history.history["loss"], rtol=1e-5)
    changed = [not np.allclose(a, b) for a, b in zip(from_disk.get_weights(), model.get_weights())]
    assert any(changed), "the stream trained nothing"


def test_every_streamed_image_is_read_from_disk_once_an_epoch(faces, model, monkeypatch):
    """Each epoch of Algorithm 2 over the stream decodes every file of the folder exactly once, after
    one counting pass: nothing is dropped or repeated, and nothing is kept in memory between epochs
    (a trainer that held the decoded images would decode each file once in all)."""
    from robustmask.datasets import streaming

    reads: list[str] = []
    real = streaming._read_rgb
    monkeypatch.setattr(streaming, "_read_rgb", lambda path, size: (reads.append(path), real(path, size))[1])
    streamed = stream_faces(faces, image_size=SIZE, batch_size=5)
    for epochs in (1, 3):
        reads.clear()
        _algorithm_2(model, streamed.train, epochs=epochs)
        counts = [reads.count(f) for f in streamed.report.files]
        # The counting pass and one pass an epoch, and at most one pass more: the first batch read
        # ahead as the model's sample, and tf.data's prefetch, which on a busy machine may read the
        # next epoch's batches ahead before training stops. A trainer that held the decoded images
        # reads each file twice in all; one that dropped or repeated images falls outside the band.
        assert min(counts) >= epochs + 1 and max(counts) <= epochs + 2, counts
        assert set(reads) <= set(streamed.report.files)


def test_a_bad_file_is_skipped_and_training_runs(faces, model, tmp_path):
    import shutil

    folder = shutil.copytree(faces, tmp_path / "faces")
    (folder / "with_mask" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        streamed = stream_faces(folder, image_size=SIZE, batch_size=5)
        defended, history = _algorithm_2(model, streamed.train, epochs=1)
    assert [path for path, _ in stream_report(streamed.train).skipped] == [
        str(folder / "with_mask" / "broken.png")
    ]
    assert np.isfinite(history.history["loss"]).all()


def test_shuffled_batches_reorders_every_pass_within_a_window(faces):
    """What the undefended model's ``fit`` reads from a stream: every image once a pass, in batches of
    the asked size, a new order every pass (the same orders for the same seed), no image more than a
    window of 4 batches ahead of its place in the stream."""
    from robustmask.datasets import shuffled_batches

    streamed = stream_faces(faces, image_size=SIZE, batch_size=5)
    order = [float(x.numpy().sum()) for x, _ in streamed.train.unbatch()]  # a key per image (all differ)
    assert len(set(order)) == len(order) == 24

    def passes(seed):
        data = shuffled_batches(streamed.train, 3, seed=seed)
        return [[float(x.sum()) for b, _ in data for x in b.numpy()] for _ in range(2)], [
            len(y) for _, y in data
        ]

    (first, second), sizes = passes(seed=4)
    assert sizes == [3] * 8 and sorted(first) == sorted(second) == sorted(order)
    assert first != second and first != order  # shuffled, and anew every pass
    assert passes(seed=4)[0] == [first, second]  # the same seed, the same orders
    assert all(order.index(key) - position <= 4 * 3 - 1 for position, key in enumerate(first))
