"""split_frozen_prefix: a model that cannot be split gives None; a bug anywhere else is raised."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from robustmask.frozen_features import split_frozen_prefix

L = keras.layers


def frozen(layer):
    layer.trainable = False
    return layer


def sample():
    return np.random.default_rng(0).uniform(0, 1, (2, 6)).astype(np.float32)


def test_a_chain_after_a_frozen_base_splits_into_equal_parts():
    model = keras.Sequential(
        [
            keras.Input((6,)),
            frozen(L.Dense(4)),
            L.Dense(5, activation="relu"),
            L.Dense(3, activation="softmax"),
        ]
    )
    features, head = split_frozen_prefix(model, sample())
    np.testing.assert_allclose(head(features(sample())), model(sample()), atol=1e-6)


def test_a_branching_head_is_no_split():
    inputs = keras.Input((6,))
    base = frozen(L.Dense(4))(inputs)
    merged = L.Add()([L.Dense(4)(base), L.Dense(4)(base)])  # the head's layers do not form a chain
    model = keras.Model(inputs, L.Dense(3, activation="softmax")(merged))
    assert split_frozen_prefix(model, sample()) is None


class FailsOnSecondCall(L.Layer):
    """Runs once, then raises a RuntimeError: a bug inside the head, not a head that does not chain."""

    calls = 0

    def call(self, x):
        if isinstance(x, tf.__internal__.EagerTensor):
            FailsOnSecondCall.calls += 1
            if FailsOnSecondCall.calls > 1:
                raise RuntimeError("a bug in a layer")
        return x


def test_a_bug_in_the_head_is_raised_not_read_as_no_split():
    FailsOnSecondCall.calls = 0
    model = keras.Sequential(
        [keras.Input((6,)), frozen(L.Dense(4)), L.Dense(3), FailsOnSecondCall(), L.Softmax()]
    )
    with pytest.raises(RuntimeError, match="a bug in a layer"):
        split_frozen_prefix(model, sample())
