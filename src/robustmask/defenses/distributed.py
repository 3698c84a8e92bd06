"""Training under a tf.distribute strategy (every trainer, distillation too): a loop of robustmask's own.

Why not Keras' fit: Keras 3's fit does not run under ``MultiWorkerMirroredStrategy``
(keras-team/keras#20585: ``Attempt to convert a value (PerReplica:{...}) ... to a Tensor``), and under
``MirroredStrategy`` it fails when a step's images do not split evenly over the replicas (Algorithm 2
with 2 epsilons and batch 32 holds 11 clean images a step: ``AddN ... [6,12,12,3] != [5,12,12,3]``);
where it runs, each replica's loss is the mean of its own slice, so an uneven split would weigh the
images of the smaller slice more. This loop:

- feeds every replica its slice ``[r * n // R, (r + 1) * n // R)`` of the global clean batch of n
  images (R replicas, all workers; a slice may be empty), cut from the same global batches on every
  worker (the same seed gives the same order), so any batch size and data size work;
- has each replica make the copies of its slice (`training_batch`: the adversarial
  trainers' `AdversarialTrainingModel`, distillation's `DistillationTrainingModel`) and
  divide its per-image loss sum by the GLOBAL number of images of the step: the optimizer sums the
  replicas' gradients (an all-reduce), so the update is the one a single device makes on the whole
  batch, to float rounding (``tf.nn.compute_average_loss`` with the global batch size, generalised
  to uneven and weighted batches);
- drives the same Keras callbacks as fit (History, progress bar, robust validation, the fast-AT
  guard, `EpochCheckpoint`), so checkpoints and resume work as on one device.

Checkpoints under several workers: every worker restores from ``checkpoint_dir`` (a folder all of
them see: a shared disk), and only the chief writes it. Saving mirrored variables needs no
collective op, so the other workers need no temporary folder of their own (TensorFlow's advice for
savers that run collectives). A killed worker stops the others at their next all-reduce; start
every worker again with the same command and all of them continue from the last epoch.

Not equal to one device, by design: BatchNormalization's batch statistics are each replica's own
(unsynchronised, as in Keras), and a random start draws its noise per replica slice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import keras
import numpy as np
import tensorflow as tf

from robustmask._batching import is_dataset
from robustmask.defenses._run_plan import EpochIndex

if TYPE_CHECKING:  # pragma: no cover
    from robustmask.defenses._data import CleanBatches
    from robustmask.defenses._training_step import AdversarialTrainingModel
    from robustmask.defenses._distillation_model import DistillationTrainingModel

    #: What the loop trains: a wrapper with ``training_batch``, ``groups``, ``paired``, ``info``, ``model``.
    TrainingModel: TypeAlias = AdversarialTrainingModel | DistillationTrainingModel
    from robustmask.modelinfo import ModelInfo

#: Validation images per forward pass.
VALIDATION_BATCH = 256


def train(
    trainer: TrainingModel,
    clean: CleanBatches,
    strategy: tf.distribute.Strategy | None,
    *,
    initial_epoch: int = 0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    **fit_args: Any,
) -> keras.callbacks.History:
    """Keras' fit without a strategy (one device, as before); `fit_distributed` with one.

    Each epoch's order is set from its index before its first batch (`EpochIndex`), so a run resumed
    at `initial_epoch` reads the batches an uninterrupted one reads.

    Example::

        history = train(wrapper, clean, strategy, epochs=3, initial_epoch=0, callbacks=[], verbose=0)
    """
    clean.epoch = initial_epoch
    fit_args.update(initial_epoch=initial_epoch, callbacks=[*callbacks, EpochIndex(clean)])
    if strategy is None:
        return trainer.fit(clean.dataset, shuffle=False, **fit_args)
    return fit_distributed(trainer, clean, strategy, **fit_args)


def is_chief(strategy: tf.distribute.Strategy | None) -> bool:
    """Whether this process writes checkpoints: always, except on the non-chief workers of a cluster.

    Example::

        checkpoint.writer = is_chief(tf.distribute.MultiWorkerMirroredStrategy())
    """
    return strategy is None or bool(strategy.extended.should_checkpoint)


def fit_distributed(
    trainer: TrainingModel,
    clean: CleanBatches,
    strategy: tf.distribute.Strategy,
    *,
    epochs: int,
    initial_epoch: int = 0,
    validation_data: Any = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: str | int = "auto",
) -> keras.callbacks.History:
    """Train the compiled `trainer` on `clean` under `strategy`, as Keras' fit would; return its History.

    Example::

        with strategy.scope():
            wrapper.compile(optimizer="adam", loss=loss)
        history = fit_distributed(wrapper, clean, strategy, epochs=3)
    """
    info: ModelInfo = trainer.info
    loss = per_example_loss(trainer.loss)
    step = make_step(trainer, loss, info, strategy)
    if not trainer.optimizer.built:  # its slots made now: variables made inside the step's first
        with strategy.scope():  # trace break the next call ("You must feed a value for placeholder")
            trainer.optimizer.build(trainer.trainable_variables)
    dataset = replica_slices(clean.dataset, strategy)
    chief = is_chief(strategy)
    verbose = (1 if verbose == "auto" else int(verbose)) if chief else 0  # one progress bar per cluster
    hooks = keras.callbacks.CallbackList(
        list(callbacks),
        add_history=True,
        add_progbar=verbose != 0,
        verbose=verbose,
        epochs=epochs,
        steps=clean.steps,
        model=trainer,
    )
    trainer.stop_training = False
    hooks.on_train_begin()
    logs: dict[str, float] = {}
    for epoch in range(initial_epoch, epochs):
        hooks.on_epoch_begin(epoch)  # EpochIndex: the epoch's order is set before its first batch
        logs = run_epoch(step, dataset, clean.steps, hooks)
        if validation_data is not None:
            logs |= validation_logs(trainer, loss, info, validation_data)
        hooks.on_epoch_end(epoch, logs)
        if trainer.stop_training:  # a callback stopped the run (the fast-AT guard's roll-back)
            break
    hooks.on_train_end(logs)
    return trainer.history


def run_epoch(
    step: Callable[[Any], tf.Tensor], dataset: Any, steps: int, hooks: keras.callbacks.CallbackList
) -> dict[str, float]:
    """`steps` updates over a fresh pass of `dataset`; return the epoch's ``loss`` and ``accuracy``.

    Example::

        logs = run_epoch(make_step(wrapper, loss, info, strategy), slices, clean.steps, hooks)
    """
    iterator, totals = iter(dataset), np.zeros(3)
    logs: dict[str, float] = {}
    for batch in range(steps):
        hooks.on_train_batch_begin(batch)
        totals += step(iterator).numpy()  # loss sum, images, correct: over every replica
        images = max(totals[1], 1.0)
        logs = {"loss": totals[0] / images, "accuracy": totals[2] / images}
        hooks.on_train_batch_end(batch, logs)
    return logs


def replica_slices(dataset: tf.data.Dataset, strategy: tf.distribute.Strategy) -> Any:
    """`dataset`'s global (x, y) batches cut into per-replica ``(x, y, n, live)`` slices, n the global size.

    Replica r of R takes images ``[r * n // R, (r + 1) * n // R)``: sizes differ by one at most. A
    batch smaller than R would leave some slices empty: those hold one image with ``live`` 0, which
    adds nothing to the loss, the gradient or the metrics (else ``live`` is 1). Every worker reads the whole global stream (the
    same seed, the same order) and keeps the slices of its own replicas.

    Example::

        slices = replica_slices(clean.dataset, tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    """

    def per_worker(context: tf.distribute.InputContext) -> tf.data.Dataset:
        replicas = context.num_replicas_in_sync
        local = replicas // context.num_input_pipelines
        first = context.input_pipeline_id * local

        def cut(x: tf.Tensor, y: tf.Tensor, *_: tf.Tensor) -> tf.data.Dataset:
            n = tf.shape(x, out_type=tf.int64)[0]

            def piece(j: tf.Tensor) -> tuple[tf.Tensor, ...]:
                low, high = (first + j) * n // replicas, (first + j + 1) * n // replicas
                # An empty slice trips TensorFlow's graph optimiser (it mixes up the shapes of
                # empty tensors: "ReluGrad ... [0,10,10,4] != [0,12,12,3]"), so it holds the
                # batch's last image instead, which counts for nothing (live 0).
                live = high > low
                low = tf.where(live, low, n - 1)
                high = tf.where(live, high, n)
                return x[low:high], y[low:high], n, tf.cast(live, tf.float32)

            # Consecutive elements go to consecutive local replicas.
            return tf.data.Dataset.range(local).map(piece)

        return dataset.flat_map(cut)

    return strategy.distribute_datasets_from_function(per_worker)


def make_step(
    trainer: TrainingModel,
    loss: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
    info: ModelInfo,
    strategy: tf.distribute.Strategy,
) -> Callable[[Any], tf.Tensor]:
    """One update on every replica: ``step(iterator)`` returns the global [loss sum, images, correct].

    Example::

        step = make_step(wrapper, per_example_loss(wrapper.loss), wrapper.info, strategy)
        sums = step(iter(replica_slices(clean.dataset, strategy))).numpy()
    """
    replicas = strategy.num_replicas_in_sync

    def replica_step(x: tf.Tensor, y: tf.Tensor, n: tf.Tensor, live: tf.Tensor) -> tf.Tensor:
        x_all, y_all, *weights = trainer.training_batch(x, y)
        images = tf.cast(n * trainer.groups, tf.float32)  # the step's images on all replicas
        with tf.GradientTape() as tape:
            predictions = trainer(x_all, training=True)
            values = image_losses(loss(y_all, predictions))
            if weights:
                values = values * weights[0]
            values = tf.where(live > 0, values, tf.zeros_like(values))  # a stand-in for an empty slice
            total = tf.reduce_sum(values)
            objective = total / images
            if trainer.losses:  # regularisers: summed over R replicas, each adds a share
                objective += tf.add_n(trainer.losses) / replicas
            objective = trainer.optimizer.scale_loss(objective)  # mixed precision, as Keras' step does
        variables = trainer.trainable_variables
        gradients = tape.gradient(objective, variables)
        trainer.optimizer.apply_gradients(zip(gradients, variables))  # all-reduces (sums) them
        count = tf.cast(tf.shape(values)[0], tf.float32) * live
        return tf.stack([total, count, correct(y_all, predictions, info) * live])

    @tf.function
    def step(iterator: Any) -> tf.Tensor:
        sums = strategy.run(replica_step, args=next(iterator))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, sums, axis=None)

    return step


def per_example_loss(loss: Any) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """The unreduced form of a compiled loss (a Keras Loss, its name, or a function of (y, pred)).

    Example::

        per_example_loss("sparse_categorical_crossentropy")(y, probabilities)   # shape (batch,)
    """
    resolved = keras.losses.get(loss) if isinstance(loss, str) else loss
    if isinstance(resolved, keras.losses.Loss):
        return resolved.call  # call, not __call__: the loop divides by the global image count itself
    return resolved


def image_losses(values: tf.Tensor) -> tf.Tensor:
    """One loss per image: a loss with more axes (per pixel, say) is averaged over them, as Keras does."""
    rank = values.shape.rank
    return tf.reduce_mean(values, axis=list(range(1, rank))) if rank and rank > 1 else values


def correct(y: tf.Tensor, predictions: tf.Tensor, info: ModelInfo) -> tf.Tensor:
    """How many of the images the model classifies as labelled (integer labels or one-hot rows)."""
    if info.single_unit:
        predicted = tf.cast(tf.reshape(predictions, [-1]) > (0.0 if info.from_logits else 0.5), tf.int64)
    else:
        predicted = tf.argmax(predictions, axis=-1)
    one_hot = y.shape.rank == 2 and y.shape[-1] is not None and y.shape[-1] > 1
    labels = tf.argmax(y, axis=-1) if one_hot else tf.reshape(tf.cast(y, tf.int64), [-1])
    return tf.reduce_sum(tf.cast(tf.equal(predicted, labels), tf.float32))


def validation_logs(
    trainer: TrainingModel,
    loss: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
    info: ModelInfo,
    data: Any,
) -> dict[str, float]:
    """``val_loss`` and ``val_accuracy`` of the trained model on `data` (every worker the same).

    Example::

        validation_logs(wrapper, per_example_loss(wrapper.loss), wrapper.info, (x_val, y_val))
    """
    if is_dataset(data):
        batches = ((element[0], element[1]) for element in data)
    else:
        x, y = np.asarray(data[0], np.float32), np.asarray(data[1])
        batches = (
            (x[i : i + VALIDATION_BATCH], y[i : i + VALIDATION_BATCH])
            for i in range(0, len(x), VALIDATION_BATCH)
        )
    totals = np.zeros(3)
    for x_batch, y_batch in batches:
        x_batch, y_batch = tf.convert_to_tensor(x_batch, tf.float32), tf.convert_to_tensor(y_batch)
        predictions = trainer.model(x_batch, training=False)
        if trainer.paired:  # TRADES reads clean then copies: each image is its own copy (clean CE)
            values = loss(tf.concat([y_batch, y_batch], 0), tf.concat([predictions, predictions], 0))
        else:
            values = loss(y_batch, predictions)
        values = image_losses(values)
        totals += [
            float(tf.reduce_sum(values)),
            int(values.shape[0]),
            float(correct(y_batch, predictions, info)),
        ]
    regularisers = sum(float(value) for value in trainer.model.losses)  # Keras' val_loss adds them too
    return {
        "val_loss": totals[0] / max(totals[1], 1.0) + regularisers,
        "val_accuracy": totals[2] * (1 + trainer.paired) / max(totals[1], 1.0),
    }
