"""Robust validation: every trainer measures PGD accuracy each epoch, keeps the best, warns if cut short."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
from conftest import build_cnn, make_images

from robustmask.attacks import FGSM, PGD
from robustmask.defenses import (
    AdversarialTrainer,
    FastAdversarialTrainer,
    MultiEpsilonAdversarialTrainer,
    PGDAdversarialTrainer,
    TRADESTrainer,
)
from robustmask.defenses.validation import RobustValidation, still_rising

EPS = 0.1
RISING = "robust validation accuracy was still rising at the last epoch"
TRAINERS = {
    "core": lambda **kw: AdversarialTrainer(FGSM(), EPS, **kw),
    "pgd-at": lambda **kw: PGDAdversarialTrainer(eps=EPS, steps=2, eps_ramp=0, **kw),
    "trades": lambda **kw: TRADESTrainer(eps=EPS, steps=2, eps_ramp=0, **kw),
    "fast-at": lambda **kw: FastAdversarialTrainer(eps=EPS, eps_ramp=0, **kw),
    "multi-eps": lambda **kw: MultiEpsilonAdversarialTrainer([0.05, EPS], source="current", **kw),
}


@pytest.fixture(scope="module")
def validation():
    return make_images(12, seed=2)  # 36 images never trained on


def count_robust(model, x, y, eps=EPS):
    """Images that PGD-10 (random start, seed 0) does not fool: counted here, independently of the trainer."""
    adversarial = PGD(steps=10, seed=0)(model, x, y, eps=eps)
    return int(np.count_nonzero(np.argmax(model.predict(adversarial, verbose=0), axis=1) == y))


def scripted(monkeypatch, values):
    """Make RobustValidation report `values`, one an epoch, instead of attacking (a seam for decisions)."""
    measured = iter(values)
    monkeypatch.setattr(RobustValidation, "robust_accuracy", lambda self: next(measured))


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_every_trainer_logs_robust_validation_accuracy(name, tiny_model, tiny_data, validation):
    x, y = tiny_data
    trainer = TRAINERS[name](epochs=2, batch_size=40, validation_size=24, keep_best="last")
    _, history = trainer.fit(tiny_model, (x, y), validation_data=validation, verbose=0)
    robust, clean = history.history["val_robust_accuracy"], history.history["val_accuracy"]
    assert len(robust) == len(clean) == 2
    assert all(v * 24 == round(v * 24) and 0 <= v <= 1 for v in robust)  # a share of the 24 images
    assert trainer.validation.history == robust


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_a_users_callbacks_see_and_can_stop_on_robust_accuracy(
    name, monkeypatch, tiny_model, tiny_data, validation
):
    """As Keras' own val_ metrics: a user's callback reads val_robust_accuracy at every epoch's end, and
    Keras' EarlyStopping on it stops the run (best at epoch 2, then one epoch of patience)."""
    scripted(monkeypatch, [0.30, 0.60, 0.50, 0.40, 0.90])
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(logs.get("val_robust_accuracy"))
    )
    stop = keras.callbacks.EarlyStopping(monitor="val_robust_accuracy", mode="max", patience=1)
    trainer = TRAINERS[name](epochs=5, batch_size=40, keep_best="last")
    _, history = trainer.fit(
        tiny_model, tiny_data, validation_data=validation, callbacks=[record, stop], verbose=0
    )
    assert seen == [0.30, 0.60, 0.50]
    assert history.history["val_robust_accuracy"] == seen and stop.stopped_epoch == 2


def test_the_logged_value_is_an_independent_count_and_the_best_epoch_is_kept(
    tiny_model, tiny_data, validation
):
    x, y = tiny_data
    x_val, y_val = validation
    trainer = PGDAdversarialTrainer(
        eps=EPS, steps=2, epochs=3, batch_size=40, eps_ramp=1, validation_size=32, seed=0
    )
    defended, history = trainer.fit(tiny_model, (x, y), validation_data=(x_val, y_val), verbose=0)
    logged = history.history["val_robust_accuracy"]
    # keep_best="robust" (the default): the model returned is the best epoch's, and PGD-10 with the
    # same seed run here on it counts exactly the best value logged.
    assert max(logged) == count_robust(defended, x_val[:32], y_val[:32]) / 32
    assert trainer.validation.best_epoch == max(range(3), key=lambda i: (logged[i], i))
    assert trainer.validation.restored


def test_keep_best_last_returns_the_last_epoch_measured_exactly(tiny_model, tiny_data, validation):
    x, y = tiny_data
    x_val, y_val = validation
    trainer = TRADESTrainer(
        eps=EPS, steps=2, epochs=2, batch_size=40, eps_ramp=0, validation_size=32, keep_best="last"
    )
    defended, history = trainer.fit(tiny_model, (x, y), validation_data=(x_val, y_val), verbose=0)
    assert history.history["val_robust_accuracy"][-1] == count_robust(defended, x_val[:32], y_val[:32]) / 32
    assert not trainer.validation.restored


@pytest.mark.parametrize(
    ("script", "best"),
    [([0.30, 0.60, 0.40], 1), ([0.30, 0.60, 0.60, 0.40], 2)],
    ids=["one-best", "tied-later-kept"],
)
def test_keep_best_restores_the_best_epoch_by_robust_accuracy(
    monkeypatch, tiny_model, tiny_data, validation, script, best
):
    # Among equal epochs the later one is kept: it trained longer at the same robust accuracy.
    x, y = tiny_data
    scripted(monkeypatch, script)
    trainer = PGDAdversarialTrainer(eps=EPS, steps=1, epochs=len(script), batch_size=40, eps_ramp=0)
    weights = []
    snapshot = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: weights.append(trainer.validation.guarded.get_weights())
    )
    defended, history = trainer.fit(
        tiny_model, (x, y), validation_data=validation, verbose=0, callbacks=[snapshot]
    )
    assert history.history["val_robust_accuracy"] == script and trainer.validation.best_epoch == best
    for a, b in zip(defended.get_weights(), weights[best]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(defended.get_weights()[0], weights[best - 1][0])
    assert not np.array_equal(defended.get_weights()[0], weights[-1][0])


def test_still_rising_is_defined_on_the_last_epochs():
    assert still_rising([0.30, 0.45]) == pytest.approx((0.30, 0.45))
    assert still_rising([0.2, 0.3, 0.4, 0.5, 0.6]) == pytest.approx((0.4, 0.6))  # mean of the 3 before
    assert still_rising([0.50]) is None  # one epoch says nothing
    assert still_rising([0.50, 0.505]) is None  # up by less than a point
    assert still_rising([0.2, 0.5, 0.5, 0.5, 0.5]) is None  # levelled off
    assert still_rising([0.2, 0.6, 0.5, 0.45, 0.5, 0.52, 0.5, 0.51, 0.5, 0.55]) is None  # best epoch far back
    assert still_rising([0.2, 0.4, 0.5, 0.5, 0.51, 0.5, 0.5, 0.52, 0.5, 0.53]) == pytest.approx(
        (0.5067, 0.53), abs=1e-3
    )


def test_a_run_cut_short_warns_and_a_levelled_one_does_not(monkeypatch, tiny_model, tiny_data, validation):
    x, y = tiny_data
    trainer = PGDAdversarialTrainer(eps=EPS, steps=1, epochs=3, batch_size=40, eps_ramp=0)
    scripted(monkeypatch, [0.30, 0.40, 0.50])
    with pytest.warns(
        UserWarning,
        match=rf"{RISING} \(35.0% -> 50.0%\): the run stopped early; train longer "
        r"\(epochs=6\) or with more data",
    ) as caught:
        trainer.fit(tiny_model, (x, y), validation_data=validation, verbose=0)
    assert len([w for w in caught if RISING in str(w.message)]) == 1
    scripted(monkeypatch, [0.30, 0.50, 0.50, 0.50, 0.50])  # levelled off for the last 4 epochs
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=RISING)
        trainer.fit(tiny_model, (x, y), epochs=5, validation_data=validation, verbose=0)


def test_real_runs_a_model_still_learning_warns_a_converged_one_does_not(tiny_model, tiny_data, validation):
    x, y = tiny_data
    keras.utils.set_random_seed(1)
    fresh = build_cnn(3)  # from scratch: two epochs leave it learning
    fresh.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    trainer = PGDAdversarialTrainer(
        eps=0.02, steps=2, epochs=2, batch_size=16, eps_ramp=0, learning_rate=3e-3, schedule="constant"
    )
    with pytest.warns(UserWarning, match=RISING):
        trainer.fit(fresh, (x, y), validation_data=validation, verbose=0)
    # The trained fixture at a small eps: robust accuracy is level from the first epoch on.
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=RISING)
        _, history = PGDAdversarialTrainer(eps=0.02, steps=2, epochs=3, batch_size=40, eps_ramp=0).fit(
            tiny_model, (x, y), validation_data=validation, verbose=0
        )
    assert max(history.history["val_robust_accuracy"]) - min(history.history["val_robust_accuracy"]) <= 0.01


def test_the_progress_bar_is_on_by_default_and_shows_robust_accuracy(
    capsys, tiny_model, tiny_data, validation
):
    x, y = tiny_data
    for name in sorted(TRAINERS):
        TRAINERS[name](epochs=1, batch_size=60, validation_size=12).fit(
            tiny_model, (x, y), validation_data=validation
        )
        shown = capsys.readouterr().out  # Keras' bar: "4/4 ━━━━ 2s 400ms/step - accuracy: ..."
        assert "━━" in shown and "/step" in shown, f"{name} showed no progress bar"
        assert "val_robust_accuracy: " in shown and "val_accuracy: " in shown, name
