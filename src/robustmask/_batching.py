"""Stream (x, y) batches from NumPy arrays or a batched tf.data.Dataset, without loading it all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow as tf

from robustmask.errors import DataError


def is_dataset(data: object) -> bool:
    return isinstance(data, tf.data.Dataset)


def iterate_batches(data: Any, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (x, y) NumPy batches from `(x, y)` arrays or a dataset of (x, y[, weights]) batches."""
    if is_dataset(data):
        spec = data.element_spec
        if not isinstance(spec, tuple) or len(spec) < 2:
            raise DataError("the dataset must yield (images, labels) pairs")
        if spec[0].shape.rank is not None and spec[0].shape.rank < 2:
            raise DataError("the dataset must be batched: call .batch(n) on it")
        for element in data:
            yield element[0].numpy(), element[1].numpy()
        return
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise DataError("data must be an (x, y) pair of arrays or a batched tf.data.Dataset of (x, y)")
    x, y = data
    if len(x) != len(y):
        raise DataError(f"data has {len(x)} images but {len(y)} labels")
    for start in range(0, len(x), batch_size):
        yield np.asarray(x[start : start + batch_size]), np.asarray(y[start : start + batch_size])


def num_examples(data: Any) -> int | None:
    """Number of examples, where it is known without reading the data."""
    if is_dataset(data):
        return None
    return len(data[0])
