"""The clean part of an adversarial-training set, streamed batch by batch.

A trainer draws a subset of the training images (the paper's m of Algorithm 2, or all of them) and
feeds it in small clean batches; the adversarial copies are added inside the training step. The
order of each epoch is a pure function of (seed, epoch), so a run resumed from a checkpoint sees
the same batches as one that never stopped. The number of clean batches an epoch holds (`steps`) is
known for a Dataset too, counted once when its length is not declared, so the learning-rate
schedule and the eps ramp span the run as they do for arrays.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow as tf

from robustmask._batching import is_dataset
from robustmask._validation import check_images
from robustmask.errors import DataError, RobustmaskError


class CleanBatches:
    """Clean (x, y) batches of the chosen subset, reshuffled every epoch.

    Args:
        data: ``(x, y)`` arrays, or a batched tf.data.Dataset of (x, y).
        subset: a fraction (float in (0, 1]) or a count (int) of the training images.
        batch: clean images per batch.
        clip: the valid input range, checked on arrays.
        seed: seeds the subset draw and every epoch's order.
        holdout: images kept out of training (arrays only), e.g. for a robustness guard.

    ``count`` is the number of clean images of an epoch and ``steps`` its number of batches, for
    arrays and (counted once where its length is not declared) for a finite Dataset alike.
    """

    def __init__(
        self,
        data: Any,
        subset: float | int,
        batch: int,
        clip: tuple[float, float] | None,
        seed: int,
        holdout: int = 0,
    ) -> None:
        self.batch, self.seed, self.epoch = batch, seed, 0
        if is_dataset(data):
            if holdout:
                raise DataError("a held-out batch needs (x, y) arrays; pass validation_data with a Dataset")
            self.dataset, self.sample, self.steps = self._from_dataset(data, subset)
            self.heldout: tuple[np.ndarray, np.ndarray] | None = None
            return
        x, y = _check_pair(data, clip)
        n = len(x) - holdout  # the images training may use
        # isinstance, not ==: the count 1 equals the fraction 1.0 but means one image.
        m = round(subset * n) if isinstance(subset, float) else subset
        if m > n:
            raise RobustmaskError(f"subset asks for {m} images but the training set has {n}")
        if m < 1:
            raise RobustmaskError(f"subset {subset} of {n} images selects none")
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(x))
        self.heldout = (x[np.sort(order[:holdout])], y[np.sort(order[:holdout])]) if holdout else None
        self.chosen = np.sort(rng.choice(order[holdout:], size=m, replace=False))
        self.x, self.y = x, y
        self.sample = x[:16]
        self.count, self.steps = m, math.ceil(m / batch)
        signature = (
            tf.TensorSpec((None,) + x.shape[1:], tf.float32),
            tf.TensorSpec((None,) + y.shape[1:], tf.as_dtype(y.dtype)),
        )
        # A generator, not from_tensor_slices: that would embed the whole array in the graph. Through
        # a weak reference: TensorFlow's generator registry keeps what it is given for the life of the
        # process, and a bound method would keep this object, and the caller's data, alive with it.
        owner = weakref.ref(self)

        def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            batches_of = owner()
            if batches_of is not None:  # gone only once nothing can iterate the dataset any more
                yield from batches_of._batches()

        dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
        self.dataset = dataset.apply(tf.data.experimental.assert_cardinality(self.steps)).prefetch(2)

    def _batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.chosen)
        for start in range(0, len(order), self.batch):
            index = np.sort(order[start : start + self.batch])
            yield self.x[index].astype(np.float32, copy=False), self.y[index]

    def _epoch_shuffled(self, examples: tf.data.Dataset, window: int) -> tf.data.Dataset:
        """`examples` shuffled within blocks of `window`, the order a function of (seed, epoch) only.

        Not ``shuffle(reshuffle_each_iteration=True)``: its orders follow the count of iterators
        made, which a resumed run starts again, and under a tf.distribute strategy (a copy of the
        pipeline per worker) the second epoch's order differed from Keras' fit's; its seed cannot
        be a tensor.
        """
        seed, owner = tf.constant(self.seed, tf.int64), weakref.ref(self)  # weak: as for the arrays

        def current_epoch() -> Iterator[int]:
            batches_of = owner()
            if batches_of is not None:
                yield batches_of.epoch  # read when an epoch's pass begins

        epochs = tf.data.Dataset.from_generator(current_epoch, output_signature=tf.TensorSpec([], tf.int64))

        def permute(epoch: tf.Tensor, index: tf.Tensor, block: tuple[tf.Tensor, ...]) -> tf.data.Dataset:
            key = tf.stack([seed, epoch * 1_000_003 + index])
            order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(block[0])[0]), seed=key)
            return tf.data.Dataset.from_tensor_slices(tuple(tf.gather(part, order) for part in block))

        def shuffled(epoch: tf.Tensor) -> tf.data.Dataset:
            blocks = examples.batch(window).enumerate()
            return blocks.flat_map(lambda index, block: permute(epoch, index, block))

        return epochs.flat_map(shuffled)

    def _from_dataset(
        self, data: tf.data.Dataset, subset: float | int
    ) -> tuple[tf.data.Dataset, np.ndarray, int]:
        spec = data.element_spec
        if not isinstance(spec, tuple) or len(spec) < 2:
            raise DataError("the training dataset must yield (images, labels) batches")
        examples = data.unbatch()
        if isinstance(subset, float) and subset < 1.0:
            fraction, seed = subset, self.seed
            examples = (
                examples.enumerate()
                .filter(
                    lambda i, _: (
                        tf.random.stateless_uniform([], seed=tf.stack([tf.constant(seed, tf.int64), i]))
                        < fraction
                    )
                )
                .map(lambda _, element: element)
            )
        count = _count_examples(data, examples if isinstance(subset, float) and subset < 1.0 else None)
        if isinstance(subset, int):
            count = min(count, subset)
        if count < 1:
            raise DataError("the training dataset holds no image (after subset): give it at least one batch")
        self.count, steps = count, math.ceil(count / self.batch)
        # A window of a few batches, not the whole set: memory must not grow with the data. Keras'
        # own fit does not shuffle a Dataset at all; shuffle it upstream for a global order.
        examples = self._epoch_shuffled(examples, 8 * self.batch)
        if isinstance(subset, int):
            examples = examples.take(subset)
        dataset = examples.map(lambda x, y, *_: (x, y)).batch(self.batch)
        # Declared, so that Keras knows an epoch's length (its progress bar, no "ran out of data").
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(2)
        return dataset, next(iter(data))[0].numpy(), steps


def _count_examples(data: tf.data.Dataset, filtered: tf.data.Dataset | None) -> int:
    """Images in one pass of `data` (batched), or of `filtered` (its subset, one image an element).

    From the declared length where every batch is full (``drop_remainder=True``), else by one pass
    that reads only the batch sizes (for `filtered`, the filter's decisions).
    """
    cardinality = int(data.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise DataError(
            "the training dataset is infinite (repeat()): give a finite one, each epoch is one pass over it"
        )
    if filtered is not None:
        return int(filtered.reduce(np.int64(0), lambda count, _: count + 1))
    batch = data.element_spec[0].shape[0]
    if cardinality >= 0 and batch is not None:
        return cardinality * int(batch)
    sizes = data.map(lambda x, *_: tf.cast(tf.shape(x)[0], tf.int64))
    return int(sizes.reduce(np.int64(0), lambda count, size: count + size))


def _check_pair(data: Any, clip: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise DataError("train_data must be an (x, y) pair of arrays or a batched tf.data.Dataset")
    x, y = data
    x = check_images(x, clip, "x_train")
    y = np.asarray(y)
    if len(y) != len(x):
        raise DataError(f"train_data has {len(x)} images but {len(y)} labels")
    return x, y
