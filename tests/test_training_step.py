"""The adversarial training step's own pieces, against independent computations: the attack's labels
(true, predicted, soft), the random start drawn anew each update from (seed, update), and TRADES'
validation loss (each image paired with itself: the plain cross-entropy)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import make_images

from robustmask.attacks import PGD
from robustmask.defenses import TRADESTrainer
from robustmask.defenses._training_step import AdversarialTrainingModel, attack_labels
from robustmask.modelinfo import inspect_model


def test_the_attacks_labels_are_the_true_ones_the_models_answers_or_its_probabilities(tiny_model, tiny_data):
    x, y = tiny_data[0][:20], tiny_data[1][:20]
    info = inspect_model(tiny_model)
    probabilities = tiny_model.predict(x, verbose=0)
    x_t, y_t = tf.constant(x), tf.constant(y)
    np.testing.assert_array_equal(attack_labels(tiny_model, x_t, y_t, "true", info).numpy(), np.eye(3)[y])
    predicted = np.eye(3)[probabilities.argmax(1)]
    np.testing.assert_array_equal(attack_labels(tiny_model, x_t, y_t, "predicted", info).numpy(), predicted)
    np.testing.assert_allclose(
        attack_labels(tiny_model, x_t, y_t, "soft", info).numpy(), probabilities, atol=1e-5
    )


def test_each_update_draws_its_own_random_start_from_the_seed_and_the_update(tiny_model, tiny_data):
    """Update i's copies are PGD's with seed ``seed * 1_000_003 + i``: reproducible on a resumed run,
    different from one update to the next."""
    x, y = tiny_data[0][:16], tiny_data[1][:16]
    info = inspect_model(tiny_model)
    eps = 0.05
    step = AdversarialTrainingModel(
        tiny_model, tiny_model, PGD(steps=1, seed=0), [eps], labels="true", info=info, ratio=1.0, seed=7
    )
    step.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    step.optimizer.build(step.trainable_variables)
    # In a graph, as Keras' fit and the distributed loop call it (its docstring's example), and eagerly.
    graph = tf.function(lambda images, labels: step.training_batch(images, labels)[0])
    eager = lambda images, labels: step.training_batch(images, labels)[0]  # noqa: E731
    copies = []
    for update, batch in ((0, graph), (1, graph), (2, eager), (3, eager)):
        step.optimizer.iterations.assign(update)
        images = batch(tf.constant(x), tf.constant(y))
        expected = PGD(steps=1, seed=7 * 1_000_003 + update).generate(tiny_model, x, np.eye(3)[y], [eps])[0]
        np.testing.assert_allclose(images.numpy(), expected, atol=1e-6)
        copies.append(images.numpy())
    assert not np.allclose(copies[0], copies[1]) and not np.allclose(copies[2], copies[3])


def test_trades_validation_loss_is_the_plain_cross_entropy(tiny_model, tiny_data):
    """TRADES' loss reads a batch as clean images then their copies; validation pairs each image with
    itself, so the KL term is 0 and val_loss is the model's cross-entropy on the validation images."""
    x, y = tiny_data
    x_val, y_val = make_images(8, seed=5)
    trainer = TRADESTrainer(eps=0.05, steps=1, eps_ramp=0, epochs=1, batch_size=40, keep_best="last")
    model, history = trainer.fit(tiny_model, (x, y), validation_data=(x_val, y_val), verbose=0)
    p = model.predict(x_val, verbose=0).astype(np.float64)
    expected = np.mean(-np.log(p[np.arange(len(y_val)), y_val]))
    assert history.history["val_loss"][0] == pytest.approx(expected, rel=1e-3)
