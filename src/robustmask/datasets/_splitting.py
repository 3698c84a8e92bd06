"""The stratified train/test split of a loaded folder, applied in place (no second copy of the images)."""

from __future__ import annotations

import numpy as np


def _stratified_split(
    rows: np.ndarray, y: np.ndarray, split: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``rows`` so that each class gives ``round(split * n)`` test rows; both sets shuffled."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(y[rows]):
        members = rng.permutation(rows[y[rows] == label])
        n_test = int(round(split * len(members)))
        if split > 0 and len(members) >= 2:
            n_test = min(max(n_test, 1), len(members) - 1)
        test.append(members[:n_test])
        train.append(members[n_test:])
    train_rows = rng.permutation(np.concatenate(train)) if train else np.empty(0, np.int64)
    test_rows = rng.permutation(np.concatenate(test)) if test else np.empty(0, np.int64)
    return train_rows.astype(np.int64), test_rows.astype(np.int64)


def _gather_rows_in_place(a: np.ndarray, order: np.ndarray) -> None:
    """Set ``a[i] = old a[order[i]]`` for ``i < len(order)`` without a second copy of ``a``.

    ``order`` holds distinct row indices; it is completed to a full permutation (the unused rows go
    to the end) and applied by following its cycles with one spare row.
    """
    n = len(a)
    rest = np.setdiff1d(np.arange(n), order, assume_unique=False)
    perm = np.concatenate([order, rest]).astype(np.int64)
    done = np.zeros(n, bool)
    spare = np.empty(a.shape[1:], a.dtype)
    for start in range(n):
        if done[start] or perm[start] == start:
            done[start] = True
            continue
        spare[...] = a[start]
        i = start
        while True:
            done[i] = True
            j = perm[i]
            if j == start:
                a[i] = spare
                break
            a[i] = a[j]
            i = j
