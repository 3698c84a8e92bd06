"""The Evaluator's per-batch work, written once: what each batch of a sweep records, and the table.

`sweep_records` runs the loop: each batch is checked, attacked at every epsilon in one call, scored
(`robustmask.evaluation._scoring`) and kept as one `BatchRecord` (per variant and image: the
predicted class, the loss, the top probability and, where asked, the perturbation's sizes). Both
`Evaluator.evaluate` and a shard of a sharded evaluation (`robustmask.evaluation.shards`) run it,
so a shard's numbers are the Evaluator's own; `accuracy_table` builds the table from the records
for both (the loss summed batch by batch, in order, so a merge of shards is equal bit for bit).

A record holds a few numbers per image and variant, never the images: memory grows by some
24 bytes per image and variant, not with the images' size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd
import tensorflow as tf

from robustmask._batching import iterate_batches, num_examples
from robustmask._validation import check_images, check_input_shape, check_labels
from robustmask.attacks.report import NORM_KEYS, perturbation_norms
from robustmask.errors import RobustmaskError
from robustmask.evaluation._scoring import Scorer, compiled_scorer
from robustmask.evaluation.gradients import attack_gradient
from robustmask.evaluation.sanity_models import ModelEvidence
from robustmask.modelinfo import ModelInfo, inspect_model

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Model
    from robustmask.attacks.base import Attack

__all__ = ["BatchRecord", "Sweep", "SweepSettings", "accuracy_table", "sweep_records"]


class SweepSettings(Protocol):
    """What a sweep needs of its `Evaluator`: the attack, epsilons (clean first), batch size, labels."""

    attack: Attack
    eps: list[float]
    batch_size: int
    labels: str


@dataclass(frozen=True)
class BatchRecord:
    """One batch of a sweep. Rows are the variants: the clean images first, then one per attacked eps.

    Attributes:
        labels: (batch,) the true class indices.
        predicted: (variants, batch) the predicted classes.
        losses: (variants, batch) the cross-entropy against the true labels.
        confidence: (variants, batch) the top probability.
        sizes: the attacked variants' perturbation sizes, norm key ("Linf", "L2", "L1") ->
            (variants - 1, batch); empty where they were not measured.
    """

    labels: np.ndarray
    predicted: np.ndarray
    losses: np.ndarray
    confidence: np.ndarray
    sizes: Mapping[str, np.ndarray]

    def loss_sums(self) -> list[float]:
        """Per variant, the batch's summed loss (the sums a table adds up, batch by batch)."""
        return [float(np.sum(row)) for row in self.losses]

    def wrong_confidence_sums(self) -> tuple[list[float], list[int]]:
        """Per variant, the summed top probability of the wrong predictions, and how many were wrong."""
        wrong = self.predicted != self.labels
        sums = [float(np.sum(conf[mask])) for conf, mask in zip(self.confidence, wrong)]
        return sums, [int(np.sum(mask)) for mask in wrong]


@dataclass(frozen=True)
class Sweep:
    """Every batch's record of one sweep, in order, and what the sweep learnt on the way.

    Attributes:
        records: one `BatchRecord` per batch.
        attack: the attack swept.
        info: the model's output kind and class count (from the first batch).
        evidence: the counts for the model and gradient checks (filled with ``details`` only).
        gradients_measured: whether the attack's input gradients were measured (``evidence``).
    """

    records: list[BatchRecord]
    attack: Attack
    info: ModelInfo
    evidence: ModelEvidence
    gradients_measured: bool

    @property
    def examples(self) -> int:
        return sum(len(record.labels) for record in self.records)

    def labels(self) -> np.ndarray:
        return np.concatenate([record.labels for record in self.records])

    def predicted(self) -> np.ndarray:
        return np.concatenate([record.predicted for record in self.records], axis=1)

    def losses(self) -> np.ndarray:
        return np.concatenate([record.losses for record in self.records], axis=1)

    def loss_sums(self) -> np.ndarray:
        """(batches, variants): each batch's summed loss per variant."""
        return np.asarray([record.loss_sums() for record in self.records], np.float64)

    def sizes(self, key: str) -> np.ndarray:
        """(variants - 1, images): the perturbation sizes in norm `key` ("Linf", "L2", "L1")."""
        return np.concatenate([record.sizes[key] for record in self.records], axis=1)

    def measured_sizes(self) -> np.ndarray | None:
        """The sizes in the attack's own norm of an attack that chooses them (None for eps-bounded ones)."""
        return None if self.attack.eps_bounded else self.sizes(NORM_KEYS[self.attack.norm.name])[0]

    def wrong_confidence(self) -> np.ndarray:
        """Per variant, the mean top probability of the wrong predictions (NaN where none was wrong)."""
        variants = self.records[0].predicted.shape[0]
        total, count = np.zeros(variants), np.zeros(variants, np.int64)
        for record in self.records:  # batch by batch, as the sums were always added
            sums, wrong = record.wrong_confidence_sums()
            total += sums
            count += wrong
        with np.errstate(invalid="ignore", divide="ignore"):
            return total / count


def sweep_records(
    settings: SweepSettings,
    model: Model,
    data: Any,
    *,
    details: bool = False,
    progress: bool = False,
    empty: str = "the evaluation data is empty",
) -> Sweep:
    """Run the sweep over `data` (``(x, y)`` arrays or a batched dataset), one `BatchRecord` a batch.

    Args:
        settings: the `Evaluator` (its attack, epsilons, batch size and labels).
        model: the Keras classifier.
        data: the images and labels.
        details: also measure the perturbation sizes and gather the model and gradient evidence.
        progress: a progress bar over the batches.
        empty: the error's message when there is no image.
    """
    sweeper = _Sweeper(settings, model, details)
    records = [sweeper.record(x, y) for x, y in _batches(settings, data, progress)]
    if sweeper.info is None or not sum(len(record.labels) for record in records):
        raise RobustmaskError(empty)
    return Sweep(records, settings.attack, sweeper.info, sweeper.evidence, sweeper.measure_gradients)


def accuracy_table(
    epsilons: Sequence[float],
    labels: np.ndarray,
    predicted: np.ndarray,
    loss_sums: Iterable[np.ndarray],
    *,
    attack: str,
    norm: str,
    measured_sizes: np.ndarray | None = None,
) -> pd.DataFrame:
    """The Evaluator's table (Epsilon, Accuracy (%), Loss) from per-image predictions and per-batch loss sums.

    Args:
        epsilons: the rows' epsilons, clean first (the second is replaced by the measured mean size
            when `measured_sizes` is given).
        labels: (images,) the true classes.
        predicted: (variants, images) the predicted classes.
        loss_sums: (batches, variants) each batch's summed loss, in batch order.
        attack: the attack's name, for ``attrs``.
        norm: the threat model's label ("L-inf", "L2", "L1"), for ``attrs``.
        measured_sizes: the per-image sizes of an attack that chooses them, or None.
    """
    seen = len(labels)
    correct = np.sum(predicted == labels, axis=1).astype(np.int64)
    loss_sum = np.zeros(predicted.shape[0])
    for batch in loss_sums:
        loss_sum += batch  # batch by batch, in order: one process and merged shards agree bit for bit
    epsilons = [float(e) for e in epsilons]
    if measured_sizes is not None:
        epsilons[1] = float(np.mean(measured_sizes))  # measured, not given
    table = pd.DataFrame(
        {"Epsilon": epsilons, "Accuracy (%)": 100.0 * correct / seen, "Loss": loss_sum / seen}
    )
    table.attrs.update(attack=attack, examples=seen, measured_epsilon=measured_sizes is not None, norm=norm)
    return table


# ---------------------------------------------------------------------------------------------- steps


class _Sweeper:
    """The steps of one batch: check it, attack it at every eps at once, score each variant, record."""

    def __init__(self, settings: SweepSettings, model: Model, details: bool) -> None:
        attack = settings.attack
        self.attack, self.model, self.details, self.labels_from = attack, model, details, settings.labels
        # Attacks that size their own perturbations run once (a placeholder eps they ignore).
        self.attacked = settings.eps[1:] if attack.eps_bounded else [0.0]
        # Measured with the details only: one more gradient per batch, off the fast path.
        self.measure_gradients = details and bool(self.attacked) and attack.needs_gradients
        self.measure_sizes = details or not attack.eps_bounded  # reported, not needed otherwise
        self.evidence = ModelEvidence.for_attack(attack)  # for the sanity checks; fed with the details only
        self.info: ModelInfo | None = None

    def record(self, x_batch: np.ndarray, y_batch: np.ndarray) -> BatchRecord:
        x_batch = check_images(x_batch, self.attack.clip)
        if self.info is None:  # the first batch
            self.info = inspect_model(self.model, self.attack.from_logits, x_batch)
            check_input_shape(x_batch.shape, self.info.input_shape)
        info = self.info
        # Traced once per model and image shape, shared by every Evaluator (see _scoring).
        scorer = compiled_scorer(self.model, info, x_batch.shape[1:])
        y_idx = check_labels(y_batch, len(x_batch), info.num_classes)
        x_t = tf.convert_to_tensor(x_batch, tf.float32)
        y_true = tf.one_hot(y_idx, info.num_classes)
        adversarial = self._adversarial(scorer, x_t, y_true)
        # Each variant's forward pass and loss in one compiled call; NumPy from here on.
        log_probs, losses, predicted = scorer.sweep(x_t, adversarial, y_true)
        if self.details:  # outputs taken for logits: are they probabilities? (one more forward pass)
            outputs = self.model(x_t, training=False) if info.from_logits else None
            self.evidence.add_clean(log_probs[0], info, outputs)
        return BatchRecord(
            labels=y_idx,
            predicted=predicted,  # robustmask.predictions.top_classes: one sigmoid unit too
            losses=losses,
            confidence=np.exp(log_probs.max(axis=2)),
            sizes=self._sizes(x_t, adversarial),
        )

    def _adversarial(self, scorer: Scorer, x_t: tf.Tensor, y_true: tf.Tensor) -> tf.Tensor:
        """The attacked variants, (len(attacked), batch, ...): every eps in one call of the attack."""
        if not self.attacked:
            return tf.zeros((0, *x_t.shape), tf.float32)
        y_attack = y_true
        if self.labels_from == "predicted":
            y_attack = tf.one_hot(scorer.clean(x_t), scorer.num_classes)
        adversarial = self.attack.generate(self.model, x_t, y_attack, self.attacked)
        if self.measure_gradients:
            self.evidence.add_gradients(attack_gradient(self.attack, self.model, x_t, y_attack).numpy())
        return adversarial

    def _sizes(self, x_t: tf.Tensor, adversarial: tf.Tensor) -> dict[str, np.ndarray]:
        """Norm key -> (variants - 1, batch): L-inf, L2 and the attack's own norm; {} when not measured."""
        if not self.measure_sizes:
            return {}
        keys = dict.fromkeys(("Linf", "L2", NORM_KEYS[self.attack.norm.name]))
        x = x_t.numpy()
        norms = [perturbation_norms(x, adversarial[i].numpy()) for i in range(adversarial.shape[0])]
        if not norms:
            return {key: np.zeros((0, len(x))) for key in keys}
        return {key: np.stack([sizes[key] for sizes in norms]) for key in keys}


def _batches(settings: SweepSettings, data: Any, progress: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    batches = iterate_batches(data, settings.batch_size)
    if not progress:
        return batches
    from tqdm.auto import tqdm

    total = num_examples(data)
    return iter(
        tqdm(
            batches,
            total=None if total is None else -(-total // settings.batch_size),
            desc=f"{settings.attack.name} sweep",
            unit="batch",
        )
    )
