"""Progress bars for long steps (tqdm), Keras fit included.

Every bar goes to stderr and shows only on a terminal (tqdm's ``disable=None``); a caller that is
asked to be quiet (``--no-progress``, ``progress=False``) makes none.
"""

from __future__ import annotations

from typing import Any

import keras


def progress_bar(total: int | None, description: str, *, enabled: bool = True, unit: str = "it") -> Any:
    """A tqdm bar on stderr (a context manager; ``bar.update(n)``), silent unless `enabled` and stderr
    is a terminal.

    Example::

        with progress_bar(len(epsilons), "attacking pgd-at", enabled=progress) as bar:
            for eps in epsilons:
                ...
                bar.update(1)
    """
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit=unit, disable=None if enabled else True)


class EpochProgress(keras.callbacks.Callback):
    """One tqdm bar over the epochs of a Keras fit, with the latest metrics beside it."""

    def __init__(self, epochs: int, description: str) -> None:
        super().__init__()
        self.epochs = epochs
        self.description = description
        self.bar: Any = None  # a tqdm bar while training runs

    def on_train_begin(self, logs: dict | None = None) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.epochs, desc=self.description, unit="epoch", disable=None)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs:
            self.bar.set_postfix(
                {k: f"{v:.4f}" for k, v in logs.items() if isinstance(v, (int, float))}, refresh=False
            )
        self.bar.update(1)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.close()
