"""What one shard of a sharded evaluation records, and how the merge rebuilds the table from it.

`robustmask.evaluation.shards` slices the data, fingerprints the settings and reads and writes the
files; this module holds the per-image records of each kind of job (an `Evaluator` table, a
`robustness_table`) and the merge of each. An Evaluator shard runs the Evaluator's own per-batch
loop (`robustmask.evaluation._sweep.sweep_records`) and the merge its table (`accuracy_table`), so
merged shards equal one process bit for bit.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from robustmask.evaluation._sweep import accuracy_table, sweep_records
from robustmask.evaluation.sanity import evaluation_warnings
from robustmask.evaluation.worst_case import WORST_CASE, merge_worst_case

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Model
    from robustmask.evaluation.evaluator import Evaluator

Parts = list[tuple[dict[str, Any], dict[str, np.ndarray]]]


# ---------------------------------------------------------------------------------------------- records


def evaluator_records(ev: Evaluator, model: Model, data: Any, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per image: the label, each variant's predicted class and loss; per batch the loss sums.

    The Evaluator's own per-batch records (`sweep_records`), so a shard runs what one process runs.
    """
    sweep = sweep_records(ev, model, data, empty="this shard's slice of the data is empty: use fewer shards")
    measured = sweep.measured_sizes()
    meta.update(num_classes=sweep.info.num_classes, attack=ev.attack.name, norm=ev.attack.norm.label)
    meta["measured_epsilon"] = measured is not None
    return {
        "labels": sweep.labels(),
        "predicted": sweep.predicted().astype(np.int64),
        "losses": sweep.losses(),
        "batch_loss_sums": sweep.loss_sums(),
        "sizes": np.zeros(0) if measured is None else measured,
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
    # NaN (written as null) is the placeholder eps of an attack that measures its own
    epsilons = [float("nan") if e is None else float(e) for e in meta["settings"]["epsilons"]]
    sizes = np.concatenate([a["sizes"] for _, a in parts]) if meta["measured_epsilon"] else None
    table = accuracy_table(
        epsilons,
        np.concatenate([a["labels"] for _, a in parts]),
        np.concatenate([a["predicted"] for _, a in parts], axis=1),
        np.concatenate([a["batch_loss_sums"] for _, a in parts]),
        attack=meta["attack"],
        norm=meta["norm"],
        measured_sizes=sizes,
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
