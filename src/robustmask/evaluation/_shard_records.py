"""What one shard of a sharded evaluation records, and how the merge rebuilds the table from it.

`robustmask.evaluation.shards` slices the data, fingerprints the settings and reads and writes the
files; this module holds the per-image records of each kind of job (an `Evaluator` table, a
`robustness_table`) and the merge of each. `_evaluator_records` repeats the Evaluator's per-batch
loop (the merge tests hold the two equal, bit for bit).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import tensorflow as tf

from robustmask._batching import iterate_batches
from robustmask._validation import check_images, check_input_shape, check_labels
from robustmask.attacks.report import NORM_KEYS, perturbation_norms
from robustmask.errors import RobustmaskError
from robustmask.evaluation._scoring import compiled_scorer
from robustmask.evaluation.sanity import evaluation_warnings
from robustmask.evaluation.worst_case import WORST_CASE, merge_worst_case
from robustmask.modelinfo import inspect_model

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Model
    from robustmask.evaluation.evaluator import Evaluator

Parts = list[tuple[dict[str, Any], dict[str, np.ndarray]]]


# ---------------------------------------------------------------------------------------------- records


def evaluator_records(ev: Evaluator, model: Model, data: Any, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per image: the label, each variant's predicted class and loss; per batch the loss sums.

    The same per-batch work as `Evaluator.evaluate` (the merge test holds the two equal).
    """
    attack = ev.attack
    attacked = ev.epsilons[1:] if attack.eps_bounded else [0.0]
    n_eps = len(ev.epsilons)
    labels, predicted, losses, sums, sizes = [], [], [], [], []
    info = None
    for x_batch, y_batch in iterate_batches(data, ev.batch_size):
        x_batch = check_images(x_batch, attack.clip)
        if info is None:
            info = inspect_model(model, attack.from_logits, x_batch)
            check_input_shape(x_batch.shape, info.input_shape)
        scorer = compiled_scorer(model, info, x_batch.shape[1:])
        y_idx = check_labels(y_batch, len(x_batch), info.num_classes)
        x_t = tf.convert_to_tensor(x_batch, tf.float32)
        y_true = tf.one_hot(y_idx, info.num_classes)
        if attacked:
            y_attack = y_true
            if ev.labels == "predicted":
                y_attack = tf.one_hot(scorer.clean(x_t), info.num_classes)
            adversarial = attack.generate(model, x_t, y_attack, attacked)
        else:
            adversarial = tf.zeros((0, *x_t.shape), tf.float32)
        _, batch_losses, batch_predicted = scorer.sweep(x_t, adversarial, y_true)
        labels.append(y_idx)
        predicted.append(batch_predicted.astype(np.int64))
        losses.append(batch_losses)
        sums.append([float(np.sum(batch_losses[i])) for i in range(n_eps)])  # as the Evaluator adds them
        if not attack.eps_bounded:
            norms = perturbation_norms(x_t.numpy(), adversarial[0].numpy())
            sizes.append(norms[NORM_KEYS[attack.norm.name]])
    if info is None:
        raise RobustmaskError("this shard's slice of the data is empty: use fewer shards")
    meta.update(num_classes=info.num_classes, attack=attack.name, norm=attack.norm.label)
    meta["measured_epsilon"] = not attack.eps_bounded
    return {
        "labels": np.concatenate(labels),
        "predicted": np.concatenate(predicted, axis=1),
        "losses": np.concatenate(losses, axis=1),
        "batch_loss_sums": np.asarray(sums, np.float64),
        "sizes": np.concatenate(sizes) if sizes else np.zeros(0),
    }


def robustness_records(table: pd.DataFrame, n: int, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """Counts per column (exact: recovered from percentages of `n` images) and per-image worst case."""
    columns = [c for c in table.columns[2:] if c != WORST_CASE]
    count = lambda pct: np.rint(np.asarray(pct, np.float64) * n / 100.0).astype(np.int64)  # noqa: E731
    epsilons = list(table.attrs["robust"])
    gains = table.attrs.get("gains", {})
    meta.update(examples=n, columns=columns, gain_columns=list(gains[epsilons[0]]) if gains else [])
    meta.update(
        {key: table.attrs[key] for key in ("protocol", "protocols", "norm", "kinds", "attacks", "seconds")}
    )
    return {
        "epsilons": table["Epsilon"].to_numpy(np.float64),
        "clean": count(table["Clean (%)"]),
        "counts": np.stack([count(table[c]) for c in columns], axis=1),
        "robust": np.array([table.attrs["robust"][e] for e in epsilons], bool).reshape(len(epsilons), n),
        "gains": np.array([[gains[e][c] for c in meta["gain_columns"]] for e in epsilons], np.int64),
    }


# ---------------------------------------------------------------------------------------------- merges


def merge_evaluator(parts: Parts) -> pd.DataFrame:
    meta = parts[0][0]
    labels = np.concatenate([a["labels"] for _, a in parts])
    predicted = np.concatenate([a["predicted"] for _, a in parts], axis=1)
    seen = len(labels)
    correct = np.sum(predicted == labels, axis=1).astype(np.int64)
    loss_sum = np.zeros(predicted.shape[0])
    for batch in np.concatenate([a["batch_loss_sums"] for _, a in parts]):
        loss_sum += batch  # batch by batch, in order: the Evaluator's float sums, bit for bit
    epsilons = [float(e) for e in meta["settings"]["epsilons"]]
    if meta["measured_epsilon"]:
        epsilons[1] = float(np.mean(np.concatenate([a["sizes"] for _, a in parts])))
    table = pd.DataFrame(
        {"Epsilon": epsilons, "Accuracy (%)": 100.0 * correct / seen, "Loss": loss_sum / seen}
    )
    table.attrs.update(
        attack=meta["attack"], examples=seen, measured_epsilon=meta["measured_epsilon"], norm=meta["norm"]
    )
    for message in evaluation_warnings(table, meta["num_classes"]):
        warnings.warn(message, RuntimeWarning, stacklevel=3)
    return table


def merge_robustness(parts: Parts) -> pd.DataFrame:
    meta, first = parts[0]
    n = sum(m["examples"] for m, _ in parts)
    epsilons = first["epsilons"].tolist()
    clean = np.sum([a["clean"] for _, a in parts], axis=0)
    counts = np.sum([a["counts"] for _, a in parts], axis=0)
    table = pd.DataFrame({"Epsilon": epsilons, "Clean (%)": 100.0 * (clean / n)})
    for k, column in enumerate(meta["columns"]):
        table[column] = 100.0 * (counts[:, k] / n)
    robust = np.concatenate([a["robust"] for _, a in parts], axis=1)
    seconds = {name: sum(m["seconds"][name] for m, _ in parts) for name in meta["seconds"]}
    table.attrs.update({key: meta[key] for key in ("protocol", "protocols", "norm", "kinds", "attacks")})
    table.attrs.update(
        examples=n, seconds=seconds, robust={e: tuple(r.tolist()) for e, r in zip(epsilons, robust)}
    )
    if meta["gain_columns"]:
        gains = np.sum([a["gains"] for _, a in parts], axis=0)
        table.attrs["gains"] = {
            e: {c: int(g) for c, g in zip(meta["gain_columns"], row)} for e, row in zip(epsilons, gains)
        }
    return merge_worst_case([table])  # the worst case per image, as robustness_table computes it
