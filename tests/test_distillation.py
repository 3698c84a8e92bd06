"""Defensive distillation: trained as Papernot et al. (2016) describe, it masks the cross-entropy
gradient (a measured share of exactly-zero input gradients) and falls to the C&W margin loss."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import FACE_SIZE, face_cnn

from robustmask.attacks.pgd import PGD
from robustmask.defenses.distillation import DefensiveDistillation
from robustmask.evaluation import zero_gradient_share
from robustmask.attacks.losses import margin_loss
from robustmask.errors import AttackError, ModelError, RobustmaskError
from robustmask.modelinfo import inspect_model

EPS = 8 / 255


@pytest.fixture(scope="module")
def distilled(face_model, face_data):
    (x, y), _ = face_data
    before = [w.copy() for w in face_model.get_weights()]
    defence = DefensiveDistillation(temperature=100, epochs=20, learning_rate=1e-2, seed=0)
    deployed, history = defence.fit(face_model, (x, y))
    assert len(history.history["loss"]) == 20 and len(defence.teacher_history_.history["loss"]) == 20
    assert all(np.array_equal(a, b) for a, b in zip(before, face_model.get_weights()))
    return deployed, defence


def accuracy(face_model, x, y):
    return float(np.mean(np.argmax(face_model.predict(x, verbose=0), axis=1) == y))


def test_deployed_model_is_a_softmax_at_temperature_one_over_the_student(distilled, face_data):
    deployed, defence = distilled
    _, (x_test, y_test) = face_data
    assert inspect_model(deployed).output == "probabilities"
    logits = defence.student_.predict(x_test, verbose=0)
    np.testing.assert_allclose(deployed.predict(x_test, verbose=0), tf.nn.softmax(logits).numpy(), atol=1e-6)
    # Logits about T times a normal face_model's: the deployed softmax saturates.
    spread = np.sort(logits, axis=1)
    assert np.median(spread[:, -1] - spread[:, -2]) > 100


def test_distillation_masks_the_cross_entropy_gradient(face_model, distilled, face_data):
    deployed, _ = distilled
    _, (x_test, y_test) = face_data
    zero_distilled = zero_gradient_share(PGD(), deployed, x_test, y_test) / 100
    zero_plain = zero_gradient_share(PGD(), face_model, x_test, y_test) / 100
    zero_margin = zero_gradient_share(PGD(loss=margin_loss()), deployed, x_test, y_test) / 100
    # Independent count: per image, is every pixel of the cross-entropy gradient exactly 0?
    x_t = tf.constant(x_test)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        loss = keras.losses.sparse_categorical_crossentropy(
            y_test, deployed.layers[-2](x_t), from_logits=True
        )
    gradient = tape.gradient(loss, x_t).numpy().reshape(len(x_test), -1)
    assert zero_distilled == pytest.approx(np.mean(np.all(gradient == 0, axis=1)))
    print(
        f"\nzero input gradients: distilled {zero_distilled:.3f}, undistilled {zero_plain:.3f}, "
        f"distilled with the margin loss {zero_margin:.3f}"
    )
    assert zero_distilled >= 0.5 and zero_plain <= 0.05 and zero_margin == 0.0


def test_cross_entropy_pgd_fails_and_the_cw_margin_breaks_it(face_model, distilled, face_data):
    deployed, _ = distilled
    _, (x_test, y_test) = face_data
    clean = accuracy(deployed, x_test, y_test)
    ce = accuracy(deployed, PGD(steps=20, seed=0)(deployed, x_test, y_test, eps=EPS), y_test)
    cw = accuracy(
        deployed, PGD(steps=20, seed=0, loss=margin_loss())(deployed, x_test, y_test, eps=EPS), y_test
    )
    plain = accuracy(face_model, PGD(steps=20, seed=0)(face_model, x_test, y_test, eps=EPS), y_test)
    print(
        f"\ndistilled: clean {clean:.3f}, CE-PGD {ce:.3f}, margin-PGD {cw:.3f}; undistilled CE-PGD {plain:.3f}"
    )
    assert clean >= accuracy(face_model, x_test, y_test) - 0.1
    assert ce >= clean - 0.15  # looks robust under cross-entropy PGD ...
    assert cw <= ce - 0.4 and cw <= 0.25  # ... and is not
    # The images CE-PGD leaves correct are the ones whose CE gradient is exactly zero.
    x_ce = PGD(steps=20, seed=0)(deployed, x_test, y_test, eps=EPS)
    standing = np.argmax(deployed.predict(x_ce, verbose=0), axis=1) == y_test
    x_t = tf.constant(x_test)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        loss = keras.losses.sparse_categorical_crossentropy(
            y_test, deployed.layers[-2](x_t), from_logits=True
        )
    zero = np.all(tape.gradient(loss, x_t).numpy().reshape(len(x_test), -1) == 0, axis=1)
    print(
        f"standing under CE-PGD: {standing.sum()}, zero gradient: {zero.sum()}, both: {(standing & zero).sum()}"
    )
    assert (standing & zero).sum() >= 0.9 * max(standing.sum(), zero.sum())


def test_art_carlini_wagner_l2_breaks_it(distilled, face_data):
    """The C&W L2 attack (ART's, through robustmask's adapter) fools the distilled face_model on every image."""
    from robustmask.attacks.art.minimal import CarliniL2

    deployed, _ = distilled
    _, (x_test, y_test) = face_data
    x, y = x_test[:20], y_test[:20]
    x_adv = CarliniL2(binary_search_steps=5, steps=20)(deployed, x, y)
    l2 = np.sqrt(((x_adv - x) ** 2).reshape(len(x), -1).sum(axis=1))
    print(
        f"\nC&W L2 on the distilled face_model: accuracy {accuracy(deployed, x_adv, y):.3f} "
        f"(clean {accuracy(deployed, x, y):.3f}), median L2 {np.median(l2):.3f}"
    )
    assert accuracy(deployed, x_adv, y) <= 0.1


def test_logits_models_and_bad_arguments(face_data):
    (x, y), _ = face_data
    logits_model = face_cnn(FACE_SIZE, activation=None)
    deployed, _ = DefensiveDistillation(temperature=10, epochs=1, init="fresh").fit(
        logits_model, (x[:32], y[:32])
    )
    assert inspect_model(deployed).output == "probabilities"
    with pytest.raises(RobustmaskError, match="temperature"):
        DefensiveDistillation(temperature=0)
    with pytest.raises(RobustmaskError, match="init"):
        DefensiveDistillation(init="random")
    with pytest.raises(RobustmaskError, match="epochs"):
        DefensiveDistillation(epochs=1.5)
    with pytest.raises(RobustmaskError, match=r"\(x, y\)"):
        DefensiveDistillation().fit(logits_model, None)
    sigmoid = keras.Sequential(
        [
            keras.Input((FACE_SIZE, FACE_SIZE, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    with pytest.raises(ModelError, match=">= 2 outputs"):
        DefensiveDistillation().fit(sigmoid, (x[:4], y[:4] % 2))
    with pytest.raises(AttackError, match="confidence"):
        margin_loss(-1)


def test_margin_loss_is_the_logit_margin():
    logits = tf.constant([[2.0, 5.0, -1.0], [0.5, 0.0, 3.0]])
    y = tf.one_hot([1, 0], 3)
    np.testing.assert_allclose(margin_loss()(y, tf.nn.log_softmax(logits)).numpy(), [-3.0, 2.5], atol=1e-6)
    np.testing.assert_allclose(margin_loss(1.0)(y, tf.nn.log_softmax(logits)).numpy(), [-3.0, 1.0], atol=1e-6)


def test_training_batch_feeds_the_teacher_labels_and_the_student_its_soft_labels(face_data):
    from robustmask.defenses.distillation import DistillationTrainingModel

    (x, y), _ = face_data
    teacher = face_cnn(FACE_SIZE, activation=None)
    student = face_cnn(FACE_SIZE, activation=None)
    info = inspect_model(teacher)
    x_batch, labels = DistillationTrainingModel(teacher, info, 7.0).training_batch(x[:8], tf.constant(y[:8]))
    np.testing.assert_array_equal(labels.numpy(), np.eye(info.num_classes)[y[:8]])
    wrapper = DistillationTrainingModel(student, info, 7.0, teacher=teacher)
    _, soft = wrapper.training_batch(x[:8], y[:8])
    logits = teacher.predict(x[:8], verbose=0).astype(np.float64) / 7.0
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(soft.numpy(), expected / expected.sum(axis=1, keepdims=True), atol=1e-6)
    # The loss: cross-entropy of the targets against softmax(z / T), per image.
    z = student.predict(x[:8], verbose=0).astype(np.float64) / 7.0
    log_q = z - z.max(axis=1, keepdims=True)
    log_q -= np.log(np.exp(log_q).sum(axis=1, keepdims=True))
    loss = wrapper.distillation_loss(soft, tf.constant(z * 7.0, tf.float32)).numpy()
    np.testing.assert_allclose(loss, -(soft.numpy() * log_q).sum(axis=1), rtol=1e-5)
    assert not any(v is w for v in wrapper.trainable_variables for w in teacher.weights)


def test_a_streamed_dataset_trains_and_a_checkpointed_run_resumes_where_it_ended(face_data, tmp_path):
    (x, y), _ = face_data
    model = face_cnn(FACE_SIZE)
    stream = tf.data.Dataset.from_tensor_slices((x[:60], y[:60])).batch(16)
    settings = {"epochs": 2, "batch_size": 16, "learning_rate": 1e-2}
    deployed, history = DefensiveDistillation(10, **settings).fit(model, stream, checkpoint_dir=tmp_path)
    assert len(history.history["loss"]) == 2 and history.history["loss"][1] < history.history["loss"][0]
    # Started again: both runs are complete in the checkpoints, so nothing trains and the weights
    # are the ones the first call ended with.
    again = DefensiveDistillation(10, **settings)
    resumed, history = again.fit(model, stream, checkpoint_dir=tmp_path)
    assert history.history == {} and again.teacher_history_.history == {}
    for a, b in zip(deployed.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(RobustmaskError, match="temperature"):
        DefensiveDistillation(20, **settings).fit(model, stream, checkpoint_dir=tmp_path)
    with pytest.raises(RobustmaskError, match="labels"):
        DefensiveDistillation(10, **settings).fit(model, (x[:8], np.full(8, 7)))
