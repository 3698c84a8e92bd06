"""predict_labels and log_probabilities against independent NumPy computations, on every output kind.

Written against mutmut's survivors in robustmask.predictions and robustmask.modelinfo (docs/testing.md):
batches that do not divide the data, the empty input, a bad batch size, and saturated outputs whose
log-probabilities only the logits behind the softmax/sigmoid give exactly.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from robustmask.errors import RobustmaskError
from robustmask.modelinfo import ModelInfo, inspect_model, log_probabilities
from robustmask.predictions import predict_labels

KINDS = ("softmax", "logits", "sigmoid", "logit-unit")


def _model(kind: str, scale: float = 1.0) -> keras.Model:
    """Flatten + Dense on 4x4x1 images; weights fixed so the outputs are a known function of x."""
    units = 1 if kind in ("sigmoid", "logit-unit") else 3
    activation = {"softmax": "softmax", "sigmoid": "sigmoid"}.get(kind)
    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Dense(units, activation=activation)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    kernel = np.random.default_rng(0).normal(size=(16, units)).astype(np.float32) * scale
    model.layers[-1].set_weights([kernel, -0.5 * kernel.sum(axis=0)])  # centred: x is uniform on [0, 1]
    return model


def _logits(model: keras.Model, x: np.ndarray) -> np.ndarray:
    kernel, bias = model.layers[-1].get_weights()
    return x.reshape(len(x), -1).astype(np.float64) @ kernel + bias


def _images(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, 4, 4, 1)).astype(np.float32)


@pytest.mark.parametrize("kind", KINDS)
def test_predicted_labels_equal_an_independent_computation_across_uneven_batches(kind):
    model, x = _model(kind), _images(10)
    z = _logits(model, x)
    expected = (z[:, 0] > 0).astype(np.int64) if z.shape[1] == 1 else z.argmax(axis=1)
    assert len(set(expected)) > 1  # both decisions occur, so a constant answer fails
    for batch_size in (3, 10, 256):
        labels = predict_labels(model, x, batch_size=batch_size)
        assert labels.dtype == np.int64 and labels.shape == (10,)
        np.testing.assert_array_equal(labels, expected)


def test_an_empty_input_gives_an_empty_int64_array():
    labels = predict_labels(_model("softmax"), _images(0))
    assert labels.dtype == np.int64 and labels.shape == (0,)


def test_a_bad_batch_size_is_one_line_naming_it():
    with pytest.raises(RobustmaskError, match="^batch_size must be"):
        predict_labels(_model("softmax"), _images(4), batch_size=0)


def test_predict_labels_reads_a_subclassed_model_from_its_sample_and_predicts_in_inference_mode():
    """A subclassed model declares nothing: its class count comes from the first images. Dropout of
    0.9 would scramble the labels if the model ran in training mode."""

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.flatten, self.drop = keras.layers.Flatten(), keras.layers.Dropout(0.9)
            self.dense = keras.layers.Dense(3, kernel_initializer=keras.initializers.RandomNormal(seed=1))

        def call(self, x, training=False):
            return tf.nn.softmax(self.dense(self.drop(self.flatten(x), training=training)))

    model, x = Subclassed(), _images(40)
    expected = np.argmax(model(x, training=False).numpy(), axis=1)
    np.testing.assert_array_equal(predict_labels(model, x, batch_size=16), expected)


@pytest.mark.parametrize("kind", KINDS)
def test_log_probabilities_are_exact_on_saturated_outputs_eagerly_and_in_a_graph(kind):
    # Logits of a few hundred: the probabilities round to 0 and 1 in float32, so only the logits
    # behind the softmax/sigmoid give the true log-probabilities (far below log(1e-30) = -69).
    model, x = _model(kind, scale=60.0), _images(6)
    info = inspect_model(model, None, x)
    z = _logits(model, x)
    if z.shape[1] == 1:
        expected = np.stack([-np.logaddexp(0, z[:, 0]), -np.logaddexp(0, -z[:, 0])], axis=1)
    else:
        expected = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
    assert expected.min() < -100  # the case the floor at 1e-30 (log: -69) would get wrong
    eager = log_probabilities(model(x, training=False), info).numpy()
    graph = tf.function(lambda images: log_probabilities(model(images, training=False), info))(x).numpy()
    np.testing.assert_allclose(eager, expected, rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(graph, expected, rtol=1e-4, atol=1e-2)


def test_probabilities_behind_a_reshape_are_read_through_it_in_a_graph():
    # Flatten after the softmax makes a new tensor: eagerly the logits are lost, in a graph the ops lead back.
    inputs = keras.Input((4, 4, 1))
    scores = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs))
    outputs = keras.layers.Flatten()(keras.layers.Reshape((3, 1))(scores))
    model = keras.Model(inputs, outputs)
    model.layers[2].set_weights(
        [_model("softmax", 60.0).layers[-1].get_weights()[0], np.zeros(3, np.float32)]
    )
    x = _images(6)
    kernel = model.layers[2].get_weights()[0]
    z = x.reshape(6, -1).astype(np.float64) @ kernel
    expected = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
    info = ModelInfo(num_classes=3, output="probabilities")
    graph = tf.function(lambda images: log_probabilities(model(images, training=False), info))(x).numpy()
    np.testing.assert_allclose(graph, expected, rtol=1e-4, atol=1e-2)
    # traced for any batch size, as the attacks' compiled functions are: the batch axis is unknown
    any_batch = tf.function(
        lambda images: log_probabilities(model(images, training=False), info),
        input_signature=[tf.TensorSpec([None, 4, 4, 1], tf.float32)],
    )
    np.testing.assert_allclose(any_batch(x).numpy(), expected, rtol=1e-4, atol=1e-2)


def test_cross_entropy_is_per_example_against_numpy():
    from robustmask.modelinfo import cross_entropy

    log_probs = np.log(
        np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25]], np.float32)
    )
    y = np.eye(3, dtype=np.float32)[[0, 2, 1, 2]]  # 4 x 3: a sum over the batch has another shape
    losses = cross_entropy(tf.constant(y), tf.constant(log_probs)).numpy()
    assert losses.shape == (4,)
    np.testing.assert_allclose(losses, [-np.log(0.7), -np.log(0.8), -np.log(0.3), -np.log(0.25)], rtol=1e-6)


def test_probabilities_without_logits_behind_them_are_logged_and_floored():
    # Plain tensors (a model given as a function, or probabilities already computed): no logits to find.
    p3 = tf.constant([[0.7, 0.3, 0.0], [0.1, 0.1, 0.8]], tf.float32)
    out = log_probabilities(p3, ModelInfo(num_classes=3, output="probabilities")).numpy()
    np.testing.assert_allclose(out, np.log([[0.7, 0.3, 1e-30], [0.1, 0.1, 0.8]]), rtol=1e-5)
    p1 = tf.constant([[0.9], [0.2], [1.0]], tf.float32)  # one sigmoid unit: class 1's probability
    out = log_probabilities(p1, ModelInfo(num_classes=2, output="probabilities", single_unit=True)).numpy()
    assert out.shape == (3, 2)
    np.testing.assert_allclose(out, np.log([[0.1, 0.9], [0.8, 0.2], [1e-30, 1.0]]), rtol=1e-4)


def test_one_logit_unit_gives_both_classes_log_probabilities():
    z = tf.constant([[2.0], [-3.0]], tf.float32)
    out = log_probabilities(z, ModelInfo(num_classes=2, output="logits", single_unit=True)).numpy()
    expected = np.stack([-np.logaddexp(0, [2.0, -3.0]), -np.logaddexp(0, [-2.0, 3.0])], axis=1)
    np.testing.assert_allclose(out, expected, rtol=1e-5)


# The walk back through a graph's ops, on raw TensorFlow ops (no Keras note of the logits): saturated
# logits in the hundreds, where only the logits give exact log-probabilities (the floor reads -69).
BIG = np.array([[300.0, 0.0, -200.0], [-50.0, 250.0, 10.0]], np.float32)
SOFTMAX_INFO = ModelInfo(num_classes=3, output="probabilities")


def _exact(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@pytest.mark.parametrize(
    "between",
    [
        lambda p: p,
        lambda p: tf.identity(p),
        lambda p: tf.cast(tf.cast(p, tf.float64), tf.float32),  # Cast, twice
        lambda p: tf.squeeze(tf.expand_dims(p, 1), 1),  # ExpandDims, then Squeeze
        lambda p: tf.reshape(p, [-1, 3]),
    ],
    ids=["softmax", "identity", "cast", "expand-squeeze", "reshape"],
)
def test_the_graph_walk_finds_the_logits_through_pass_through_ops(between):
    graph = tf.function(lambda z: log_probabilities(between(tf.nn.softmax(z)), SOFTMAX_INFO))
    np.testing.assert_allclose(graph(tf.constant(BIG)).numpy(), _exact(BIG), atol=1e-3)


def test_the_graph_walk_stops_where_the_logits_would_not_fit_the_outputs():
    """Outputs whose class axis is not the softmax's, another op in between, or an eager tensor
    without Keras' note: no logits, the floored log of the probabilities."""
    probabilities = tf.nn.softmax(BIG).numpy().astype(np.float64)
    # A (2, 3) softmax read as (3, 2): the logits' class axis (3) does not fit the outputs' (2).
    two = ModelInfo(num_classes=2, output="probabilities")
    regrouped = tf.function(lambda z: log_probabilities(tf.reshape(tf.nn.softmax(z), [3, 2]), two))
    expected = np.log(np.maximum(probabilities.reshape(3, 2), 1e-30))
    np.testing.assert_allclose(regrouped(tf.constant(BIG)).numpy(), expected, atol=1e-4)
    floored = np.log(np.maximum(probabilities, 1e-30))
    scaled = tf.function(lambda z: log_probabilities(tf.nn.softmax(z) * 1.0, SOFTMAX_INFO))  # Mul: no pass
    np.testing.assert_allclose(scaled(tf.constant(BIG)).numpy(), floored, atol=1e-4)
    eager = log_probabilities(tf.nn.softmax(tf.constant(BIG)), SOFTMAX_INFO)  # no graph to walk
    np.testing.assert_allclose(eager.numpy(), floored, atol=1e-4)


def test_the_graph_walk_reads_a_sigmoids_logit_for_one_unit_outputs():
    z = np.array([[120.0], [-90.0], [0.5]], np.float32)
    info = ModelInfo(num_classes=2, output="probabilities", single_unit=True)
    graph = tf.function(lambda t: log_probabilities(tf.identity(tf.sigmoid(t)), info))(tf.constant(z)).numpy()
    zz = z[:, 0].astype(np.float64)
    expected = np.stack([-np.logaddexp(0, zz), -np.logaddexp(0, -zz)], axis=-1)  # log(1 - s), log(s)
    np.testing.assert_allclose(graph, expected, atol=1e-4)


def test_a_one_input_op_that_is_no_softmax_ends_the_walk_and_numpy_outputs_are_read():
    """In a graph, |softmax| is one op with one input that is not the softmax: no logits behind it,
    the floored log of its values. Outputs given as a NumPy array have no graph: the floored log too."""
    floored = np.log(np.maximum(tf.nn.softmax(BIG).numpy().astype(np.float64), 1e-30))
    absolute = tf.function(lambda z: log_probabilities(tf.abs(tf.nn.softmax(z)), SOFTMAX_INFO))
    np.testing.assert_allclose(absolute(tf.constant(BIG)).numpy(), floored, atol=1e-4)
    numpy_outputs = tf.nn.softmax(tf.constant(BIG)).numpy()
    np.testing.assert_allclose(log_probabilities(numpy_outputs, SOFTMAX_INFO).numpy(), floored, atol=1e-4)


def test_the_users_from_logits_true_reads_the_outputs_as_logits_even_behind_a_softmax():
    """Told the outputs are logits, log_probabilities takes log_softmax of the outputs themselves, not of
    the logits Keras noted behind a softmax."""
    model = _model("softmax", 60.0)
    x = np.random.default_rng(3).uniform(0, 1, (5, 4, 4, 1)).astype(np.float32)
    info = inspect_model(model, from_logits=True)
    outputs = model(x, training=False)
    z = outputs.numpy().astype(np.float64)
    expected = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
    np.testing.assert_allclose(log_probabilities(outputs, info).numpy(), expected, atol=1e-5)
