"""Softmax or logits: seen through identity and reshaping layers, probed where the model does not say.

A wrong answer here is silent everywhere else (log_softmax of probabilities gives a plausible loss
and a wrong gradient), so the decision is checked without a sample (the layers alone must say it),
with one (the probe must agree, or the disagreement is an error), and end to end against losses
and attacks computed independently.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import robustmask
from robustmask.attacks import FGSM
from robustmask.errors import ModelError
from robustmask.modelinfo import inspect_model, log_probabilities

L = keras.layers
FEATURES = 12


def sequential(*layers):
    return keras.Sequential([keras.Input((FEATURES,)), *layers])


def confident_dense(units=3, activation="softmax", seed=0):
    # Large weights: peaked probabilities, where log_softmax(probabilities) is far from log(probabilities).
    initializer = keras.initializers.RandomNormal(stddev=3.0, seed=seed)
    return L.Dense(units, activation=activation, kernel_initializer=initializer)


def sample(n=8, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, FEATURES)).astype(np.float32)


PROBABILITY_MODELS = {
    "softmax+Dropout": lambda: sequential(confident_dense(), L.Dropout(0.5)),
    "softmax+Reshape": lambda: sequential(confident_dense(), L.Reshape((3,))),
    "softmax+Flatten": lambda: sequential(confident_dense(), L.Flatten()),
    "softmax+Activation(linear)": lambda: sequential(confident_dense(), L.Activation("linear")),
    "softmax+Identity+GaussianNoise": lambda: sequential(
        confident_dense(), L.Identity(), L.GaussianNoise(0.1)
    ),
    "Softmax layer+Dropout": lambda: sequential(
        confident_dense(activation=None), L.Softmax(), L.Dropout(0.2)
    ),
    "nested softmax, then Dropout": lambda: sequential(sequential(confident_dense()), L.Dropout(0.5)),
    "nested (softmax, Dropout), then Flatten": lambda: sequential(
        sequential(confident_dense(), L.Dropout(0.5)), L.Flatten()
    ),
    "functional: nested functional softmax, then Dropout": lambda: functional_nested(),
    "sigmoid unit+Dropout": lambda: sequential(confident_dense(1, "sigmoid"), L.Dropout(0.5)),
}


def functional_nested():
    inner_in = keras.Input((FEATURES,))
    inner = keras.Model(inner_in, confident_dense()(L.Dense(8, activation="relu")(inner_in)))
    outer_in = keras.Input((FEATURES,))
    return keras.Model(outer_in, L.Dropout(0.5)(L.Identity()(inner(outer_in))))


@pytest.mark.parametrize("make", PROBABILITY_MODELS.values(), ids=PROBABILITY_MODELS.keys())
def test_softmax_before_passthrough_layers_is_probabilities(make):
    # Without a sample only the layers can say it: this fails if the walk back stops at the last layer.
    assert inspect_model(make()).output == "probabilities"
    assert inspect_model(make(), sample=sample()).output == "probabilities"


LOGIT_MODELS = {
    "Dense+Dropout": lambda: sequential(confident_dense(activation=None), L.Dropout(0.5)),
    "Dense+Flatten+Activation(linear)": lambda: sequential(
        confident_dense(activation=None), L.Flatten(), L.Activation("linear")
    ),
    "nested logits, then Dropout": lambda: sequential(
        sequential(confident_dense(activation=None)), L.Dropout(0.5)
    ),
}


@pytest.mark.parametrize("make", LOGIT_MODELS.values(), ids=LOGIT_MODELS.keys())
def test_linear_layer_before_passthrough_layers_is_logits(make):
    assert inspect_model(make()).output == "logits"
    assert inspect_model(make(), sample=sample()).output == "logits"


class CallOrderModel(keras.Model):
    """Creates its softmax layer last but returns the logits of another: `layers[-1]` would lie."""

    def __init__(self, softmax_output: bool):
        super().__init__()
        self.softmax_output = softmax_output
        self.hidden = L.Dense(3)
        self.unused_softmax = L.Dense(3, activation="softmax")

    def build(self, input_shape):
        self.hidden.build(input_shape)
        self.unused_softmax.build(input_shape)

    def call(self, x):
        logits = self.hidden(x)
        return tf.nn.softmax(logits) if self.softmax_output else logits


@pytest.mark.parametrize("softmax_output, expected", [(False, "logits"), (True, "probabilities")])
def test_subclassed_models_are_probed(softmax_output, expected):
    model = CallOrderModel(softmax_output)
    model(sample(2))
    assert inspect_model(model, sample=sample()).output == expected
    with pytest.raises(ModelError):  # nothing to go on without a sample
        inspect_model(CallOrderModel(softmax_output))


def test_conflicting_evidence_is_an_error_not_a_guess():
    # A softmax over pairs of rows, flattened: the layers say probabilities, the rows sum to 2.
    over_pairs = sequential(L.Reshape((2, FEATURES // 2)), confident_dense(), L.Flatten())
    with pytest.raises(ModelError) as error:
        inspect_model(over_pairs, sample=sample())
    message = str(error.value)
    assert len(message.splitlines()) == 1
    assert "say it outputs probabilities" in message and "look like logits" in message
    assert "from_logits=True or False" in message
    # A linear layer whose outputs are probability rows (zero weights, bias on the simplex).
    looks_like_probabilities = sequential(
        L.Dense(3, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant([0.2, 0.3, 0.5])),
        L.Dropout(0.5),
    )
    with pytest.raises(ModelError, match="say it outputs logits .* look like probabilities"):
        inspect_model(looks_like_probabilities, sample=sample())
    # The user settles it.
    assert inspect_model(over_pairs, from_logits=True, sample=sample()).output == "logits"
    assert (
        inspect_model(looks_like_probabilities, from_logits=False, sample=sample()).output == "probabilities"
    )


def test_a_sample_later_checks_a_decision_made_without_one():
    over_pairs = sequential(L.Reshape((2, FEATURES // 2)), confident_dense(), L.Flatten())
    assert inspect_model(over_pairs).output == "probabilities"  # all the layers can say
    with pytest.raises(ModelError, match="from_logits"):
        inspect_model(over_pairs, sample=sample())


# ---------------------------------------------------------------------------------------------- values
def probabilities_and_logits(n=32, seed=1):
    """A softmax+Dropout model and the logits model it wraps (same layers)."""
    keras.utils.set_random_seed(seed)
    logits_model = sequential(L.Dense(8, activation="relu"), confident_dense(activation=None, seed=seed))
    model = sequential(*logits_model.layers, L.Softmax(), L.Dropout(0.5))
    x = sample(n, seed)
    y = np.random.default_rng(seed).integers(0, 3, n)
    return model, logits_model, x, y


def test_evaluator_clean_loss_is_the_true_cross_entropy():
    model, _, x, y = probabilities_and_logits()
    p = model.predict(x, verbose=0).astype(np.float64)
    assert np.max(p, axis=1).mean() > 0.9  # confident: a log_softmax of these would be far off
    true_loss = np.mean(-np.log(np.maximum(p[np.arange(len(y)), y], 1e-300)))
    table = robustmask.Evaluator(FGSM(), [0.01], batch_size=8).evaluate(model, (x, y))
    assert table["Loss"].iloc[0] == pytest.approx(true_loss, rel=1e-4)
    assert table["Accuracy (%)"].iloc[0] == pytest.approx(100 * np.mean(p.argmax(1) == y))
    # What the old detection computed (log_softmax of the probabilities) is measurably different.
    wrong = np.mean(-tf.nn.log_softmax(p).numpy()[np.arange(len(y)), y])
    assert abs(wrong - true_loss) > 0.1


def test_attack_on_softmax_plus_dropout_equals_attack_on_its_logits():
    model, logits_model, x, y = probabilities_and_logits()
    np.testing.assert_allclose(FGSM()(model, x, y, eps=0.05), FGSM()(logits_model, x, y, eps=0.05), atol=1e-6)


@pytest.mark.parametrize(
    "passthrough",
    [lambda: L.Dropout(0.5), L.Identity, lambda: L.Activation("linear"), L.Flatten, lambda: L.Reshape((3,))],
    ids=["Dropout", "Identity", "Activation(linear)", "Flatten", "Reshape"],
)
def test_log_probabilities_find_the_logits_through_passthrough_layers(passthrough):
    keras.utils.set_random_seed(2)
    logits_model = sequential(L.Dense(3, kernel_initializer=keras.initializers.RandomNormal(stddev=40.0)))
    model = sequential(*logits_model.layers, L.Softmax(), passthrough())
    info = inspect_model(model)
    x = sample(16, 2)
    expected = tf.nn.log_softmax(logits_model(x)).numpy()
    assert expected.min() < -200  # probabilities underflow: only the logits give these values
    compiled = tf.function(lambda t: log_probabilities(model(t, training=False), info))
    np.testing.assert_allclose(compiled(tf.constant(x)).numpy(), expected, rtol=1e-5, atol=1e-4)
    # Eagerly, Flatten and Reshape drop Keras' note of the logits: the log of the probabilities,
    # floored, is what is left, and it is right wherever the probabilities did not underflow.
    eager = log_probabilities(model(x, training=False), info).numpy()
    assert np.all(np.isfinite(eager))
    fine = expected > -60
    np.testing.assert_allclose(eager[fine], expected[fine], atol=1e-4)
