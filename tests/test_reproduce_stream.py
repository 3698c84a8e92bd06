"""``reproduce --stream``: the study with its training images read from disk batch by batch. Algorithm 2
on every streamed image (subset 1.0), the paper's future work, runs; the training folder is never
loaded into memory; a frozen base's head trains on the stream's features as on the arrays'."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from robustmask.cli.main import main
from robustmask.datasets import write_synthetic_face_mask_directory
from robustmask.reproduce import StudyConfig, run_study

SIZE = 16


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """10 synthetic faces a class at 16 px and one broken file."""
    root = write_synthetic_face_mask_directory(tmp_path_factory.mktemp("study"), 10, SIZE, seed=3)
    (root / "with_mask" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 4)
    return root


@pytest.fixture
def never_in_memory(folder, monkeypatch):
    """Loading the folder into memory fails the test."""
    from robustmask.datasets import source

    def load(path, *args, **kwargs):
        raise AssertionError(f"{path} was loaded into memory")

    monkeypatch.setattr(source, "load_face_mask_directory", load)


def _tiny(folder, **settings):
    return StudyConfig.quick(
        data=str(folder),
        stream=True,
        image_size=SIZE,
        weights="none",
        epochs=1,
        split=0.2,
        subset=1.0,
        defense_epochs=1,
        robust_image_size=SIZE,
        robust_epochs=1,
        robust_square_queries=5,
        robust_suite_square_queries=5,
        robust_apgd_iter=2,
        robust_epsilons=(4 / 255,),
        **settings,
    )


@pytest.mark.slow
def test_the_study_trains_algorithm_2_on_every_streamed_image(folder, tmp_path, never_in_memory, monkeypatch):
    import tensorflow as tf

    from robustmask.defenses import MultiEpsilonAdversarialTrainer

    fitted = []
    real_fit = MultiEpsilonAdversarialTrainer.fit

    def fit(self, model, train_data, **kwargs):
        fitted.append((self.subset, train_data))
        return real_fit(self, model, train_data, **kwargs)

    monkeypatch.setattr(MultiEpsilonAdversarialTrainer, "fit", fit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_study(
            _tiny(folder, robust=False), tmp_path / "run", progress=False, log=lambda *_: None
        )
    ((subset, train_data),) = fitted
    assert subset == 1.0 and isinstance(train_data, tf.data.Dataset)  # Algorithm 2 read the stream
    # 31 files, 2 of each class held out (round(0.2 * 10)), the broken file not counted
    assert (summary["data"]["train"], summary["data"]["test"]) == (31 - 6 - 1, 6)
    assert summary["settings"]["stream"] is True
    assert (tmp_path / "run" / "report.html").is_file()


def test_the_robust_stage_trains_on_the_stream(folder, never_in_memory, monkeypatch):
    import tensorflow as tf

    from robustmask._study_steps import _robust_comparison
    from robustmask.defenses import presets

    compared = []

    def compare(x_train, x_test, y_train, y_test, *args, **kwargs):
        compared.append((x_train, x_test, y_train, y_test))
        return "table", {}

    monkeypatch.setattr(presets, "robust_comparison", compare)
    _, _, (x_test, y_test) = _robust_comparison(_tiny(folder), lambda *_: None)
    ((x_train, x_test_given, y_train, y_test_given),) = compared
    assert isinstance(x_train, tf.data.Dataset) and y_train is None
    assert x_train.element_spec[0].shape[1:] == (SIZE, SIZE, 3)
    # the robust preset's 12% of each class (round(0.12 * 10) = 1; the broken file is in no test share)
    assert x_test is x_test_given and np.bincount(y_test_given).tolist() == [1, 1, 1]


def test_a_frozen_base_trains_its_head_on_the_streams_features_as_on_the_arrays(tmp_path):
    import keras

    from robustmask._study_steps import _load_data, _train_undefended

    def frozen_model():
        keras.utils.set_random_seed(0)
        base = keras.layers.Conv2D(4, 3, name="base")
        base.trainable = False
        model = keras.Sequential(
            [
                keras.Input((SIZE, SIZE, 3)),
                base,
                keras.layers.Flatten(),
                keras.layers.Dense(3, activation="softmax"),
            ]
        )
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    folder = write_synthetic_face_mask_directory(tmp_path, 10, SIZE, seed=3)  # no bad file: the same split
    runs = []
    for stream in (False, True):
        config = StudyConfig.quick(data=str(folder), stream=stream, image_size=SIZE, epochs=2, split=0.2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = _load_data(config, lambda *_: None)
            model = frozen_model()
            keras.utils.set_random_seed(1)
            history = _train_undefended(model, data, config, False, lambda *_: None)
        runs.append((model.get_weights(), history.history))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert runs[0][1]["loss"] == pytest.approx(runs[1][1]["loss"], rel=1e-6)


def test_reproduce_stream_needs_a_folder(tmp_path, capsys):
    assert main(["reproduce", "--stream", "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "--stream (stream=True) reads a folder: give --data DIR" in error and error.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_the_flag_reaches_the_study(folder, tmp_path, monkeypatch):
    import robustmask.reproduce as reproduce

    seen = []
    monkeypatch.setattr(reproduce, "run_study", lambda config, *args, **kwargs: seen.append(config))
    assert main(["reproduce", "--stream", "--data", str(folder), "--out", str(tmp_path / "run")]) == 0
    assert seen[0].stream is True and seen[0].images.data == str(folder)
    json.dumps(seen[0].settings())  # summary.json takes the setting
