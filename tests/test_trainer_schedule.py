"""How long a trainer runs and with what: the schedule over a Dataset, the optimizer asked for, the ramp."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from robustmask.attacks import PGD
from robustmask.defenses import AdversarialTrainer, PGDAdversarialTrainer, TRADESTrainer
from robustmask.errors import RobustmaskError

EPS = 0.1


class Recorder(keras.callbacks.Callback):
    """The learning rate and the eps of each update (the eps the attack was called with)."""

    def __init__(self, seen):
        super().__init__()
        self.seen, self.rates, self.eps = seen, [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    def on_train_batch_end(self, batch, logs=None):
        self.eps.append(float(self.seen.numpy()[0]))


def recording_trainer(**settings):
    """A PGD-AT trainer whose attack records the eps of every update in the returned variable."""
    seen = tf.Variable(tf.zeros([1]))

    class RecordingPGD(PGD):
        def run_many(self, model, x, y, epsilons):
            seen.assign(tf.reshape(epsilons, [-1])[:1])
            return super().run_many(model, x, y, epsilons)

    trainer = PGDAdversarialTrainer(eps=EPS, steps=1, seed=0, **settings)
    trainer.attack = RecordingPGD(steps=1, random_start=True)
    return trainer, Recorder(seen)


def test_a_dataset_gets_the_schedule_and_ramp_of_arrays(tiny_model, tiny_data):
    """120 images, 40 a batch, 4 epochs: 12 updates, the eps ramp over the first 6, the cosine over all 12."""
    x, y = tiny_data
    runs = {}
    for name, data in {
        "arrays": (x, y),
        "dataset": tf.data.Dataset.from_tensor_slices((x, y)).batch(16),  # last batch partial: counted
    }.items():
        trainer, recorder = recording_trainer(epochs=4, batch_size=40, eps_ramp=2)
        trainer.fit(tiny_model, data, verbose=0, callbacks=[recorder])
        runs[name] = recorder
    arrays, dataset = runs["arrays"], runs["dataset"]
    assert len(arrays.rates) == len(dataset.rates) == 12
    np.testing.assert_allclose(dataset.rates, arrays.rates, rtol=1e-6)
    np.testing.assert_allclose(dataset.eps, arrays.eps, rtol=1e-6)
    np.testing.assert_allclose(dataset.eps, [EPS * min(1, (i + 1) / 6) for i in range(12)], rtol=1e-5)
    assert dataset.rates[0] == pytest.approx(1e-3) and 0 < dataset.rates[-1] < 1e-4  # decays over all 12


def test_an_infinite_dataset_is_refused(tiny_model, tiny_data):
    data = tf.data.Dataset.from_tensor_slices(tiny_data).batch(16).repeat()
    with pytest.raises(RobustmaskError, match="the training dataset is infinite") as error:
        PGDAdversarialTrainer(eps=EPS, steps=1, epochs=1).fit(tiny_model, data, verbose=0)
    assert len(str(error.value).splitlines()) == 1


@pytest.mark.parametrize("preset", [PGDAdversarialTrainer, TRADESTrainer])
def test_the_optimizer_passed_in_is_the_one_that_trains(preset, tiny_model, tiny_data):
    x, y = tiny_data
    sgd = keras.optimizers.SGD(0.1, momentum=0.9)
    trainer = preset(eps=EPS, steps=1, epochs=1, batch_size=40, eps_ramp=0, optimizer=sgd)
    _, history = trainer.fit(tiny_model, (x, y), verbose=0)
    assert history.model.optimizer is sgd
    assert int(sgd.iterations.numpy()) == -(-len(x) // trainer.clean_per_step)  # every update made by it
    assert float(sgd.learning_rate.numpy()) == pytest.approx(0.1) and sgd.momentum == 0.9


def test_named_optimizers_and_a_rate_given_with_an_optimizer(tiny_model, tiny_data):
    x, y = tiny_data
    _, history = PGDAdversarialTrainer(
        eps=EPS, steps=1, epochs=1, batch_size=60, eps_ramp=0, optimizer="sgd"
    ).fit(tiny_model, (x, y), verbose=0)
    sgd = history.model.optimizer
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.nesterov and sgd.momentum == 0.9
    assert sgd.weight_decay == pytest.approx(5e-4)
    # A rate beside an optimizer object: a copy of it trains, the trainer's schedule peaking at the rate.
    given = keras.optimizers.SGD(0.5, momentum=0.8)
    trainer = PGDAdversarialTrainer(
        eps=EPS,
        steps=1,
        epochs=2,
        batch_size=60,
        eps_ramp=0,
        optimizer=given,
        learning_rate=0.02,
        schedule="piecewise",
    )
    _, history = trainer.fit(tiny_model, (x, y), verbose=0)
    used = history.model.optimizer
    assert isinstance(used, keras.optimizers.SGD) and used is not given and used.momentum == 0.8
    assert [float(used._learning_rate(step)) for step in range(4)] == pytest.approx([0.02, 0.02, 0.002, 2e-4])


def test_schedules_span_the_run():
    from robustmask.defenses._optimizers import make_schedule

    total = 20
    rates = {
        kind: [float(make_schedule(kind, 0.1, total)(s)) for s in range(total)]
        for kind in ("cosine", "onecycle", "piecewise", "constant")
    }
    assert rates["cosine"][0] == pytest.approx(0.1) and rates["cosine"][-1] < 0.002
    assert rates["constant"] == pytest.approx([0.1] * total)
    assert rates["piecewise"] == pytest.approx([0.1] * 10 + [0.01] * 5 + [0.001] * 5)
    onecycle = rates["onecycle"]
    assert int(np.argmax(onecycle)) == 7 and max(onecycle) == pytest.approx(0.1)  # the top at 40%
    assert onecycle[0] < 0.02 and onecycle[-1] < 0.01
    warm = [float(make_schedule("constant", 0.1, total, warmup_steps=4)(s)) for s in range(6)]
    assert warm == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1, 0.1])


def test_a_ramp_longer_than_half_the_run_is_shortened_with_a_warning(tiny_model, tiny_data):
    """fit(epochs=2) with eps_ramp=5 used to train at 2/5 of eps at most; now the second epoch is at eps."""
    x, y = tiny_data
    trainer, recorder = recording_trainer(epochs=10, batch_size=40, eps_ramp=5)
    with pytest.warns(UserWarning, match=r"eps_ramp=5 epochs is more than half of the 2-epoch run") as caught:
        trainer.fit(tiny_model, (x, y), epochs=2, verbose=0, callbacks=[recorder])
    assert len(str(caught[0].message).splitlines()) == 1
    np.testing.assert_allclose(recorder.eps, [EPS / 3, 2 * EPS / 3, EPS, EPS, EPS, EPS], rtol=1e-5)
    trainer, recorder = recording_trainer(epochs=4, batch_size=40, eps_ramp=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # half the run: no warning
        trainer.fit(tiny_model, (x, y), verbose=0, callbacks=[recorder])


def test_batchnorm_trains_by_default_with_every_layers_setting():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (24, 8, 8, 3)).astype(np.float32)
    y = np.arange(24) % 3
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.BatchNormalization(),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    before = [w.copy() for w in model.layers[1].get_weights()]
    for layers in ("trainable", "all"):
        trainer = AdversarialTrainer(PGD(steps=1), 0.05, layers=layers, epochs=1)
        assert trainer.batchnorm == "train"
        defended, _ = trainer.fit(model, (x, y), verbose=0)
        moving_mean = defended.layers[1].get_weights()[2]
        assert not np.allclose(moving_mean, before[2]), (
            f"BatchNorm statistics stayed frozen with layers={layers}"
        )


def test_bad_optimizer_settings():
    with pytest.raises(RobustmaskError, match="unknown optimizer 'adamm'"):
        PGDAdversarialTrainer(optimizer="adamm")
    with pytest.raises(RobustmaskError, match="schedule must be one of 'cosine', 'onecycle'"):
        PGDAdversarialTrainer(schedule="linear")
    with pytest.raises(RobustmaskError, match="weight_decay must be a non-negative number"):
        PGDAdversarialTrainer(optimizer="sgd", weight_decay=-1)
    with pytest.raises(RobustmaskError, match="keep_best must be one of 'robust', 'last'"):
        PGDAdversarialTrainer(keep_best="best")
