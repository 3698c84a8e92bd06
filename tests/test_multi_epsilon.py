"""Algorithm 2: MultiEpsilonAdversarialTrainer."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import robustmask
from robustmask.attacks import FGSM
from robustmask.defenses import MultiEpsilonAdversarialTrainer
from robustmask.defenses.multi_epsilon import copy_model
from robustmask.errors import DataError, ModelError, RobustmaskError

EPSILONS = [0.05, 0.1, 0.15]


class BatchSizeRecorder(keras.layers.Layer):
    """Records the largest batch it sees in training mode and how many images passed in total."""

    def build(self, input_shape):
        self.largest = self.add_weight(shape=(), initializer="zeros", trainable=False, dtype="float32")
        self.total = self.add_weight(shape=(), initializer="zeros", trainable=False, dtype="float32")

    def call(self, x, training=False):
        if training:
            n = tf.cast(tf.shape(x)[0], tf.float32)
            self.largest.assign(tf.maximum(self.largest, n))
            self.total.assign_add(n)
        return x


def recording_model(base):
    recorder = BatchSizeRecorder()
    model = keras.Sequential([keras.Input((12, 12, 3)), recorder, *base.layers])
    return model, recorder


def test_defended_model_is_more_robust_and_the_original_is_untouched(tiny_model, tiny_data):
    x, y = tiny_data
    before = [w.copy() for w in tiny_model.get_weights()]
    trainer = MultiEpsilonAdversarialTrainer([0.02, 0.05, 0.08], subset=1.0, epochs=8, batch_size=32, seed=0)
    defended, history = trainer.fit(tiny_model, (x, y), verbose=0)
    for a, b in zip(before, tiny_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert defended is not tiny_model and len(history.history["loss"]) == 8
    evaluator = robustmask.Evaluator(FGSM(), [0.1])  # white-box FGSM against each model itself
    undefended = evaluator.evaluate(tiny_model, (x, y))["Accuracy (%)"].iloc[-1]
    robust = evaluator.evaluate(defended, (x, y))["Accuracy (%)"].iloc[-1]
    assert undefended < 50 and robust > undefended + 40


def test_each_update_holds_clean_images_and_their_copies(tiny_model, tiny_data):
    x, y = tiny_data
    model, recorder = recording_model(copy_model(tiny_model))
    model.compile("adam", "sparse_categorical_crossentropy")
    trainer = MultiEpsilonAdversarialTrainer(EPSILONS, subset=30, epochs=2, batch_size=16, seed=0)
    assert trainer.clean_per_step == 4  # ceil(16 / (3 + 1))
    defended, _ = trainer.fit(model, (x, y), verbose=0)
    recorded = defended.layers[0]
    # D' = 30 clean + 90 adversarial images per epoch, in updates of 4 clean + 12 copies.
    assert recorded.largest.numpy() == 16
    assert recorded.total.numpy() == 2 * 30 * (1 + len(EPSILONS))
    assert recorder.total.numpy() == 0  # the original's layer saw nothing: training ran on a copy


def test_subset_fraction_and_dataset_input(tiny_model, tiny_data):
    x, y = tiny_data
    model, _ = recording_model(copy_model(tiny_model))
    model.compile("adam", "sparse_categorical_crossentropy")
    trainer = MultiEpsilonAdversarialTrainer(EPSILONS, subset=0.25, epochs=1, seed=0)
    defended, _ = trainer.fit(model, (x, y), verbose=0)
    assert defended.layers[0].total.numpy() == round(0.25 * len(x)) * 4
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(20)
    defended, _ = MultiEpsilonAdversarialTrainer(EPSILONS, subset=0.5, epochs=1, seed=0).fit(
        model, dataset, verbose=0
    )
    seen = defended.layers[0].total.numpy() / 4
    assert 0.3 * len(x) < seen < 0.7 * len(x)  # a seeded Bernoulli(0.5) draw per example


def test_copies_come_from_the_original_model_by_default(tiny_model, tiny_data):
    """source='original' attacks the undefended model: the copies equal FGSM against it."""
    x, y = tiny_data
    seen = []

    class Recording(FGSM):
        def run_many(self, model, x, y, epsilons):
            out = super().run_many(model, x, y, epsilons)
            seen.append(model)
            return out

    MultiEpsilonAdversarialTrainer(EPSILONS, subset=8, epochs=1, attack=Recording()).fit(
        tiny_model, (x, y), verbose=0
    )
    assert seen and all(m is tiny_model for m in seen)
    seen.clear()
    defended, _ = MultiEpsilonAdversarialTrainer(
        EPSILONS, subset=8, epochs=1, attack=Recording(), source="current"
    ).fit(tiny_model, (x, y), verbose=0)
    assert seen and all(m is defended for m in seen)


def test_labels_default_follows_the_source():
    assert MultiEpsilonAdversarialTrainer(EPSILONS).labels == "true"
    assert MultiEpsilonAdversarialTrainer(EPSILONS, source="current").labels == "predicted"


def test_frozen_layers_stay_frozen_in_the_copy():
    inputs = keras.Input((12, 12, 3))
    inner = keras.Model(
        inputs, keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(inputs)), name="base"
    )
    inner.trainable = False  # a frozen base inside the model, as in the paper's MobileNetV2
    outer_inputs = keras.Input((12, 12, 3))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inner(outer_inputs)))
    model = keras.Model(outer_inputs, outputs)
    clone = copy_model(model)
    assert len(clone.trainable_weights) == len(model.trainable_weights) == 2
    x = np.random.default_rng(0).uniform(0, 1, (8, 12, 12, 3)).astype(np.float32)
    y = np.arange(8) % 3
    # layers="all" unfreezes the copy's conv and dense layers; batchnorm="frozen" keeps BatchNorm frozen
    everything, _ = MultiEpsilonAdversarialTrainer([0.01], layers="all", batchnorm="frozen", epochs=1).fit(
        model, (x, y), verbose=0
    )
    assert len(everything.trainable_weights) == 4 and not inner.trainable  # the user's model keeps its flags
    assert not any("batch_normalization" in w.path for w in everything.trainable_weights)
    with_bn, _ = MultiEpsilonAdversarialTrainer([0.01], layers="all", epochs=1).fit(model, (x, y), verbose=0)
    assert len(with_bn.trainable_weights) == 6 and not inner.trainable  # BatchNorm trains by default
    for a, b in zip(model.get_weights(), clone.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_bad_arguments(tiny_model, tiny_data):
    x, y = tiny_data
    with pytest.raises(RobustmaskError, match="source must be one of"):
        MultiEpsilonAdversarialTrainer(EPSILONS, source="latest")
    with pytest.raises(RobustmaskError, match="layers must be one of 'trainable', 'all'"):
        MultiEpsilonAdversarialTrainer(EPSILONS, layers="head")
    with pytest.raises(RobustmaskError, match="subset as a fraction must be in"):
        MultiEpsilonAdversarialTrainer(EPSILONS, subset=1.5)
    with pytest.raises(RobustmaskError, match="subset as a count must be positive"):
        MultiEpsilonAdversarialTrainer(EPSILONS, subset=0)
    with pytest.raises(RobustmaskError, match="eps must be >= 0"):
        MultiEpsilonAdversarialTrainer([-1.0])
    with pytest.raises(RobustmaskError, match="untargeted and eps-bounded"):
        MultiEpsilonAdversarialTrainer(EPSILONS, attack=FGSM(targeted=True))
    with pytest.raises(RobustmaskError, match="subset asks for 500 images but the training set has 120"):
        MultiEpsilonAdversarialTrainer(EPSILONS, subset=500).fit(tiny_model, (x, y), verbose=0)
    with pytest.raises(DataError, match="outside the valid range"):
        MultiEpsilonAdversarialTrainer(EPSILONS).fit(tiny_model, (x * 255, y), verbose=0)
    with pytest.raises(DataError, match="120 images but 5 labels"):
        MultiEpsilonAdversarialTrainer(EPSILONS).fit(tiny_model, (x, y[:5]), verbose=0)


def frozen_base_model(x, y):
    """A conv base frozen after training, and a trainable head: the paper's layout in small."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input((12, 12, 3))
    base = keras.Model(
        inputs,
        keras.layers.MaxPooling2D(2)(keras.layers.Conv2D(8, 3, activation="relu")(inputs)),
        name="base",
    )
    outer = keras.Input((12, 12, 3))
    hidden = keras.layers.Flatten(name="pooling")(base(outer))
    hidden = keras.layers.Dropout(0.2)(keras.layers.Dense(16, activation="relu")(hidden))
    model = keras.Model(outer, keras.layers.Dense(3, activation="softmax")(hidden))
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=20, verbose=0)
    base.trainable = False
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    return model


def test_split_frozen_prefix_equals_the_model(tiny_data):
    from robustmask.frozen_features import split_frozen_prefix

    x, y = tiny_data
    model = frozen_base_model(x, y)
    features, head = split_frozen_prefix(model, x[:4])
    np.testing.assert_allclose(head(features(x[:16])), model(x[:16]), atol=1e-6)
    assert head.layers[0] is model.layers[3]  # shared layers: training the head trains the model
    assert split_frozen_prefix(build_unfrozen := copy_model(model)) is not None
    build_unfrozen.layers[1].trainable = True
    assert split_frozen_prefix(build_unfrozen) is None
    rescaled = keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            keras.layers.Rescaling(2.0, offset=-1.0),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    assert (
        split_frozen_prefix(rescaled) is None
    )  # a weightless layer in front is no frozen base  # nothing frozen in front: no split


def test_feature_cache_trains_the_head_on_fixed_copies(tiny_data):
    x, y = tiny_data
    model = frozen_base_model(x, y)
    base_before = [w.copy() for w in model.layers[1].get_weights()]
    trainer = MultiEpsilonAdversarialTrainer([0.02, 0.05, 0.08], epochs=15, cache="features", seed=0)
    defended, history = trainer.fit(model, (x, y), verbose=0)
    for a, b in zip(base_before, defended.layers[1].get_weights()):
        np.testing.assert_array_equal(a, b)  # the base stayed frozen
    # D' = 120 clean + 360 copies, in batches of 32 images: 15 steps an epoch.
    assert len(history.history["loss"]) == 15
    evaluator = robustmask.Evaluator(FGSM(), [0.08])
    undefended = evaluator.evaluate(model, (x, y))["Accuracy (%)"].iloc[-1]
    robust = evaluator.evaluate(defended, (x, y))["Accuracy (%)"].iloc[-1]
    assert robust > undefended
    with pytest.raises(RobustmaskError, match="cache='features' needs source='original'"):
        MultiEpsilonAdversarialTrainer([0.1], cache="features", source="current")
    with pytest.raises(ModelError, match="leading layers are frozen"):
        MultiEpsilonAdversarialTrainer([0.1], cache="features", epochs=1).fit(
            build_cnn_model(), (x, y), verbose=0
        )


def build_cnn_model():
    from conftest import build_cnn

    return build_cnn(3)
