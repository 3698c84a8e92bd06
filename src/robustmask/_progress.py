"""Progress bars for long steps (tqdm), Keras fit included."""

from __future__ import annotations

import keras


class EpochProgress(keras.callbacks.Callback):
    """One tqdm bar over the epochs of a Keras fit, with the latest metrics beside it."""

    def __init__(self, epochs: int, description: str):
        super().__init__()
        self.epochs = epochs
        self.description = description
        self.bar = None

    def on_train_begin(self, logs=None):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.epochs, desc=self.description, unit="epoch")

    def on_epoch_end(self, epoch, logs=None):
        if logs:
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items() if isinstance(v, (int, float))}, refresh=False)
        self.bar.update(1)

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()
