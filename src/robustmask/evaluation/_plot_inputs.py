"""The checks of `robustmask.evaluation.plots`' inputs: each returns the input as the figure draws
it (NumPy, floats, checked shapes) or raises a one-line `RobustmaskError` that says what to pass."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from robustmask.errors import RobustmaskError

#: The names Keras logs accuracy under, in the order a history is searched.
ACCURACY_KEYS = ("accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy")


def non_empty(what: str, mapping: Any) -> Mapping[str, Any]:
    if not isinstance(mapping, Mapping) or not mapping:
        raise RobustmaskError(
            f"{what} must be a non-empty mapping of name -> data, got {type(mapping).__name__}"
        )
    return mapping


def sequence(what: str, values: Any) -> list[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray, pd.Series)):
        raise RobustmaskError(f"{what} must be a sequence, got {type(values).__name__}")
    return list(values)


def same_lengths(**lengths: int) -> None:
    if len(set(lengths.values())) > 1:
        raise RobustmaskError("mismatched lengths: " + ", ".join(f"{k} {v}" for k, v in lengths.items()))


def number(what: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RobustmaskError(f"{what} must be numbers, got {value!r}") from None
    if not np.isfinite(number) or number < 0:
        raise RobustmaskError(f"{what} must be finite and >= 0, got {value!r}")
    return number


def count(what: str, n: Any, available: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise RobustmaskError(f"{what} must be a positive integer, got {n!r}")
    return min(int(n), available)


def numeric(what: str, values: Any) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise RobustmaskError(f"{what} must be numeric") from None
    if not np.all(np.isfinite(array)):
        raise RobustmaskError(f"{what} holds NaN or infinite values")
    return array


def images(what: str, images: Any) -> np.ndarray:
    array = numeric(what, images)
    if array.ndim != 4 or array.shape[-1] not in (1, 3) or 0 in array.shape:
        raise RobustmaskError(
            f"{what} must be images of shape (n, H, W, 3) or (n, H, W, 1), got {array.shape}"
        )
    if array.min() < 0.0 or array.max() > 1.0:
        raise RobustmaskError(
            f"{what} lies outside [0, 1] ({array.min():g} to {array.max():g}): clip or rescale it"
        )
    return array


def image(what: str, value: Any) -> np.ndarray:
    """One image (H, W, 3) or (H, W, 1) as floats in [0, 1]: uint8 is divided by 255, floats are checked."""
    array = np.asarray(value)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    if array.ndim != 3:
        raise RobustmaskError(f"{what} must be one image of shape (H, W, 3) or (H, W, 1), got {array.shape}")
    return images(what, array[None])[0]


def class_names(class_names: Any) -> list[str]:
    names = sequence("class_names", class_names)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise RobustmaskError(f"class_names must be non-empty strings, got {names!r}")
    return names


def labels(labels: Any, n: int, classes: int) -> np.ndarray:
    array = numeric("labels", labels)
    array = array.argmax(axis=1) if array.ndim == 2 else array
    if array.shape != (n,) or np.any(array != np.round(array)) or array.min() < 0 or array.max() >= classes:
        raise RobustmaskError(f"labels must be {n} class indices in [0, {classes}) or one-hot rows")
    return array.astype(np.int64)


def probabilities(what: str, probs: Any, n: int, classes: int) -> np.ndarray:
    array = numeric(what, probs)
    if array.shape != (n, classes):
        raise RobustmaskError(
            f"{what} must have shape ({n}, {classes}) (images, class_names), got {array.shape}"
        )
    if array.min() < 0.0 or array.max() > 1.0:
        raise RobustmaskError(f"{what} must be probabilities in [0, 1] (apply softmax to logits first)")
    return array


def eps_table(name: str, table: Any) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise RobustmaskError(f"table {name!r} must be a non-empty DataFrame")
    missing = [c for c in ("Epsilon", "Accuracy (%)") if c not in table.columns]
    if missing:
        raise RobustmaskError(f"table {name!r} lacks column(s) {missing}; it has {list(table.columns)}")
    columns = [c for c in ("Epsilon", "Accuracy (%)", "Loss") if c in table.columns]
    data = pd.DataFrame({c: numeric(f"column {c!r} of table {name!r}", table[c]) for c in columns})
    return data.sort_values("Epsilon", kind="stable").reset_index(drop=True)


def history(name: str, history: Any) -> dict[str, np.ndarray]:
    if not isinstance(history, Mapping):
        raise RobustmaskError(
            f"history {name!r} must be a History.history dict, got {type(history).__name__}"
        )
    accuracy = next((key for key in ACCURACY_KEYS if key in history), None)
    keys = {
        "accuracy": accuracy,
        "val_accuracy": accuracy and f"val_{accuracy}",
        "loss": "loss",
        "val_loss": "val_loss",
    }
    curves = {
        k: numeric(f"{v!r} of history {name!r}", history[v]) for k, v in keys.items() if v and v in history
    }
    if not curves.get("accuracy", curves.get("loss", np.empty(0))).size:
        raise RobustmaskError(f"history {name!r} has no accuracy or loss values; keys: {sorted(history)}")
    if any(curve.ndim != 1 or not curve.size for curve in curves.values()):
        raise RobustmaskError(f"history {name!r} has an empty or non-flat curve")
    return curves


def shares(counts: Any) -> pd.DataFrame:
    if not isinstance(counts, pd.DataFrame) or counts.empty:
        raise RobustmaskError("counts must be a non-empty DataFrame (epsilons x class names)")
    values = numeric("counts", counts)
    if values.min() < 0:
        raise RobustmaskError("counts must be >= 0")
    totals = values.sum(axis=1, keepdims=True)
    if np.any(totals == 0):
        raise RobustmaskError(f"counts row(s) {list(counts.index[totals[:, 0] == 0])} hold no predictions")
    return pd.DataFrame(100.0 * values / totals, index=counts.index, columns=counts.columns)
