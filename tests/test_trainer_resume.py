"""A resumed run keeps what the robust validation decided: the guard's roll-back and the best epoch."""

from __future__ import annotations

import json
import time

import keras
import numpy as np
import pytest

from robustmask.defenses import FastAdversarialTrainer, PGDAdversarialTrainer, run_history
from robustmask.defenses.validation import RobustValidation
from robustmask.errors import RobustmaskError


class Interrupted(Exception):
    """Stands for a kill: the run stops between two epochs, its checkpoints on disk."""


def scripted(monkeypatch, values):
    measured = iter(values)
    monkeypatch.setattr(RobustValidation, "robust_accuracy", lambda self: next(measured))


def snapshots(trainer, store, stop_before=None):
    """Callbacks that keep the defended model's weights after every epoch (and interrupt at `stop_before`)."""

    def begin(epoch, logs):
        if epoch == stop_before:
            raise Interrupted

    return [
        keras.callbacks.LambdaCallback(
            on_epoch_begin=begin,
            on_epoch_end=lambda epoch, logs: store.append(trainer.validation.guarded.get_weights()),
        )
    ]


def assert_same(a, b):
    for left, right in zip(a, b):
        np.testing.assert_array_equal(left, right)


def test_the_guards_roll_back_survives_a_restart(monkeypatch, tmp_path, tiny_model, tiny_data):
    """Fast AT collapses at epoch 3 (60% -> 30%); the same command run again returns epoch 2's weights."""
    x, y = tiny_data
    settings = {"eps": 0.1, "epochs": 4, "batch_size": 40, "eps_ramp": 0, "guard_size": 24, "seed": 0}
    scripted(monkeypatch, [0.40, 0.60, 0.30, 0.70, 0.70])  # values past the collapse: a run that went on
    first = FastAdversarialTrainer(**settings)
    after_epoch = []
    rolled_back, history = first.fit(
        tiny_model, (x, y), checkpoint_dir=tmp_path, verbose=0, callbacks=snapshots(first, after_epoch)
    )
    assert first.guard.rolled_back and first.guard.best_epoch == 1 and len(history.history["loss"]) == 3
    assert_same(rolled_back.get_weights(), after_epoch[1])
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["stopped"] and state["callbacks"][0]["record"]["rolled_back"]

    again = FastAdversarialTrainer(**settings)  # the identical command, started again
    resumed, history = again.fit(tiny_model, (x, y), checkpoint_dir=tmp_path, verbose=0)
    assert history.history.get("loss", []) == []  # nothing more was trained
    assert_same(resumed.get_weights(), after_epoch[1])
    assert again.guard.rolled_back and again.guard.best_epoch == 1 and again.guard.history == [0.4, 0.6, 0.3]


def test_the_best_epoch_survives_an_interruption(monkeypatch, tmp_path, tiny_model, tiny_data):
    """Best at epoch 2 of 4, killed before epoch 4: the resumed run still ends with epoch 2's weights."""
    x, y = tiny_data
    x_val, y_val = x[:24], y[:24]
    settings = {"eps": 0.1, "steps": 1, "epochs": 4, "batch_size": 40, "eps_ramp": 0, "seed": 0}
    scripted(monkeypatch, [0.50, 0.90, 0.60, 0.70])
    first = PGDAdversarialTrainer(**settings)
    after_epoch = []
    with pytest.raises(Interrupted):
        first.fit(
            tiny_model,
            (x, y),
            validation_data=(x_val, y_val),
            checkpoint_dir=tmp_path,
            verbose=0,
            callbacks=snapshots(first, after_epoch, stop_before=3),
        )
    again = PGDAdversarialTrainer(**settings)
    defended, history = again.fit(
        tiny_model, (x, y), validation_data=(x_val, y_val), checkpoint_dir=tmp_path, verbose=0
    )
    assert history.history["val_robust_accuracy"] == [0.70]  # the fourth epoch only
    assert again.validation.history == [0.5, 0.9, 0.6, 0.7] and again.validation.best_epoch == 1
    assert_same(defended.get_weights(), after_epoch[1])
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == ["callback-0-epoch-0002.npz", "epoch-0004.weights.h5", "state.json"]


def test_the_run_history_holds_every_epoch_of_every_start(monkeypatch, tmp_path, tiny_model, tiny_data):
    """Killed after 2 of 3 epochs and started again: fit's History has the third epoch only (as Keras'
    after BackupAndRestore); run_history has all three, each as the start that trained it logged it."""
    x, y = tiny_data
    settings = {"eps": 0.1, "steps": 1, "epochs": 3, "batch_size": 40, "eps_ramp": 0, "seed": 0}
    scripted(monkeypatch, [0.50, 0.90, 0.60])
    logged = []

    def log(epoch, logs):
        logged.append(dict(logs))
        time.sleep(0.3)  # inside the epoch: its seconds must count it

    keep = keras.callbacks.LambdaCallback(on_epoch_end=log)
    fit = {"validation_data": (x[:24], y[:24]), "checkpoint_dir": tmp_path, "verbose": 0}
    first = PGDAdversarialTrainer(**settings)
    started = time.perf_counter()
    with pytest.raises(Interrupted):
        first.fit(tiny_model, (x, y), callbacks=[keep, *snapshots(first, [], stop_before=2)], **fit)
    _, history = PGDAdversarialTrainer(**settings).fit(tiny_model, (x, y), callbacks=[keep], **fit)
    wall = time.perf_counter() - started
    record = run_history(tmp_path)
    assert history.history["val_robust_accuracy"] == [0.60]
    assert record["epoch"] == [1, 2, 3] and record["val_robust_accuracy"] == [0.50, 0.90, 0.60]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert record[key] == pytest.approx([entry[key] for entry in logged]), key
    assert all(seconds >= 0.3 for seconds in record["seconds"]) and sum(record["seconds"]) < wall
    with pytest.raises(RobustmaskError, match="holds no checkpointed run"):
        run_history(tmp_path / "nothing")
