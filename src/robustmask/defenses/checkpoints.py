"""Resumable training: one atomic checkpoint per epoch, and a restart that continues from it.

A run killed at any moment (SIGKILL included) leaves either the previous checkpoint or the new one,
never half of one: the weights file and then the state file that names it are each written to a
temporary file and renamed into place. Started again with the same arguments, a trainer reloads the
weights and optimizer state and continues at the next epoch; since every epoch's order and every
random start depend only on (seed, epoch, update), it ends with the weights an uninterrupted run
would have had. Callbacks that keep a record across epochs (robust validation and its best epoch,
the fast-AT guard) are checkpointed with the weights, and a run that one of them stopped (a collapse
rolled back) is not trained further when started again: it ends with the weights it ended with.
Every epoch's logs and wall-clock seconds are checkpointed too (`run_history`): a resumed run's
`History`, as Keras', holds only the epochs that call trained.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import keras
import numpy as np

from robustmask._io import write_atomically, write_text_atomically
from robustmask.errors import RobustmaskError

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

STATE_FILE = "state.json"


class Stateful(Protocol):
    """A callback whose record a checkpoint keeps (as `robustmask.defenses.validation.RobustValidation`)."""

    def get_state(self) -> tuple[dict[str, Any], list[np.ndarray]]: ...

    def set_state(self, record: dict[str, Any], arrays: Sequence[np.ndarray]) -> None: ...


class EpochCheckpoint(keras.callbacks.Callback):
    """Writes the training model's weights and optimizer state after every epoch.

    Args:
        folder: where checkpoints go; created if missing.
        fingerprint: the settings a checkpoint must match to be resumed (JSON-serialisable).
        stateful: callbacks whose ``get_state()`` is saved with every epoch and given back to their
            ``set_state`` on restore; they must come before this callback in the list given to fit.

    After `restore`, ``stopped`` says whether the checkpointed run had been stopped by a callback
    (a collapse rolled back): a trainer then trains no further epoch.

    Example::

        checkpoint = EpochCheckpoint("runs/ckpt", {"trainer": "mine"})
        start = checkpoint.restore(model, x[:1])
        model.fit(x, y, epochs=10, initial_epoch=start, callbacks=[checkpoint])
    """

    def __init__(
        self, folder: str | os.PathLike, fingerprint: dict[str, Any], stateful: Sequence[Stateful] = ()
    ) -> None:
        super().__init__()
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise RobustmaskError(f"checkpoint_dir {self.folder} exists and is not a folder")
        self.fingerprint = json.loads(json.dumps(fingerprint, default=str))
        self.stateful, self.stopped = list(stateful), False
        self.writer = True  # False on a cluster's non-chief workers: they restore, the chief writes
        self._written: dict[int, tuple[list[int], str]] = {}  # callback -> (ids of its arrays, file)
        self.epochs: list[dict[str, Any]] = []  # every checkpointed epoch's seconds and logs
        self._started = time.perf_counter()

    def restore(self, model: keras.Model, sample: np.ndarray | tf.Tensor) -> int:
        """Load the last checkpoint into `model` (built on `sample`); return the epoch to start at."""
        state_path = self.folder / STATE_FILE
        if not state_path.is_file():
            return 0
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state.get("fingerprint") != self.fingerprint:
            changed = sorted(
                k
                for k in {*self.fingerprint, *state.get("fingerprint", {})}
                if self.fingerprint.get(k) != state.get("fingerprint", {}).get(k)
            )
            raise RobustmaskError(
                f"checkpoint_dir {self.folder} holds a checkpoint of another run (differs in: {', '.join(changed)}); "
                "give another folder, or delete it to start afresh"
            )
        model(sample[:1], training=False)  # create the variables the weights are loaded into
        model.optimizer.build(model.trainable_variables)
        model.load_weights(self.folder / state["weights"])
        for variable, value in zip(_random_states(model), state.get("random_states", [])):
            variable.assign(value)
        for index, (callback, saved) in enumerate(zip(self.stateful, state.get("callbacks", []))):
            arrays: list[np.ndarray] = []
            if saved.get("arrays"):
                with np.load(self.folder / saved["arrays"]) as data:
                    arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
                self._written[index] = ([id(a) for a in arrays], saved["arrays"])  # not written again
            callback.set_state(saved["record"], arrays)
        self.stopped = bool(state.get("stopped", False))
        self.epochs = list(state.get("epochs", []))  # absent from checkpoints written before 0.1.0
        return int(state["epoch"])

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self.writer:
            return
        name = f"epoch-{epoch + 1:04d}.weights.h5"
        write_atomically(self.folder / name, self.model.save_weights, suffix=".weights.h5")
        seconds = round(time.perf_counter() - self._started, 3)
        values = {k: float(v) for k, v in (logs or {}).items()}
        self.epochs.append({"epoch": epoch + 1, "seconds": seconds, "logs": values})
        state = {
            "epoch": epoch + 1,
            "weights": name,
            "fingerprint": self.fingerprint,
            "random_states": [v.numpy().tolist() for v in _random_states(self.model)],
            "logs": values,
            "callbacks": [self._save_callback(i, epoch) for i in range(len(self.stateful))],
            "stopped": bool(self.model.stop_training),
            "epochs": self.epochs,
        }
        write_text_atomically(self.folder / STATE_FILE, json.dumps(state, indent=2))
        keep = {name, *(saved["arrays"] for saved in state["callbacks"] if saved["arrays"])}
        for old in [*self.folder.glob("epoch-*.weights.h5"), *self.folder.glob("callback-*.npz")]:
            if old.name not in keep:
                old.unlink(missing_ok=True)

    def _save_callback(self, index: int, epoch: int) -> dict[str, Any]:
        """One callback's record, its arrays in a file of their own (written again only when they change)."""
        record, arrays = self.stateful[index].get_state()
        if not arrays:
            return {"record": record, "arrays": None}
        ids = [id(a) for a in arrays]
        written = self._written.get(index)
        if written is not None and written[0] == ids and (self.folder / written[1]).is_file():
            return {"record": record, "arrays": written[1]}
        name = f"callback-{index}-epoch-{epoch + 1:04d}.npz"
        write_atomically(self.folder / name, lambda tmp: _save_arrays(tmp, arrays), suffix=".npz")
        self._written[index] = (ids, name)
        return {"record": record, "arrays": name}


def run_history(folder: str | os.PathLike) -> dict[str, list[float]]:
    """Every checkpointed epoch of the run in `folder`, those of earlier (killed) starts included.

    Returns each metric of the logs as a list with one value per epoch (Keras' ``History.history``
    form), ``epoch`` (1, 2, ...) and ``seconds``: each epoch's wall-clock time, its validation
    included; their sum is what the run cost, however many times it was started. (A run resumed from
    a checkpoint written before robustmask kept this record has its later epochs only: see ``epoch``.)

    Example::

        defended, history = trainer.fit(model, data, checkpoint_dir="runs/ckpt")  # killed, then again
        record = run_history("runs/ckpt")
        sum(record["seconds"]), record["val_robust_accuracy"]
    """
    state_path = Path(folder) / STATE_FILE
    if not state_path.is_file():
        raise RobustmaskError(f"{folder} holds no checkpointed run ({STATE_FILE} is missing)")
    epochs = json.loads(state_path.read_text(encoding="utf-8")).get("epochs", [])
    record: dict[str, list[float]] = {key: [epoch[key] for epoch in epochs] for key in ("epoch", "seconds")}
    for epoch in epochs:
        for key, value in epoch["logs"].items():
            record.setdefault(key, []).append(value)
    return record


def fingerprint(trainer: Any, model: keras.Model, epochs: int) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the same trainer, settings and model."""
    settings = {k: v for k, v in vars(trainer).items() if isinstance(v, (int, float, str, list, type(None)))}
    optimizer = getattr(trainer, "optimizer", None)
    if isinstance(optimizer, keras.optimizers.Optimizer):
        settings["optimizer"] = type(optimizer).__name__
    return {
        "trainer": type(trainer).__name__,
        "attack": repr(getattr(trainer, "attack", None)),
        "model": model.name,
        "weights": sum(int(w.size) for w in model.get_weights()),
        "epochs": epochs,
        **settings,
    }


def _save_arrays(path: str, arrays: Sequence[np.ndarray]) -> None:
    with open(path, "wb") as file:  # a file object: np.savez would add ".npz" to a name
        np.savez(file, *arrays)


def _random_states(model: keras.Model) -> list[keras.Variable]:
    """The seed-generator states of the model's random layers (Dropout...): variables that are no weights.

    Keras' weight files leave them out, and without them a resumed run would drop other units.
    """
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]
