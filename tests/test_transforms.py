"""Input transforms: forward passes against independent NumPy/PIL/SciPy code, BPDA gradients, and the
evidence that a transform which only masks gradients falls to an adaptive attack (BPDA, EOT)."""

from __future__ import annotations

import io

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import FACE_SIZE, trained_face_cnn
from PIL import Image
from scipy import ndimage

from robustmask.attacks.pgd import PGD
from robustmask.datasets import synthetic_face_masks
from robustmask.evaluation import zero_gradient_share
from robustmask.defenses.randomized import RandomResizePad, eot_model
from robustmask.defenses.transforms import (
    FeatureSqueezing,
    InputTransformDefense,
    JPEGCompression,
    SpatialSmoothing,
    median_filter,
)
from robustmask.errors import ModelError, RobustmaskError
from robustmask.modelinfo import inspect_model

SIZE = FACE_SIZE
EPS = 8 / 255


def tiny_face_model(size=SIZE, n_per_class=50, epochs=20, activation="softmax"):
    """A 2-conv CNN (8 filters) trained on 150 synthetic 24-px faces; ~70% on held-out faces."""
    x, y = synthetic_face_masks(n_per_class=n_per_class, image_size=size, seed=0)
    return trained_face_cnn(x, y, epochs=epochs, activation=activation)


@pytest.fixture(scope="module")
def model(face_model):
    return face_model


@pytest.fixture(scope="module")
def test_set(face_data):
    return face_data[1]


def accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))


# ---------------------------------------------------------------------- forward passes
def test_jpeg_matches_a_pil_round_trip():
    x, _ = synthetic_face_masks(n_per_class=2, image_size=SIZE, seed=3)
    for quality in (50, 90):
        out = JPEGCompression(quality)(x).numpy()
        reference = []
        for image in x:
            buffer = io.BytesIO()
            # TF's float -> uint8 conversion is floor(x * 255.5); PIL gets the same 8-bit image.
            Image.fromarray(np.floor(image * 255.5).astype(np.uint8)).save(
                buffer, format="JPEG", quality=quality
            )
            reference.append(np.asarray(Image.open(io.BytesIO(buffer.getvalue())), np.float32) / 255.0)
        difference = np.abs(out - np.stack(reference))
        # libjpeg builds differ slightly (DCT method); JPEG itself changes the image far more.
        assert difference.mean() < 2 / 255 and difference.max() <= 8 / 255 + 1e-6
        assert np.abs(out - x).mean() > 4 / 255
        assert out.shape == x.shape and out.dtype == np.float32


@pytest.mark.parametrize("bits", [1, 3, 5, 8])
def test_bit_depth_squeezing_is_exact(bits):
    x = np.random.default_rng(bits).uniform(-0.1, 1.1, (4, 9, 9, 3)).astype(np.float32)
    levels = np.float32(2**bits - 1)
    expected = np.round(np.clip(x, 0, 1) * levels) / levels
    np.testing.assert_array_equal(FeatureSqueezing(bits)(x).numpy(), expected)


@pytest.mark.parametrize("window", [1, 3, 5])
def test_median_filter_matches_scipy(window):
    x = np.random.default_rng(window).uniform(0, 1, (3, 11, 10, 3)).astype(np.float32)
    expected = ndimage.median_filter(x, size=(1, window, window, 1), mode="reflect")
    np.testing.assert_array_equal(SpatialSmoothing(window)(x).numpy(), expected)
    np.testing.assert_array_equal(median_filter(tf.constant(x), window).numpy(), expected)
    squeezed = np.round(x * 15) / 15
    np.testing.assert_array_equal(
        FeatureSqueezing(4, median=window)(x).numpy(),
        ndimage.median_filter(squeezed, size=(1, window, window, 1), mode="reflect"),
    )


def test_random_resize_pad_places_a_shrunk_image_at_random():
    x = np.full((64, 16, 16, 3), 0.6, np.float32)  # resizing a constant image keeps it constant
    layer = RandomResizePad(max_shrink=4, seed=0)
    first, second = layer(x).numpy(), layer(x).numpy()
    assert first.shape == x.shape
    sizes = set()
    for image in first:
        inside = np.argwhere(image[..., 0] > 0)
        (top, left), (bottom, right) = inside.min(0), inside.max(0) + 1
        assert bottom - top == right - left and 12 <= bottom - top <= 16
        np.testing.assert_allclose(image[top:bottom, left:right], 0.6, atol=1e-6)
        assert np.count_nonzero(image[..., 0]) == (bottom - top) ** 2
        sizes.add(bottom - top)
    assert len(sizes) >= 3 and not np.array_equal(first, second)


# ---------------------------------------------------------------------- the defended model
def test_defence_wraps_any_model_and_keeps_its_output_kind(model, test_set):
    x = test_set[0][:8]
    before = [w.copy() for w in model.get_weights()]
    defended, history = InputTransformDefense([FeatureSqueezing(5), JPEGCompression(75)]).fit(model, None)
    assert history is None and defended is not model
    assert inspect_model(defended).output == "probabilities"
    expected = model.predict(JPEGCompression(75)(FeatureSqueezing(5)(x)), verbose=0)
    np.testing.assert_allclose(defended.predict(x, verbose=0), expected, atol=1e-6)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    logits = tiny_face_model(epochs=1, activation=None)
    assert inspect_model(InputTransformDefense(SpatialSmoothing(3)).fit(logits, None)[0]).output == "logits"


def test_defended_model_saves_and_loads(model, test_set, tmp_path):
    transforms = [
        FeatureSqueezing(5, median=3),
        JPEGCompression(80, gradient="bpda"),
        RandomResizePad(2, seed=1),
    ]
    defended, _ = InputTransformDefense(transforms).fit(model, None)
    defended.save(tmp_path / "defended.keras")
    loaded = keras.saving.load_model(tmp_path / "defended.keras")
    assert [layer.get_config() for layer in loaded.layers[:3]] == [
        layer.get_config() for layer in defended.layers[:3]
    ]
    deterministic, _ = InputTransformDefense(transforms[:2]).fit(model, None)
    deterministic.save(tmp_path / "deterministic.keras")
    x = test_set[0][:4]
    np.testing.assert_allclose(
        keras.saving.load_model(tmp_path / "deterministic.keras").predict(x, verbose=0),
        deterministic.predict(x, verbose=0),
        atol=1e-6,
    )


@pytest.mark.parametrize("transform", [JPEGCompression(75), FeatureSqueezing(4)])
def test_exact_gradient_is_zero_and_bpda_gradient_is_the_models_at_the_transformed_point(
    model, test_set, transform
):
    x, y = test_set[0][:16], test_set[1][:16]
    y_onehot = tf.one_hot(y, 3)
    pgd = PGD(steps=1)
    exact, _ = InputTransformDefense(transform, gradient="exact").fit(model, None)
    bpda, _ = InputTransformDefense(transform, gradient="bpda").fit(model, None)
    x_t = tf.constant(x)
    assert np.count_nonzero(pgd.gradient(exact, x_t, y_onehot).numpy()) == 0  # masked
    assert zero_gradient_share(pgd, exact, x, y) == 100.0 and zero_gradient_share(pgd, bpda, x, y) == 0.0
    transformed = transform(x_t)
    expected = pgd.gradient(model, transformed, y_onehot).numpy()
    got = pgd.gradient(bpda, x_t, y_onehot).numpy()
    assert np.count_nonzero(expected) > 0.5 * expected.size
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-8)
    # Same forward pass whatever the backward pass.
    np.testing.assert_array_equal(exact.predict(x, verbose=0), bpda.predict(x, verbose=0))


def test_median_filter_does_not_mask_and_none_does(model, test_set):
    x, y = tf.constant(test_set[0][:8]), tf.one_hot(test_set[1][:8], 3)
    exact, _ = InputTransformDefense(SpatialSmoothing(3)).fit(model, None)
    none, _ = InputTransformDefense(SpatialSmoothing(3), gradient="none").fit(model, None)
    assert np.count_nonzero(PGD(steps=1).gradient(exact, x, y).numpy()) > 0
    assert np.count_nonzero(PGD(steps=1).gradient(none, x, y).numpy()) == 0


@pytest.mark.parametrize("transform", [JPEGCompression(75), FeatureSqueezing(4)])
def test_transform_only_stops_the_naive_attack(model, test_set, transform):
    """Naive PGD sees zero gradients and leaves accuracy where it was; BPDA-PGD takes most of it."""
    x, y = test_set
    deployed, _ = InputTransformDefense(transform).fit(model, None)
    attacker, _ = InputTransformDefense(transform, gradient="bpda").fit(model, None)
    pgd = PGD(steps=10, seed=0)
    clean = accuracy(deployed, x, y)
    naive = accuracy(deployed, pgd(deployed, x, y, eps=EPS), y)
    adaptive = accuracy(deployed, pgd(attacker, x, y, eps=EPS), y)
    print(f"{type(transform).__name__}: clean {clean:.3f}, naive PGD {naive:.3f}, BPDA-PGD {adaptive:.3f}")
    assert clean > 0.5
    assert naive >= clean - 0.1  # masked: the naive attack does (almost) nothing
    assert adaptive <= naive - 0.3  # the adaptive attack does
    assert adaptive <= 0.3


def test_median_smoothing_passes_gradients_so_plain_pgd_breaks_it(model, test_set):
    x, y = test_set
    deployed, _ = InputTransformDefense(SpatialSmoothing(3)).fit(model, None)
    pgd = PGD(steps=10, seed=0)
    undefended = accuracy(model, pgd(model, x, y, eps=EPS), y)
    clean = accuracy(deployed, x, y)
    plain = accuracy(deployed, pgd(deployed, x, y, eps=EPS), y)
    print(
        f"undefended: clean {accuracy(model, x, y):.3f}, PGD {undefended:.3f}; "
        f"SpatialSmoothing(3): clean {clean:.3f}, PGD through the median {plain:.3f}"
    )
    assert undefended <= 0.1 and plain <= 0.3


def test_eot_model_averages_probabilities_and_the_eot_attack_is_stronger(model, test_set):
    x, y = test_set
    expected = eot_model(model, samples=3)  # deterministic model: the average is the model itself
    np.testing.assert_allclose(tf.nn.softmax(expected(x[:8])).numpy(), model(x[:8]).numpy(), atol=1e-5)
    assert inspect_model(expected).output == "logits"
    defended, _ = InputTransformDefense(RandomResizePad(max_shrink=6, seed=0)).fit(model, None)
    pgd = PGD(steps=10, seed=0)
    keras.utils.set_random_seed(1)
    naive = accuracy(defended, pgd(defended, x, y, eps=EPS / 2), y)
    eot = accuracy(defended, pgd(eot_model(defended, samples=8), x, y, eps=EPS / 2), y)
    print(
        f"RandomResizePad(6): clean {accuracy(defended, x, y):.3f}, eps 4/255: PGD on one draw {naive:.3f}, "
        f"EOT-PGD (8 draws) {eot:.3f}"
    )
    assert eot <= naive


class _DrawByRow(keras.layers.Layer):
    """A randomised model whose draws are known: row r of the batch it runs on gets the logits
    mean(image) * (1, 0, -1) + 0.3 * r * (1, -1, 0), so copy k of a batch tiled k times is draw k."""

    activation = "linear"  # logits, as robustmask.modelinfo reads a layer

    def call(self, x):
        rows = tf.cast(tf.range(tf.shape(x)[0]), tf.float32)[:, None]
        means = tf.reduce_mean(x, axis=[1, 2, 3])[:, None]
        return means * tf.constant([[1.0, 0.0, -1.0]]) + 0.3 * rows * tf.constant([[1.0, -1.0, 0.0]])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 3)


def test_eot_model_averages_exactly_samples_draws():
    """log(mean of the probabilities of `samples` draws), against NumPy: one draw, or the wrong number,
    gives other numbers."""
    randomised = keras.Sequential([keras.Input((4, 5, 3)), _DrawByRow()])
    x = np.random.default_rng(0).uniform(0, 1, (6, 4, 5, 3)).astype(np.float32)
    means = x.mean(axis=(1, 2, 3))
    outputs = {}
    for samples in (1, 2, 5):
        rows = np.arange(samples * len(x)).reshape(samples, len(x))  # draw k of image j: row k * n + j
        logits = means[None, :, None] * np.array([1.0, 0.0, -1.0]) + 0.3 * rows[..., None] * np.array(
            [1.0, -1.0, 0.0]
        )
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
        expected = np.log(probabilities.mean(axis=0))
        outputs[samples] = eot_model(randomised, samples=samples)(x).numpy()
        np.testing.assert_allclose(outputs[samples], expected, atol=1e-5)
    assert not np.allclose(outputs[1], outputs[5], atol=1e-2)  # the draws differ enough to tell


def test_bad_arguments_raise_one_line_errors(model):
    with pytest.raises(RobustmaskError, match="quality"):
        JPEGCompression(101)
    with pytest.raises(RobustmaskError, match="odd"):
        SpatialSmoothing(4)
    with pytest.raises(RobustmaskError, match="bits"):
        FeatureSqueezing(0)
    with pytest.raises(RobustmaskError, match="gradient"):
        JPEGCompression(gradient="straight-through")
    with pytest.raises(RobustmaskError, match="empty"):
        InputTransformDefense([])
    with pytest.raises(RobustmaskError, match="Keras layers"):
        InputTransformDefense([lambda x: x])
    with pytest.raises(RobustmaskError, match="samples"):
        eot_model(model, samples=0)
    with pytest.raises(RobustmaskError, match="max_shrink"):
        InputTransformDefense(RandomResizePad(max_shrink=SIZE)).fit(model, None)
    with pytest.raises(ModelError, match="channels"):
        JPEGCompression()(np.zeros((1, 4, 4, 2), np.float32))
