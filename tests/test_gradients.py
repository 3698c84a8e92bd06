"""The paper's literal loss (loss="keras") and the share of exactly-zero input gradients."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import build_cnn, make_images, train

from robustmask.attacks import FGSM, PGD
from robustmask.errors import AttackError, RobustmaskError
from robustmask.evaluation.gradients import zero_gradient_share
from robustmask.modelinfo import ModelInfo, clipped_cross_entropy, inspect_model


@pytest.fixture(scope="module")
def saturating_model():
    """A confident model: a quarter of its images get a top probability that rounds to 1 in float32."""
    x, y = make_images(20)
    keras.utils.set_random_seed(0)
    model = train(build_cnn(3), x, y, epochs=60)
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([2 * kernel, 2 * bias])  # twice the logits
    return model, x, y


def test_keras_loss_equals_keras2_clipped_cross_entropy(tiny_model, tiny_data):
    x, y = tiny_data
    probs = tiny_model.predict(x[:16], verbose=0).astype(np.float64)
    expected = -np.log(np.clip(probs / probs.sum(1, keepdims=True), 1e-7, 1 - 1e-7))[np.arange(16), y[:16]]
    got = clipped_cross_entropy(tf.one_hot(y[:16], 3), tiny_model(x[:16]), inspect_model(tiny_model)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "info, outputs, probabilities",
    [
        # three logits: the softmax
        (
            ModelInfo(3, "logits"),
            [[2.0, -1.0, 0.5], [0.0, 30.0, 0.0]],
            lambda o: np.exp(o) / np.exp(o).sum(1, keepdims=True),
        ),
        # probabilities that do not sum to 1: normalised, as Keras 2 did
        (
            ModelInfo(3, "probabilities"),
            [[0.2, 0.2, 0.4], [0.5, 0.25, 0.25]],
            lambda o: o / o.sum(1, keepdims=True),
        ),
        # one sigmoid unit: class 1's probability and its complement
        (ModelInfo(2, "probabilities", single_unit=True), [[0.8], [0.1]], lambda o: np.hstack([1 - o, o])),
        # one unit of logits: its sigmoid (a softmax over one logit is 1 whatever the logit)
        (
            ModelInfo(2, "logits", single_unit=True),
            [[2.0], [-1.0]],
            lambda o: np.hstack([1 - 1 / (1 + np.exp(-o)), 1 / (1 + np.exp(-o))]),
        ),
    ],
    ids=["softmax-logits", "unnormalised", "sigmoid", "one-logit"],
)
def test_the_clipped_loss_of_every_output_kind_equals_numpy(info, outputs, probabilities):
    outputs = np.array(outputs)
    y = np.eye(info.num_classes)[[0, 1]]
    expected = -np.sum(y * np.log(np.clip(probabilities(outputs), 1e-7, 1 - 1e-7)), axis=1)
    got = clipped_cross_entropy(tf.constant(y, tf.float32), tf.constant(outputs, tf.float32), info).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=5e-8)  # 1 - 1e-7 in float32: 1.19e-7


def test_the_keras_loss_moves_a_one_unit_logits_model():
    """FGSM on the paper's clipped loss against a binary model without a sigmoid layer: not a zero gradient."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(1)])
    x = np.random.default_rng(0).uniform(0.2, 0.8, size=(6, 4, 4, 3)).astype(np.float32)
    gradient = FGSM(loss="keras").gradient(model, tf.constant(x), tf.one_hot([0, 1, 0, 1, 0, 1], 2)).numpy()
    assert np.abs(gradient).reshape(6, -1).max(axis=1).min() > 0  # every image has a direction
    assert zero_gradient_share(FGSM(loss="keras"), model, x, np.array([0, 1, 0, 1, 0, 1])) == 0.0


def test_saturated_images_have_zero_gradients_under_the_keras_loss_only(saturating_model):
    model, x, y = saturating_model
    saturated = np.max(model.predict(x, verbose=0), axis=1) > 1 - 1e-7
    assert 0.1 < saturated.mean() < 0.9  # some saturated, some not: the share must tell them apart
    gradient = FGSM(loss="keras").gradient(model, tf.constant(x), tf.one_hot(y, 3)).numpy()
    zero = ~gradient.reshape(len(x), -1).any(axis=1)
    assert zero_gradient_share(FGSM(loss="keras"), model, x, y) == pytest.approx(100 * zero.mean())
    # Every saturated image has a zero gradient; the few others sit within float32 rounding of the clip.
    assert zero[saturated].all() and zero.sum() - saturated.sum() <= 2
    assert zero_gradient_share(FGSM(), model, x, y) == 0.0
    # FGSM on the clipped loss cannot move those images; robustmask's loss moves every image.
    moved = lambda attack: np.abs(attack(model, x, y, eps=0.05) - x).reshape(len(x), -1).max(1) > 0  # noqa: E731
    np.testing.assert_array_equal(moved(FGSM(loss="keras")), ~zero)
    assert moved(FGSM()).all()
    assert moved(PGD(steps=3, seed=0, loss="keras")).all()  # the random start moves them anyway


def test_zero_gradient_share_refuses_what_it_cannot_measure(tiny_model, tiny_data):
    from robustmask.attacks.square import SquareAttack

    x, y = tiny_data
    with pytest.raises(RobustmaskError, match="uses no gradients"):
        zero_gradient_share(SquareAttack(), tiny_model, x, y)
    with pytest.raises(AttackError, match="loss must be None, 'keras' or a callable"):
        FGSM(loss="keras2")


def test_an_input_that_does_not_reach_the_loss_has_a_zero_gradient_not_none():
    # A preprocessing step that cuts the input off (a stop_gradient): zeros, and FGSM does nothing.
    inputs = keras.Input((4, 4, 3))
    cut = keras.layers.Lambda(lambda t: tf.stop_gradient(t))(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(cut)))
    x, labels = make_images(2, size=4, seed=0)
    gradient = FGSM().loss_gradient(model, tf.constant(x), tf.one_hot(labels, 3))
    assert gradient is not None and gradient.shape == x.shape
    np.testing.assert_array_equal(gradient.numpy(), 0.0)
    np.testing.assert_array_equal(FGSM()(model, x, labels, eps=0.03), x)
