"""A `robustness_table` (the standard suite and its per-image worst case) over data read batch by batch.

The images of a folder streamed from disk (`robustmask.datasets.stream_face_mask_directory`) need
not fit in memory: each batch of the stream is scored and attacked as one chunk of
`robustness_table`, its per-image results are kept (a few booleans an image), its images are not,
and the batches' results are merged as shards are (`robustmask.evaluation.shards`). The table equals
`robustness_table` on the same images held in memory with ``chunk_size`` the stream's batch size,
number for number (attacks that draw from NumPy's global generator, ART's APGD and `ARTSquareAttack`, give
as valid but not bitwise the same results, as for shards).

Example::

    stream = stream_face_mask_directory("faces/", image_size=96, batch_size=64)
    table = streamed_robustness_table(model, stream, standard_suite(), [8 / 255], protocol="cascade")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from robustmask._batching import iterate_batches
from robustmask.errors import DataError
from robustmask.evaluation._shard_records import merge_robustness, robustness_records
from robustmask.evaluation.worst_case import robustness_table

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

    from robustmask._types import Model
    from robustmask.attacks.base import Attack
    from robustmask.evaluation.attack_sets import AttackSet

__all__ = ["streamed_robustness_table"]


def streamed_robustness_table(
    model: Model,
    batches: tf.data.Dataset,
    attacks: Mapping[str, Attack] | Sequence[AttackSet],
    eps: float | Sequence[float],
    *,
    protocol: str = "individual",
    progress: bool = False,
    description: str = "attacks",
) -> pd.DataFrame:
    """`robustness_table` over a batched dataset of (x, y): each batch one chunk, never all images at once.

    Args:
        model: a Keras classifier.
        batches: a finite, batched tf.data.Dataset of (images, labels), e.g. a folder's stream.
        attacks: as `robustness_table`'s: name -> attack, or several `AttackSet` s.
        eps: the budgets, as `robustness_table`'s.
        protocol: "individual" or "cascade", as `robustness_table`'s.
        progress: a progress bar per batch (stderr, a terminal only).
        description: the bar's label.

    Returns:
        The table `robustness_table` gives on the same images with ``chunk_size`` the batch size,
        ``attrs`` included (``seconds`` summed over the batches).
    """
    parts: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for x, y in iterate_batches(batches, 0):
        if not len(x):  # a block of files none of which could be read
            continue
        meta: dict[str, Any] = {}
        table = robustness_table(
            model,
            (x, y),
            attacks,
            eps,
            protocol=protocol,
            progress=progress,
            description=f"{description} (batch {len(parts) + 1})",
        )
        parts.append((meta, robustness_records(table, len(x), meta)))
    if not parts:
        raise DataError("the dataset holds no image: nothing to evaluate")
    return merge_robustness(parts)
