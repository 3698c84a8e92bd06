"""The adversarial-training core and its presets: robustness gained, the loss each builds, ramp, guard."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import make_images

from robustmask import defenses
from robustmask.attacks import FGSM, PGD
from robustmask.defenses import AdversarialTrainer, RobustAccuracyGuard
from robustmask.defenses._training_step import TRADESLoss
from robustmask.errors import RobustmaskError
from robustmask.modelinfo import inspect_model

TRAIN_EPS, TEST_EPS = 0.15, 0.1
PRESETS = {
    "pgd-at": {"eps": TRAIN_EPS, "steps": 5},
    "fast-at": {"eps": TRAIN_EPS},
    "trades": {"eps": TRAIN_EPS, "steps": 5, "beta": 3.0},
    "multi-eps": {"eps": [0.05, 0.1, TRAIN_EPS], "source": "current"},
}


@pytest.fixture(scope="module")
def held_out():
    return make_images(40, seed=1)  # never seen in training


def accuracy(model, x, y):
    return 100.0 * np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_trainer_resists_pgd_on_held_out_data(name, tiny_model, tiny_data, held_out):
    x, y = tiny_data
    x_test, y_test = held_out
    pgd = PGD(steps=10, seed=0)
    undefended = accuracy(tiny_model, pgd(tiny_model, x_test, y_test, eps=TEST_EPS), y_test)
    trainer = defenses.get(name, epochs=40, batch_size=32, seed=0, **PRESETS[name])
    defended, history = trainer.fit(tiny_model, (x, y), verbose=0)
    clean = accuracy(defended, x_test, y_test)
    robust = accuracy(defended, pgd(defended, x_test, y_test, eps=TEST_EPS), y_test)
    assert undefended < 10, "the undefended fixture should fall to PGD at this eps"
    assert clean >= 90, f"{name} gave up clean accuracy: {clean:.1f}%"
    assert robust >= undefended + 40, f"{name}: PGD accuracy {robust:.1f}% vs undefended {undefended:.1f}%"
    if name == "fast-at":  # the guard measures PGD accuracy on held-out training images every epoch
        assert len(trainer.guard.history) == len(history.history["loss"])
        assert history.history["val_robust_accuracy"] == trainer.guard.history


def ce(model, x, y):
    p = model.predict(x, verbose=0)
    return -np.log(p[np.arange(len(y)), y])


@pytest.mark.parametrize("ratio", [None, 0.25, 1.0])
def test_ratio_sets_the_copies_share_of_the_loss(ratio, tiny_model, tiny_data):
    """With a learning rate of 0 the reported loss is the loss of the untouched model, computed independently."""
    x, y = tiny_data
    eps = [0.05, 0.1]
    trainer = AdversarialTrainer(
        FGSM(),
        eps,
        ratio=ratio,
        source="original",
        epochs=1,
        batch_size=len(x) * 3,
        optimizer=keras.optimizers.SGD(0.0),
        loss="sparse_categorical_crossentropy",
    )
    _, history = trainer.fit(tiny_model, (x, y), verbose=0)
    clean = ce(tiny_model, x, y).mean()
    adversarial = np.mean([ce(tiny_model, FGSM()(tiny_model, x, y, eps=e), y).mean() for e in eps])
    share = 2 / 3 if ratio is None else ratio
    np.testing.assert_allclose(
        history.history["loss"][0], (1 - share) * clean + share * adversarial, rtol=2e-4
    )


def test_trades_loss_against_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(8, 3)).astype(np.float32)
    y = rng.integers(0, 3, 4)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    info = inspect_model(model, from_logits=True)
    per_example = TRADESLoss(info, beta=2.5, reduction=None)(np.concatenate([y, y]), logits).numpy()
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    clean, adv = log_p[:4], log_p[4:]
    expected = -clean[np.arange(4), y] + 2.5 * (np.exp(clean) * (clean - adv)).sum(1)
    np.testing.assert_allclose(per_example[:4], 2 * expected, rtol=1e-5)
    np.testing.assert_array_equal(per_example[4:], 0)


def test_eps_ramp_grows_the_budget_linearly(tiny_model, tiny_data):
    x, y = tiny_data
    seen = tf.Variable(tf.zeros([1]))

    class Recording(FGSM):
        def run_many(self, model, x, y, epsilons):
            seen.assign(epsilons)
            return super().run_many(model, x, y, epsilons)

    per_update = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: per_update.append(seen.numpy()[0])
    )
    # 120 images in batches of 60: 2 updates an epoch; a 2-epoch ramp reaches full eps at update 4.
    trainer = AdversarialTrainer(Recording(), 0.2, ratio=1.0, eps_ramp=2, epochs=4, batch_size=60)
    trainer.fit(tiny_model, (x, y), verbose=0, callbacks=[record])
    np.testing.assert_allclose(per_update, [0.05, 0.1, 0.15, 0.2, 0.2, 0.2, 0.2, 0.2], rtol=1e-6)


def test_guard_rolls_back_to_the_best_epoch_on_collapse(tiny_model, tiny_data):
    x, y = tiny_data
    model = keras.models.clone_model(tiny_model)
    model.set_weights(tiny_model.get_weights())
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    guard = RobustAccuracyGuard(model, PGD(steps=2, seed=0), 0.1, x[:20], y[:20], drop=20)
    measured = iter([40.0, 60.0, 35.0, 90.0])
    guard.robust_accuracy = lambda: next(measured)
    after_epoch = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: after_epoch.append(model.get_weights())
    )
    model.fit(x, y, epochs=4, verbose=0, callbacks=[record, guard])
    assert guard.rolled_back and guard.best_epoch == 1 and guard.history == [40.0, 60.0, 35.0]
    for a, b in zip(model.get_weights(), after_epoch[1]):
        np.testing.assert_array_equal(a, b)


def test_frozen_batchnorm_keeps_its_statistics():
    x, y = make_images(10)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.BatchNormalization(),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    before = [w.copy() for w in model.layers[1].get_weights()]
    defended, _ = AdversarialTrainer(FGSM(), 0.05, batchnorm="frozen", layers="all", epochs=2).fit(
        model, (x, y), verbose=0
    )
    for a, b in zip(before, defended.layers[1].get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(defended.layers[0].get_weights()[0], model.layers[0].get_weights()[0])
    trained, _ = AdversarialTrainer(FGSM(), 0.05, layers="all", epochs=2).fit(model, (x, y), verbose=0)
    assert not np.allclose(
        trained.layers[1].get_weights()[2], before[2]
    )  # trains by default: moving mean moves


def test_subset_count_one_means_one_image_for_arrays_and_datasets(tiny_model, tiny_data):
    x, y = tiny_data
    seen = tf.Variable(0.0)

    class Counting(FGSM):
        def run_many(self, model, x, y, epsilons):
            seen.assign_add(tf.cast(tf.shape(x)[0], tf.float32))
            return super().run_many(model, x, y, epsilons)

    AdversarialTrainer(Counting(), 0.05, subset=1, epochs=2).fit(tiny_model, (x, y), verbose=0)
    assert seen.numpy() == 2  # one image, two epochs (not 240: the count 1 is not the fraction 1.0)
    seen.assign(0.0)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    AdversarialTrainer(Counting(), 0.05, subset=1, epochs=2).fit(tiny_model, dataset, verbose=0)
    assert seen.numpy() == 2
    seen.assign(0.0)
    AdversarialTrainer(Counting(), 0.05, subset=1.0, epochs=1).fit(tiny_model, (x, y), verbose=0)
    assert seen.numpy() == len(x)


def test_bad_arguments(tiny_model, tiny_data):
    from robustmask.attacks.art.gradient import ARTFGSM

    x, y = tiny_data
    with pytest.raises(RobustmaskError, match="ratio must be a number in"):
        AdversarialTrainer(FGSM(), 0.1, ratio=0)
    with pytest.raises(RobustmaskError, match="objective must be one of"):
        AdversarialTrainer(FGSM(), 0.1, objective="hinge")
    with pytest.raises(RobustmaskError, match="objective='trades' takes one epsilon"):
        AdversarialTrainer(PGD(), [0.1, 0.2], objective="trades")
    with pytest.raises(RobustmaskError, match="batchnorm must be one of"):
        AdversarialTrainer(FGSM(), 0.1, batchnorm="sync")
    with pytest.raises(RobustmaskError, match="epochs must be a positive integer, got 0"):
        AdversarialTrainer(FGSM(), 0.1, epochs=0)
    with pytest.raises(RobustmaskError, match="learning_rate must be a positive number"):
        AdversarialTrainer(FGSM(), 0.1, learning_rate=-1)
    with pytest.raises(RobustmaskError, match="runs outside TensorFlow graphs"):
        AdversarialTrainer(ARTFGSM(), 0.1).fit(tiny_model, (x, y), verbose=0)
    with pytest.raises(RobustmaskError, match="unknown attack 'pgdd'"):
        AdversarialTrainer("pgdd", 0.1)


def test_registry_builds_every_defence_and_names_the_unknown():
    assert {"multi-eps", "pgd-at", "fast-at", "trades"} <= set(defenses.available())
    assert isinstance(defenses.get("pgd_at", eps=0.01), defenses.PGDAdversarialTrainer)
    with pytest.raises(RobustmaskError, match=r"unknown defense 'pgd-ta' \(did you mean pgd-at"):
        defenses.get("pgd-ta")
    with pytest.raises(RobustmaskError, match="trades has no parameter .temperature."):
        defenses.get("trades", temperature=3)


def test_registered_defence_and_errors_raised_inside_it(tiny_model):
    class Broken(defenses.Defense):
        def __init__(self, strength: float = 1.0):
            raise TypeError("a bug inside the constructor")

        def fit(self, model, train_data, **kwargs):
            return model, None

    defenses.register("broken", Broken)
    with pytest.raises(TypeError, match="a bug inside the constructor"):  # not reported as bad parameters
        defenses.get("broken", strength=2.0)
    defenses.register("not-a-defence", lambda: object())
    with pytest.raises(RobustmaskError, match="built a object, not a robustmask Defense"):
        defenses.get("not-a-defence")


@pytest.mark.parametrize("size", [0, -5, 2.5, "128"])
def test_fast_at_refuses_a_guard_size_that_is_not_a_positive_count(size):
    with pytest.raises(RobustmaskError, match="guard_size must be a positive integer") as error:
        defenses.FastAdversarialTrainer(guard_size=size)
    assert len(str(error.value).splitlines()) == 1
