"""One home each: the loader of "a folder or the synthetic faces" (`robustmask.datasets.source`), the
trainer of the undefended CNN (`robustmask.defenses.presets.train_undefended`), and the study's
settings in small groups (`robustmask.reproduce.StudyConfig`).

Every caller's arrays are compared with an independent computation: the synthetic generator and the
folder loader called directly, and scikit-learn's split.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from robustmask.cli.main import main
from robustmask.datasets import CLASS_NAMES, load_face_mask_directory, synthetic_face_masks
from robustmask.datasets.source import load_faces
from robustmask.errors import DataError, RobustmaskError

SIZE = 16


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A Kaggle-layout folder written by `robustmask synthetic` (3 per class, seed 5)."""
    out = tmp_path_factory.mktemp("faces") / "faces"
    argv = ["synthetic", "--out", str(out), "--n-per-class", "3", "--image-size", str(SIZE), "--seed", "5"]
    assert main(argv) == 0
    return out


def cli_args(**given) -> argparse.Namespace:
    return argparse.Namespace(**{"data": None, "n_per_class": 4, "seed": 3, "class_names": None, **given})


def as_pixels(x: np.ndarray) -> list[bytes]:
    """Each image as 8-bit pixels, sorted: the same multiset whatever the order."""
    return sorted(np.round(image * 255).astype(np.uint8).tobytes() for image in x)


# ------------------------------------------------------------------------------------------ the loader
def test_the_synthetic_default_is_the_generator_s_arrays():
    x, y = synthetic_face_masks(n_per_class=4, image_size=SIZE, seed=3)
    faces = load_faces(None, image_size=SIZE, n_per_class=4, seed=3)
    np.testing.assert_array_equal(faces.x_train, x)
    np.testing.assert_array_equal(faces.y_train, y)
    assert faces.x_test.shape == (0, SIZE, SIZE, 3) and faces.y_test.shape == (0,)
    assert faces.class_names == CLASS_NAMES
    binary = load_faces(
        None, image_size=SIZE, n_per_class=4, seed=3, class_names=["without_mask", "with_mask"]
    )
    xb, yb = synthetic_face_masks(4, SIZE, seed=3, classes=["without_mask", "with_mask"])
    np.testing.assert_array_equal(binary.x_train, xb)
    np.testing.assert_array_equal(binary.y_train, yb)
    assert binary.class_names == ("without_mask", "with_mask")


def test_a_synthetic_split_is_scikit_learn_s_stratified_split():
    x, y = synthetic_face_masks(n_per_class=10, image_size=SIZE, seed=2)
    expected = train_test_split(x, y, test_size=0.2, stratify=y, random_state=2)
    faces = load_faces(None, image_size=SIZE, n_per_class=10, seed=2, split=0.2)
    for got, want in zip((faces.x_train, faces.x_test, faces.y_train, faces.y_test), expected):
        np.testing.assert_array_equal(got, want)


def test_a_folder_is_the_directory_loader_s_arrays_and_the_images_written(folder):
    faces = load_faces(folder, image_size=SIZE, seed=1)
    direct = load_face_mask_directory(folder, image_size=SIZE, split=0.0, seed=1)
    np.testing.assert_array_equal(faces.x_train, direct.x_train)
    np.testing.assert_array_equal(faces.y_train, direct.y_train)
    assert len(faces.x_test) == 0 and faces.class_names == CLASS_NAMES
    # ... and they are the images `robustmask synthetic` drew, whatever the order
    x, y = synthetic_face_masks(n_per_class=3, image_size=SIZE, seed=5)
    for label in range(3):
        assert as_pixels(faces.x_train[faces.y_train == label]) == as_pixels(x[y == label])
    split = load_faces(folder, image_size=SIZE, seed=1, split=0.34)
    direct = load_face_mask_directory(folder, image_size=SIZE, split=0.34, seed=1)
    np.testing.assert_array_equal(split.x_test, direct.x_test)
    np.testing.assert_array_equal(split.y_train, direct.y_train)


def test_the_loader_refuses_in_one_line():
    with pytest.raises(
        DataError, match="^the synthetic faces are square; got image_size 16x24: give a folder"
    ):
        load_faces(None, image_size=(16, 24))
    with pytest.raises(RobustmaskError, match="'masked' is not a synthetic class") as error:
        load_faces(None, image_size=SIZE, class_names=["masked"])
    assert len(str(error.value).splitlines()) == 1


# ---------------------------------------------------------------------------------- every caller of it
def test_the_commands_images_are_the_loader_s(folder):
    from robustmask.cli._data import defend_data, images_for

    synthetic = images_for(cli_args(), SIZE)
    x, y = synthetic_face_masks(n_per_class=4, image_size=SIZE, seed=3)
    np.testing.assert_array_equal(synthetic.x_train, x)
    np.testing.assert_array_equal(synthetic.y_train, y)
    from_folder = images_for(cli_args(data=str(folder)), SIZE)
    np.testing.assert_array_equal(
        from_folder.x_train, load_face_mask_directory(folder, image_size=SIZE, split=0.0, seed=3).x_train
    )
    # defend: the test share of the same images (at least 12%, about 50 images, at most a quarter)
    (x_train, x_test, y_train, y_test), names, _ = defend_data(cli_args(test_data=None, n_per_class=40), SIZE)
    x, y = synthetic_face_masks(n_per_class=40, image_size=SIZE, seed=3)
    want = train_test_split(x, y, test_size=0.25, stratify=y, random_state=3)
    for got, expected in zip((x_train, x_test, y_train, y_test), want):
        np.testing.assert_array_equal(got, expected)
    assert names == list(CLASS_NAMES)


def test_the_robust_preset_and_the_study_split_the_loader_s_images(folder):
    from robustmask import reproduce
    from robustmask.defenses.presets import robust_data

    x, y = synthetic_face_masks(n_per_class=10, image_size=SIZE, seed=4)
    want = train_test_split(x, y, test_size=0.12, stratify=y, random_state=4)
    for got, expected in zip(robust_data(image_size=SIZE, n_per_class=10, seed=4), want):
        np.testing.assert_array_equal(got, expected)
    direct = load_face_mask_directory(folder, image_size=SIZE, split=0.12, seed=4)
    got = robust_data(str(folder), image_size=SIZE, seed=4)
    np.testing.assert_array_equal(got[1], direct.x_test)
    np.testing.assert_array_equal(got[2], direct.y_train)

    config = reproduce.StudyConfig.quick(image_size=SIZE, n_per_class=10, split=0.2, seed=4)
    data = reproduce._load_data(config, log=lambda *_: None)
    want = train_test_split(x, y, test_size=0.2, stratify=y, random_state=4)
    for got, expected in zip((data.x_train, data.x_test, data.y_train, data.y_test), want):
        np.testing.assert_array_equal(got, expected)
    assert data.source == "synthetic" and data.class_names == CLASS_NAMES


# ------------------------------------------------------------------------------------ the one trainer
def test_train_undefended_is_the_seeded_fit_and_recalibrates_when_asked():
    import keras

    from robustmask.defenses.presets import train_undefended
    from robustmask.zoo import facemask_cnn

    x, y = synthetic_face_masks(n_per_class=8, image_size=SIZE, seed=0)
    keras.utils.set_random_seed(6)  # the same draws, by hand
    by_hand = facemask_cnn(x.shape[1:], num_classes=3)
    by_hand.fit(x, y, epochs=1, batch_size=64, verbose=0)
    trained = train_undefended(x, y, epochs=1, seed=6)
    for got, want in zip(trained.get_weights(), by_hand.get_weights()):
        np.testing.assert_array_equal(got, want)

    calibrated = train_undefended(x, y, epochs=1, seed=6, recalibrate=True, num_classes=4)
    assert calibrated.output_shape == (None, 4)
    bn = next(layer for layer in calibrated.layers if isinstance(layer, keras.layers.BatchNormalization))
    conv = keras.Model(calibrated.inputs[0], calibrated.layers[0].output)  # the first BatchNorm's input
    inputs = np.asarray(conv(x, training=False))
    np.testing.assert_allclose(np.asarray(bn.moving_mean), inputs.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(bn.moving_variance), inputs.var(axis=(0, 1, 2)), rtol=1e-3, atol=1e-5
    )
    # without: the running averages of one step, far from those statistics
    first_bn = next(layer for layer in trained.layers if isinstance(layer, keras.layers.BatchNormalization))
    own = np.asarray(keras.Model(trained.inputs[0], trained.layers[0].output)(x, training=False))
    assert not np.allclose(np.asarray(first_bn.moving_mean), own.mean(axis=(0, 1, 2)), atol=1e-3)


# ------------------------------------------------------------------------------- the study's settings
#: The settings summary.json listed before they were grouped: their flat names stay.
FLAT = [
    "preset", "data", "image_size", "n_per_class", "split", "stream", "seed", "weights", "architecture",
    "mobilenet_preprocessing", "epochs", "batch_size", "attack", "clip", "epsilons", "extra_epsilons",
    "defense_source", "subset", "defense_epochs", "defense_batch_size", "robust", "robust_defense",
    "robust_image_size", "robust_n_per_class", "robust_epochs", "robust_square_queries",
    "robust_apgd_iter", "robust_suite_square_queries", "robust_epsilons",
]  # fmt: skip


def test_the_study_config_is_grouped_and_its_flat_names_still_work():
    from robustmask.reproduce import DataSettings, RobustSettings, StudyConfig

    config = StudyConfig.quick(image_size=64, defense_epochs=2, robust=False, robust_epochs=3)
    assert config.images == DataSettings(image_size=64)
    assert (config.defense.epochs, config.robust_stage.enabled, config.robust_stage.epochs) == (2, False, 3)
    assert (config.image_size, config.defense_epochs, config.robust, config.robust_epochs) == (
        64,
        2,
        False,
        3,
    )
    assert sorted(config.settings()) == sorted(FLAT)
    assert config.settings()["robust_epochs"] == 3 and json.dumps(config.settings())
    assert StudyConfig(robust_stage=RobustSettings(epochs=5), robust_defense="trades").robust_stage == (
        RobustSettings(epochs=5, defense="trades")
    )
    smaller = dataclasses.replace(config, image_size=48)
    assert (smaller.images.image_size, config.images.image_size) == (48, 64)
    assert copy.deepcopy(config) == config and smaller != config
    config.epochs = 4  # a flat name set: its group replaced, the others kept
    assert config.training.epochs == 4 and config.images.image_size == 64
    with pytest.raises(TypeError, match="unexpected keyword argument 'image_sise'"):
        StudyConfig.quick(image_sise=64)
    with pytest.raises(AttributeError, match="image_sise"):
        config.image_sise  # noqa: B018
    full = StudyConfig.full()
    assert (full.preset, full.image_size, full.n_per_class, full.subset, full.extra_epsilons) == (
        "full",
        224,
        4845,
        1.0,
        (),
    )
