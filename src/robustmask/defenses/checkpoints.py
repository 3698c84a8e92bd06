"""Resumable training: one atomic checkpoint per epoch, and a restart that continues from it.

A run killed at any moment (SIGKILL included) leaves either the previous checkpoint or the new one,
never half of one: the weights file and then the state file that names it are each written to a
temporary file and renamed into place. Started again with the same arguments, a trainer reloads the
weights and optimizer state and continues at the next epoch; since every epoch's order and every
random start depend only on (seed, epoch, update), it ends with the weights an uninterrupted run
would have had.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras

from robustmask._io import write_atomically, write_text_atomically
from robustmask.errors import RobustmaskError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import tensorflow as tf

STATE_FILE = "state.json"


class EpochCheckpoint(keras.callbacks.Callback):
    """Writes the training model's weights and optimizer state after every epoch.

    Args:
        folder: where checkpoints go; created if missing.
        fingerprint: the settings a checkpoint must match to be resumed (JSON-serialisable).
    """

    def __init__(self, folder: str | os.PathLike, fingerprint: dict[str, Any]) -> None:
        super().__init__()
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise RobustmaskError(f"checkpoint_dir {self.folder} exists and is not a folder")
        self.fingerprint = json.loads(json.dumps(fingerprint, default=str))

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
        return int(state["epoch"])

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        name = f"epoch-{epoch + 1:04d}.weights.h5"
        write_atomically(self.folder / name, self.model.save_weights, suffix=".weights.h5")
        state = {
            "epoch": epoch + 1,
            "weights": name,
            "fingerprint": self.fingerprint,
            "random_states": [v.numpy().tolist() for v in _random_states(self.model)],
            "logs": {k: float(v) for k, v in (logs or {}).items()},
        }
        write_text_atomically(self.folder / STATE_FILE, json.dumps(state, indent=2))
        for old in self.folder.glob("epoch-*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)


def _random_states(model: keras.Model) -> list[keras.Variable]:
    """The seed-generator states of the model's random layers (Dropout...): variables that are no weights.

    Keras' weight files leave them out, and without them a resumed run would drop other units.
    """
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]
