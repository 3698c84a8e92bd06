"""Accuracy under several attacks at once, and the worst case over them per image.

An image counts as robust at an epsilon only if it resists every attack (robust accuracy as
AutoAttack defines it, Croce & Hein 2020, arXiv 2003.01690), so the worst case is never above any
single attack. A gradient-free attack in the suite (Square) catches gradient masking: if it beats
PGD, PGD's number was false assurance (Carlini et al. 2019, arXiv 1902.06705).

Two protocols:

* ``"individual"``: every attack runs on every image the model gets right when clean, so each
  column is that attack's own robust accuracy (what the sanity checks compare).
* ``"cascade"`` (AutoAttack's): each attack runs only on the images every attack before it failed
  to fool, so a suite costs little more than its strongest member; column k is the robust accuracy
  after the first k attacks, and ``table.attrs["gains"]`` says how many images each attack fooled
  that the ones before it did not.

Several `AttackSet` s in one table (FGSM, PGD and Square individually, then AutoAttack's suite as a
cascade) give one worst case per image over all of them; `merge_worst_case` does the same for
tables measured apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from robustmask._deprecation import renamed_parameters
from robustmask._progress import progress_bar
from robustmask._validation import check_epsilons, check_images, check_labels, check_positive_int
from robustmask.attacks.base import Attack
from robustmask.errors import RobustmaskError
from robustmask.evaluation.attack_sets import PROTOCOLS, AttackSet, normalise_sets
from robustmask.evaluation.sanity import attack_kind
from robustmask.evaluation.suites import standard_attacks, standard_suite
from robustmask.modelinfo import inspect_model

__all__ = [
    "PROTOCOLS",
    "WORST_CASE",
    "AttackSet",
    "merge_worst_case",
    "predicted_classes",
    "robustness_table",
    "standard_attacks",
    "standard_suite",
]

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Epsilons, Images, Labels, Model

WORST_CASE = "Worst case (%)"


def predicted_classes(model: Model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's top class of each image (one sigmoid unit too): `robustmask.predictions.predict_labels`."""
    from robustmask.predictions import predict_labels

    return predict_labels(model, x, batch_size=batch_size)


@renamed_parameters({"epsilons": "eps"})
def robustness_table(
    model: Model,
    data: tuple[Images, Labels],
    attacks: Mapping[str, Attack] | Sequence[AttackSet],
    eps: Epsilons,
    *,
    protocol: str = "individual",
    progress: bool = False,
    description: str = "attacks",
    chunk_size: int | None = None,
) -> pd.DataFrame:
    """One row per epsilon: clean accuracy, accuracy under each attack, and the worst case.

    Images the model gets wrong when clean count as wrong under every attack and are never attacked.
    The worst case is per image over every attack of every set: an image counts as robust only if
    no attack that was run fooled it, so it is never above any column (Croce & Hein 2020).

    Args:
        model: a Keras classifier.
        data: ``(x, y)`` arrays, images in [0, 1], integer or one-hot labels.
        attacks: column name -> eps-bounded attack, e.g. ``{"FGSM": FGSM(), "PGD": PGD(seed=0)}``
            (for ``"cascade"``, in the order they run: strongest first is cheapest); or several
            `AttackSet` s, each with its own protocol, e.g. the individual attacks and the standard
            suite as a cascade: one table, one worst case over all of them.
        eps: the budgets (one or several), in the attacks' norm (they must share one). The old name
            ``epsilons`` still works and warns.
        protocol: for a mapping, ``"individual"`` (each attack on every clean-correct image) or
            ``"cascade"`` (AutoAttack's: each on the images still robust); see the module docstring.
        progress: a progress bar (stderr, a terminal only) over the epsilons and attacks.
        description: the bar's label.
        chunk_size: score and attack the images in consecutive chunks of this many, each on its own
            (its own batches and random starts), so that a table made in shards whose boundaries fall
            on chunks (`robustmask.evaluation.shards`) equals this one exactly; None (default): all
            images at once.

    The table's ``attrs``: ``protocol`` ("mixed" when the sets differ), ``protocols`` (column ->
    protocol), ``norm``, ``examples``, ``kinds`` (column -> "single-step", "iterative",
    "gradient-free"), ``attacks`` (column -> description, e.g. "PGD-20 (3 restarts)"), ``seconds``
    (column -> time spent, all eps), ``gains`` (eps -> column -> images it fooled that no earlier
    attack of its cascade had; cascades only), ``robust`` (eps -> per-image tuple of bools: robust
    under every attack; `merge_worst_case` combines tables exactly through it).

    Example::

        table = robustness_table(model, (x_test, y_test), standard_attacks(), [0.009, 8 / 255])
        table = robustness_table(model, (x_test, y_test), standard_suite(), [8 / 255], protocol="cascade")
        both = [AttackSet(standard_attacks()), AttackSet(standard_suite(), "cascade", label="suite")]
        table = robustness_table(model, (x_test, y_test), both, [8 / 255])   # one worst case
    """
    sets, descriptions = normalise_sets(attacks, protocol)
    norm = _check_attacks({name: a for attack_set in sets for name, a in attack_set.attacks.items()})
    epsilons, _ = check_epsilons(eps)
    x = check_images(data[0], (0.0, 1.0))
    info = inspect_model(model, None, x)
    y = check_labels(data[1], len(x), info.num_classes)
    step = max(len(x), 1) if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
    clean = np.concatenate(
        [predicted_classes(model, x[s : s + step]) == y[s : s + step] for s in range(0, len(x), step)]
    )
    steps = len(epsilons) * len(descriptions)
    with progress_bar(steps, description, enabled=progress, unit="attack") as bar:
        tables = [
            _set_table(attack_set, model, (x, y), clean, epsilons, norm, bar.update, step)
            for attack_set in sets
        ]
    for table in tables:
        table.attrs["attacks"] = {name: descriptions[name] for name in table.attrs["kinds"]}
    return merge_worst_case(tables)


def _set_table(
    attack_set: AttackSet,
    model: Model,
    data: tuple[np.ndarray, np.ndarray],
    clean: np.ndarray,
    epsilons: Sequence[float],
    norm: str,
    advance: Callable[[int], object],
    chunk_size: int,
) -> pd.DataFrame:
    """One attack set's table, its per-image robust masks in ``attrs["robust"]``."""
    x, y = data
    individual = attack_set.protocol == "individual"
    seconds = dict.fromkeys(attack_set.attacks, 0.0)
    rows: list[dict[str, float]] = []
    gains: dict[float, dict[str, int]] = {}
    masks: dict[float, tuple[bool, ...]] = {}
    for eps in epsilons:
        row: dict[str, float] = {"Epsilon": eps, "Clean (%)": 100.0 * clean.mean()}
        robust_everywhere = clean.copy()
        gains[eps] = {}
        for name, attack in attack_set.attacks.items():
            # Individual: every clean-correct image; cascade: only those no earlier attack fooled.
            started = time.perf_counter()
            robust = _robust_under(
                attack, model, x, y, clean if individual else robust_everywhere, eps, chunk_size
            )
            seconds[name] += time.perf_counter() - started
            gains[eps][name] = int(np.sum(robust_everywhere & ~robust))
            robust_everywhere &= robust
            # Individual: robust under this attack alone. Cascade: `robust` is already within the
            # images no earlier attack fooled, so it is robust under every attack so far.
            row[f"{name} (%)"] = 100.0 * robust.mean()
            advance(1)
        masks[eps] = tuple(robust_everywhere.tolist())
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs.update(
        protocol=attack_set.protocol,
        protocols=dict.fromkeys(attack_set.attacks, attack_set.protocol),
        norm=norm,
        examples=len(x),
        seconds=seconds,
        kinds={name: attack_kind(attack) for name, attack in attack_set.attacks.items()},
        robust=masks,
    )
    if not individual:
        table.attrs["gains"] = gains
    return table


def merge_worst_case(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """One table from several `robustness_table` s of one model on the same images and epsilons.

    Every attack's column is kept; the worst case is recomputed per image from the tables'
    ``attrs["robust"]`` masks (an image is robust only if it is robust in every table), so it is
    exact: never the smaller of the tables' worst cases, which would count an image fooled by one
    set and not the other as robust.

    Example::

        individual = robustness_table(model, data, standard_attacks(), [8 / 255])
        suite = robustness_table(model, data, {"APGD-CE": AutoPGD()}, [8 / 255], protocol="cascade")
        table = merge_worst_case([individual, suite])
    """
    if not tables or any("robust" not in table.attrs for table in tables):
        raise RobustmaskError("merge_worst_case needs robustness tables (their attrs['robust'] masks)")
    first = tables[0]
    for table in tables[1:]:
        same = table.attrs["examples"] == first.attrs["examples"] and len(table) == len(first)
        if not same or not np.allclose(table["Epsilon"], first["Epsilon"]):
            raise RobustmaskError("merge_worst_case: the tables differ in images or epsilons")
        if (
            not np.allclose(table["Clean (%)"], first["Clean (%)"])
            or table.attrs["norm"] != first.attrs["norm"]
        ):
            raise RobustmaskError("merge_worst_case: the tables are of different models or norms")
    merged = first[["Epsilon", "Clean (%)"]].copy()
    for table in tables:
        for column in table.columns[2:]:
            if column != WORST_CASE:
                if column in merged.columns:
                    raise RobustmaskError(f"merge_worst_case: column {column!r} is in two tables")
                merged[column] = table[column].to_numpy()
    per_eps = [[np.asarray(mask) for mask in table.attrs["robust"].values()] for table in tables]
    robust = {eps: np.logical_and.reduce(masks) for eps, masks in zip(first.attrs["robust"], zip(*per_eps))}
    merged[WORST_CASE] = [100.0 * mask.mean() for mask in robust.values()]
    # Set, not updated: the copy carries the first table's attrs, which must not stand in for the merge's.
    merged.attrs = {**_merged_attrs(tables), "robust": {eps: tuple(m.tolist()) for eps, m in robust.items()}}
    return merged


def _merged_attrs(tables: Sequence[pd.DataFrame]) -> dict[str, Any]:
    protocols = {table.attrs.get("protocol") for table in tables}
    attrs: dict[str, Any] = {
        "protocol": protocols.pop() if len(protocols) == 1 else "mixed",
        "norm": tables[0].attrs["norm"],
        "examples": tables[0].attrs["examples"],
    }
    for key in ("protocols", "kinds", "attacks", "seconds"):
        attrs[key] = {name: value for table in tables for name, value in table.attrs.get(key, {}).items()}
    gains = [table.attrs["gains"] for table in tables if "gains" in table.attrs]
    if gains:
        attrs["gains"] = {eps: {n: g for by_eps in gains for n, g in by_eps[eps].items()} for eps in gains[0]}
    return attrs


def _check_attacks(attacks: Mapping[str, Attack]) -> str:
    """The suite's norm label, after checking every attack is eps-bounded and they share one norm."""
    if not attacks:
        raise RobustmaskError(
            "attacks is empty: give at least one, e.g. {'PGD': robustmask.attacks.PGD(seed=0)}"
        )
    for name, attack in attacks.items():
        if not isinstance(attack, Attack) or not attack.eps_bounded:
            raise RobustmaskError(f"attack {name!r} must be an eps-bounded robustmask Attack")
    labels = {attack.norm.label for attack in attacks.values()}
    if len(labels) > 1:
        raise RobustmaskError(
            f"the attacks mix norms ({', '.join(sorted(labels))}): one eps cannot bound them all"
        )
    return labels.pop()


def _robust_under(
    attack: Attack,
    model: Model,
    x: np.ndarray,
    y: np.ndarray,
    targets: np.ndarray,
    eps: float,
    chunk_size: int,
) -> np.ndarray:
    """Per image: still classified correctly after `attack` (only `targets` are attacked; the rest
    keep the value False, as they are already wrong or already fooled), chunk by chunk."""
    robust = targets.copy()
    for start in range(0, len(x), chunk_size):
        chosen = start + np.flatnonzero(targets[start : start + chunk_size])
        if len(chosen):
            adversarial = attack(model, x[chosen], y[chosen], eps=eps)
            robust[chosen] = predicted_classes(model, adversarial) == y[chosen]
    return robust
