"""The adversarial training step's own pieces, against independent computations: the attack's labels
(true, predicted, soft), the random start drawn anew each update from (seed, update), and TRADES'
validation loss (each image paired with itself: the plain cross-entropy)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import scipy.special
import tensorflow as tf
from conftest import make_images

from robustmask.attacks import PGD
from robustmask.defenses import TRADESTrainer
from robustmask.defenses._training_step import (
    AdversarialTrainingModel,
    LabelAwareCrossEntropy,
    TRADESLoss,
    attack_labels,
    build_state,
    one_hot,
)
from robustmask.modelinfo import ModelInfo, inspect_model


def _ready(step):
    """Compiled with a learning rate of 0, its optimizer's slots built: a step that trains nothing."""
    step.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    step.optimizer.build(step.trainable_variables)
    return step


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
    _ready(step)
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


# ------------------------------------------------------------------------------ the losses, on logits
LOGITS = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0], [40.0, -40.0, 0.0], [-1.0, -1.0, 4.0]], np.float32)
LOGITS_INFO = ModelInfo(num_classes=3, output="logits")


def numpy_log_softmax(z):
    return scipy.special.log_softmax(np.asarray(z, np.float64), axis=-1)


@pytest.mark.parametrize("labels", ["integer", "column", "one-hot"])
def test_the_cross_entropy_takes_integer_or_one_hot_labels(labels):
    y = np.array([0, 1, 1, 2])
    given = {"integer": y, "column": y[:, None], "one-hot": np.eye(3, dtype=np.float32)[y]}[labels]
    loss = LabelAwareCrossEntropy(LOGITS_INFO, reduction=None)(tf.constant(given), tf.constant(LOGITS))
    np.testing.assert_allclose(loss.numpy(), -numpy_log_softmax(LOGITS)[np.arange(4), y], rtol=1e-5)


def test_the_cross_entropy_reads_the_logits_behind_a_softmax():
    # Image 2's true class has probability e^-80: only the logits give its loss (80); the floored
    # log of the probability would read 69.
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Activation("softmax")(inputs))
    y = np.array([0, 1, 1, 2])
    loss = LabelAwareCrossEntropy(inspect_model(model), reduction=None)(tf.constant(y), model(LOGITS))
    np.testing.assert_allclose(loss.numpy(), -numpy_log_softmax(LOGITS)[np.arange(4), y], rtol=1e-5)


@pytest.mark.parametrize("beta", [0.0, 6.0])
def test_the_trades_loss_is_cross_entropy_plus_beta_kl_on_the_clean_half(beta):
    """Rows 0-1 clean, rows 2-3 their copies: per clean image 2 (CE + beta KL(clean || copy)), then zeros."""
    y = np.array([0, 1, 0, 1])
    loss = TRADESLoss(LOGITS_INFO, beta=beta, reduction=None)(tf.constant(y), tf.constant(LOGITS)).numpy()
    clean, copy = numpy_log_softmax(LOGITS[:2]), numpy_log_softmax(LOGITS[2:])
    natural = -clean[np.arange(2), y[:2]]
    kl = np.sum(np.exp(clean) * (clean - copy), axis=1)
    np.testing.assert_allclose(loss, np.concatenate([2 * (natural + beta * kl), [0.0, 0.0]]), rtol=1e-5)


def test_one_hot_encodes_integer_labels_and_keeps_one_hot_rows():
    three, binary = ModelInfo(3, "logits"), ModelInfo(2, "probabilities", single_unit=True)
    np.testing.assert_array_equal(one_hot(tf.constant([2, 0]), three).numpy(), [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(one_hot(tf.constant([[1], [0]]), binary).numpy(), [[0, 1], [1, 0]])
    rows = np.array([[0.2, 0.8], [1.0, 0.0]], np.float32)  # soft rows are kept as they are
    np.testing.assert_array_equal(one_hot(tf.constant(rows), binary).numpy(), rows)
    assert one_hot(tf.constant([1]), three).dtype == tf.float32


# ------------------------------------------------------------------------------ the wrapper and its state
def _step(model, **settings):
    options = {"labels": "true", "info": inspect_model(model), "ratio": 1.0, **settings}
    return AdversarialTrainingModel(model, model, PGD(steps=1, seed=0), [0.05], **options)


def test_the_wrapper_calls_the_model_in_the_mode_it_is_given(tiny_data):
    inputs = keras.Input((8,))
    model = keras.Model(
        inputs, keras.layers.Dropout(0.9)(keras.layers.Dense(3, activation="softmax")(inputs))
    )
    x = np.ones((4, 8), np.float32)
    step = _step(model)
    np.testing.assert_array_equal(step(x, training=False).numpy(), model(x, training=False).numpy())
    np.testing.assert_array_equal(step(x).numpy(), model(x, training=False).numpy())  # inference by default
    assert not np.allclose(step(x, training=True).numpy(), model(x, training=False).numpy())


def test_an_unpaired_wrapper_validates_on_the_plain_cross_entropy(tiny_model, tiny_data):
    x, y = tiny_data[0][:24], tiny_data[1][:24]
    step = _step(tiny_model)
    step.compile(optimizer=keras.optimizers.SGD(0.0), loss=LabelAwareCrossEntropy(inspect_model(tiny_model)))
    p = tiny_model.predict(x, verbose=0).astype(np.float64)
    expected = np.mean(-np.log(p[np.arange(len(y)), y]))
    assert step.evaluate(x, y, batch_size=24, verbose=0) == pytest.approx(expected, rel=1e-4)
    # Unpaired unless asked: a validation batch is evaluated as given (a paired one is doubled).
    step.compile(
        optimizer=keras.optimizers.SGD(0.0),
        loss=lambda _, p: tf.fill(tf.shape(p)[:1], tf.cast(tf.shape(p)[0], tf.float32)),
    )
    assert step.evaluate(x, y, batch_size=24, verbose=0) == 24


class _CountingStep(AdversarialTrainingModel):
    traces = 0

    def training_batch(self, x, y):
        type(self).traces += 1  # Python runs here only while the step is traced
        return super().training_batch(x, y)


def test_built_state_lets_fit_trace_its_step_once(tiny_model, tiny_data):
    """Without `build_state` Keras makes the optimizer's and metrics' variables in the first trace,
    and TensorFlow traces the step a second time."""
    x, y = tiny_data[0][:32], tiny_data[1][:32]
    model = keras.models.clone_model(tiny_model)
    model.set_weights(tiny_model.get_weights())
    step = _CountingStep(
        model, model, PGD(steps=1, seed=0), [0.05], labels="true", info=inspect_model(model), ratio=1.0
    )
    step.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=LabelAwareCrossEntropy(inspect_model(model)),
        metrics=["accuracy"],  # a metric's variables too: made in the trace without build_state
    )
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16, drop_remainder=True)
    build_state(step, data.element_spec)
    assert step.optimizer.built
    _CountingStep.traces = 0
    step.fit(data, epochs=1, shuffle=False, verbose=0)
    assert _CountingStep.traces == 1


def test_build_state_is_best_effort_and_still_builds_the_optimizers_slots(tiny_model):
    step = _step(tiny_model)
    step.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss=LabelAwareCrossEntropy(inspect_model(tiny_model))
    )
    build_state(step, ())  # Keras' symbolic build fails on an empty spec: nothing raised, slots made
    assert step.optimizer.built and len(step.optimizer.variables) > 2


# ------------------------------------------------------------------------------ the batch a step trains on
class ShiftAttack:
    """Copy k of x is x + eps_k, and the labels it was given are kept: the step's layout, eps schedule
    and attack labels read straight off its output."""

    def generate(self, model, x, y, epsilons):
        self.labels = y
        return x[None] + tf.reshape(epsilons, [-1, 1, 1, 1, 1])


def _shift_step(model, ratio, ramp_steps=0, labels="true", epsilons=(0.1, 0.2)):
    step = AdversarialTrainingModel(
        model,
        model,
        ShiftAttack(),
        list(epsilons),
        labels=labels,
        info=inspect_model(model),
        ratio=ratio,
        ramp_steps=ramp_steps,
    )
    return _ready(step)


@pytest.mark.parametrize("ratio", [1.0, 2 / 3, 0.4, 0.0])
def test_a_step_trains_on_the_clean_batch_then_one_copy_per_eps_weighted_by_ratio(
    tiny_model, tiny_data, ratio
):
    x, y = tiny_data[0][:4], tiny_data[1][:4]
    x_all, y_all, *weights = _shift_step(tiny_model, ratio).training_batch(tf.constant(x), tf.constant(y))
    copies = [x + 0.1, x + 0.2]
    groups = copies if ratio == 1.0 else [x, *copies]
    np.testing.assert_allclose(x_all.numpy(), np.concatenate(groups), atol=1e-6)
    np.testing.assert_array_equal(y_all.numpy(), np.tile(y, len(groups)))
    if ratio in (1.0, 2 / 3):  # every image weighs the same: no weights
        assert weights == []
        return
    # Mean 1: the clean batch carries (1 - ratio) of the loss, the two copies ratio between them.
    expected = np.concatenate([np.full(4, (1 - ratio) * 3), np.full(8, ratio * 3 / 2)])
    np.testing.assert_allclose(weights[0].numpy(), expected, rtol=1e-6)


def test_the_eps_ramp_grows_linearly_from_the_first_update(tiny_model, tiny_data):
    x, y = tf.constant(tiny_data[0][:2]), tf.constant(tiny_data[1][:2])
    for ramp_steps, scales in ((4, [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]), (0, [1.0, 1.0]), (1, [1.0, 1.0])):
        step = _shift_step(tiny_model, 1.0, ramp_steps=ramp_steps, epsilons=(0.2,))
        for update, scale in enumerate(scales):
            step.optimizer.iterations.assign(update)
            shift = step.training_batch(x, y)[0].numpy() - x.numpy()
            np.testing.assert_allclose(
                shift, 0.2 * scale, atol=1e-6, err_msg=f"ramp {ramp_steps}, update {update}"
            )


def test_predicted_attack_labels_are_the_models_answers_in_inference_mode():
    inputs = keras.Input((2, 2, 1))
    hidden = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dropout(0.99)(hidden))  # training mode would scramble them
    x = tf.constant(np.random.default_rng(3).uniform(size=(16, 2, 2, 1)).astype(np.float32))
    step = _shift_step(model, 1.0, labels="predicted")
    step.training_batch(x, tf.zeros(16, tf.int32))
    expected = np.eye(3)[model.predict(x, verbose=0).argmax(1)]
    np.testing.assert_array_equal(step.attack.labels.numpy(), expected)


def test_a_seeded_step_seeds_its_own_copy_of_a_random_start_attack():
    user_pgd = PGD(steps=1, seed=0)
    model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    info = inspect_model(model)
    step = AdversarialTrainingModel(
        model, model, user_pgd, [0.1], labels="true", info=info, ratio=1.0, seed=5
    )
    assert step.attack is not user_pgd and step.attack.seed == user_pgd.seed
    _ready(step)
    tf.function(step.training_batch)(tf.zeros((2, 2, 2, 1)), tf.zeros(2, tf.int32))
    step.training_batch(tf.zeros((2, 2, 2, 1)), tf.zeros(2, tf.int32))  # and eagerly
    # The user's attack keeps its seed and its own compiled-function cache: training adds nothing to it.
    assert user_pgd.seed == 0 and user_pgd._compiled._entries == {}
    # Nothing to seed: without a seed, without a random start, or with no seed attribute, the attack itself.
    for attack, seed in ((user_pgd, None), (PGD(steps=1, random_start=False), 5), (ShiftAttack(), 5)):
        kept = AdversarialTrainingModel(
            model, model, attack, [0.1], labels="true", info=info, ratio=1.0, seed=seed
        )
        assert kept.attack is attack
    seed_only = ShiftAttack()
    seed_only.seed = 0  # a seed, but no random start to seed
    assert (
        AdversarialTrainingModel(
            model, model, seed_only, [0.1], labels="true", info=info, ratio=1.0, seed=5
        ).attack
        is seed_only
    )
    no_seed = ShiftAttack()
    no_seed.random_start = True  # a random start, but no `seed` to set
    assert (
        AdversarialTrainingModel(
            model, model, no_seed, [0.1], labels="true", info=info, ratio=1.0, seed=5
        ).attack
        is no_seed
    )


class NotedPGD(PGD):
    """A PGD with a public setting that cannot be hashed: its compiled functions are kept per instance."""

    def __init__(self, **settings):
        super().__init__(**settings)
        self.notes: list[str] = []


def test_a_seeded_copy_never_reuses_the_users_compiled_functions(tiny_model, tiny_data):
    # The user's attack has compiled (and kept) a function for its own seed; the step's copy shares
    # every setting but the seed, so a shared per-instance cache would hand it the user's random start.
    x, y = tiny_data[0][:8], tiny_data[1][:8]
    user = NotedPGD(steps=1, seed=0)
    user.generate(tiny_model, x, np.eye(3)[y], [0.05])
    step = AdversarialTrainingModel(
        tiny_model, tiny_model, user, [0.05], labels="true", info=inspect_model(tiny_model), ratio=1.0, seed=5
    )
    _ready(step)
    images = step.training_batch(tf.constant(x), tf.constant(y))[0].numpy()
    expected = PGD(steps=1, seed=5 * 1_000_003).generate(tiny_model, x, np.eye(3)[y], [0.05])[0]
    np.testing.assert_allclose(images, expected, atol=1e-6)
