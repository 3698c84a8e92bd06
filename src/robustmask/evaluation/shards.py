"""Sharded evaluation: N processes or cluster jobs each evaluate a slice, one merge gives the table.

An `Evaluator` table or a `robustness_table` (the standard suite and its per-image worst case)
splits over N shards, say the N tasks of a Slurm job array (``--array=0-3``,
``$SLURM_ARRAY_TASK_ID``) or of a Kubernetes indexed Job (``$JOB_COMPLETION_INDEX``). Each shard
writes its per-image results to one ``.npz`` file; `merge_shards` rebuilds exactly the table one
process gives: the same columns, numbers (bit for bit), attrs and per-image worst case, except
``attrs["seconds"]``, which sums the shards' times.

Shards and a merge, not ``tf.distribute``: attacks work per image, so shards need no communication;
a job array needs no cluster runtime (no TF_CONFIG, no open ports); a lost or pre-empted shard is
rerun alone; and the merge is cheap and runs anywhere.

The slicing rule: the data is cut into units (the Evaluator's batches of ``batch_size`` images,
or a batched dataset's own batches; the ``chunk_size`` chunks of a `RobustnessSpec`), and shard
``i`` of ``N`` takes the contiguous units ``[floor(i * U / N), floor((i + 1) * U / N))`` of the
``U`` units (`shard_bounds`). A shard therefore runs exactly the batches one process runs. That
matters: a seeded attack's random start depends on an image's position in its batch (PGD(seed=0)
draws the same noise tensor for every batch of one shape), so a slice that cut a batch in two would
give other per-image results. Attacks that draw from NumPy's global generator (ART's APGD and
`ARTSquareAttack`) give per-image results that depend on what ran before them in the process: their sharded
numbers are as valid but not bitwise those of one process.

Example (one shard per job; then one merge)::

    from robustmask.evaluation.shards import RobustnessSpec, evaluate_shard, merge_shards

    evaluator = robustmask.Evaluator(robustmask.attacks.PGD(seed=0), [0.004, 0.008])
    evaluate_shard(evaluator, model, (x_test, y_test), shard=i, num_shards=4, out="shards/")
    table = merge_shards(["shards/"])                   # == evaluator.evaluate(model, (x_test, y_test))

    spec = RobustnessSpec(standard_attacks(), [8 / 255], chunk_size=64)
    evaluate_shard(spec, model, (x_test, y_test), shard=i, num_shards=4, out="suite/")
    table = merge_shards(["suite/"])                    # == spec.table(model, (x_test, y_test))
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import tensorflow as tf

from robustmask._batching import is_dataset
from robustmask._deprecation import renamed_parameters, warn_renamed
from robustmask._validation import check_epsilons
from robustmask._validation import check_positive_int
from robustmask.attacks.base import Attack
from robustmask.datasets.streaming import is_stream, stream_report, stream_slice
from robustmask.errors import RobustmaskError
from robustmask.evaluation._shard_files import FORMAT as _FORMAT
from robustmask.evaluation._shard_files import load_shard as _load
from robustmask.evaluation._shard_files import shard_files as _shard_files
from robustmask.evaluation._shard_records import (
    evaluator_records,
    merge_evaluator,
    merge_robustness,
    robustness_records,
)
from robustmask.evaluation.attack_sets import AttackSet, normalise_sets
from robustmask.evaluation.evaluator import Evaluator
from robustmask.evaluation.streamed_suite import streamed_robustness_table
from robustmask.evaluation.worst_case import robustness_table

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Images, Labels, Model

__all__ = ["RobustnessSpec", "evaluate_shard", "merge_shards", "shard_bounds", "shard_file"]


@dataclass(frozen=True)
class RobustnessSpec:
    """A `robustness_table` to shard: its attacks, epsilons (``eps``), protocol and chunk size.

    ``chunk_size`` images are scored and attacked together (see `robustness_table`; shards align to
    chunks); `table` is the one-process table that merged shards equal. The old name ``epsilons``
    (keyword and attribute) still works and warns.
    """

    attacks: Mapping[str, Attack] | Sequence[AttackSet]
    eps: Sequence[float]
    protocol: str = "individual"
    chunk_size: int = 64

    @property
    def epsilons(self) -> Sequence[float]:
        """Deprecated: `eps`."""
        warn_renamed("RobustnessSpec.epsilons", "RobustnessSpec.eps")
        return self.eps

    def table(
        self,
        model: Model,
        data: tuple[Images, Labels] | tf.data.Dataset,
        *,
        progress: bool = False,
        description: str = "attacks",
    ) -> pd.DataFrame:
        """The table in one process (what `merge_shards` of this spec's shards equals); for a batched
        dataset (a folder's stream), each of its batches is a chunk (`streamed_robustness_table`).
        ``progress`` shows a bar named ``description``."""
        if is_dataset(data):  # each batch is a chunk
            table_of = streamed_robustness_table
        else:
            table_of = functools.partial(robustness_table, chunk_size=self.chunk_size)
        return table_of(
            model,
            data,
            self.attacks,
            self.eps,
            protocol=self.protocol,
            progress=progress,
            description=description,
        )


# The dataclass writes __init__; the old keyword goes through the one decorator for renamed names.
setattr(RobustnessSpec, "__init__", renamed_parameters({"epsilons": "eps"})(RobustnessSpec.__init__))


def shard_bounds(units: int, shard: int, num_shards: int) -> tuple[int, int]:
    """Units ``[start, stop)`` of shard `shard` (0-based) of `num_shards`: contiguous, sizes within one."""
    return shard * units // num_shards, (shard + 1) * units // num_shards


def shard_file(out: str | os.PathLike, shard: int, num_shards: int) -> Path:
    """Where a shard is written: `out` itself when it ends in ``.npz``, else ``out/shard-00i-of-00N.npz``."""
    path = Path(out)
    return path if path.suffix == ".npz" else path / f"shard-{shard:03d}-of-{num_shards:03d}.npz"


def evaluate_shard(
    job: Evaluator | RobustnessSpec,
    model: Model,
    data: tuple[Images, Labels] | tf.data.Dataset,
    *,
    shard: int,
    num_shards: int,
    out: str | os.PathLike,
) -> Path:
    """Evaluate shard `shard` (0-based) of `num_shards` of `data` and write its per-image results.

    Args:
        job: an `Evaluator` (its table) or a `RobustnessSpec` (a `robustness_table`).
        model: the Keras classifier; every shard must get the same weights (checked at the merge).
        data: the whole data set, ``(x, y)`` arrays (sliced, not copied), or a batched
            tf.data.Dataset of known length (its batches are the units, also a RobustnessSpec's
            chunks), or a folder's stream (`stream_face_mask_directory`: its blocks of files are
            the units, and a shard decodes only its own files).
        shard: which slice (0 to num_shards - 1); see the module docstring for the rule.
        num_shards: how many slices the data is cut into.
        out: a folder (the file is named ``shard-00i-of-00N.npz``) or a ``.npz`` path.

    Returns:
        The file written (atomically: a killed job leaves no half file).

    Example::

        i = int(os.environ["SLURM_ARRAY_TASK_ID"])
        evaluate_shard(evaluator, model, (x_test, y_test), shard=i, num_shards=4, out="shards/")
    """
    num_shards = check_positive_int(num_shards, "num_shards")
    shard = check_positive_int(shard, "shard", allow_zero=True)
    if shard >= num_shards:
        raise RobustmaskError(f"shard must be 0..{num_shards - 1} for num_shards={num_shards}, got {shard}")
    if not isinstance(job, (Evaluator, RobustnessSpec)):
        raise RobustmaskError(f"job must be an Evaluator or a RobustnessSpec, got {type(job).__name__}")
    unit, units, settings = _settings(job, model, data)
    if num_shards > units:
        raise RobustmaskError(
            f"num_shards={num_shards} is more than the data's {units} {unit}(s): use at most {units} shards "
            "(or a smaller batch or chunk size)"
        )
    lo, hi = shard_bounds(units, shard, num_shards)
    meta: dict[str, Any] = {"format": _FORMAT, "settings": {**settings, "num_shards": num_shards}}
    meta.update(shard=shard, units=[lo, hi])
    if is_dataset(data):
        part = (
            stream_slice(data, lo, hi)
            if is_stream(data)
            else cast(tf.data.Dataset, data).skip(lo).take(hi - lo)
        )
        if isinstance(job, RobustnessSpec):
            table = job.table(model, part)
            arrays = robustness_records(table, table.attrs["examples"], meta)
        else:
            arrays = evaluator_records(job, model, part, meta)
    elif isinstance(job, RobustnessSpec):
        x, y = data
        a, b = lo * job.chunk_size, min(hi * job.chunk_size, len(x))
        arrays = robustness_records(job.table(model, (x[a:b], y[a:b])), b - a, meta)
    else:
        x, y = data
        a, b = lo * job.batch_size, min(hi * job.batch_size, len(x))
        arrays = evaluator_records(job, model, (x[a:b], y[a:b]), meta)
    path = shard_file(out, shard, num_shards)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.npz")
    payload: dict[str, Any] = {"meta": np.array(json.dumps(meta)), **arrays}
    np.savez(partial, **payload)
    os.replace(partial, path)
    return path


def merge_shards(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> pd.DataFrame:
    """The table of all shards: shard files, or folders holding them (``shard-*-of-*.npz``).

    Refuses, in one line that says what to rerun, shards made with other settings (model, data,
    attacks, epsilons, batch or chunk size, number of shards), a shard given twice, and missing shards.
    The Evaluator's sanity warnings are issued as `Evaluator.evaluate` issues them. Tables only: the
    reports of ``details=True`` are not merged (the shards keep each image's predictions for them).

    Example::

        table = merge_shards(["shards/"])
    """
    files = _shard_files([paths] if isinstance(paths, (str, os.PathLike)) else list(paths))
    loaded = [_load(f) for f in files]
    first_file, (first, _) = files[0], loaded[0]
    by_shard: dict[int, tuple[Path, dict[str, Any], dict[str, np.ndarray]]] = {}
    for file, (meta, arrays) in zip(files, loaded):
        keys = dict.fromkeys([*first["settings"], *meta["settings"]])
        differ = [k for k in keys if meta["settings"].get(k) != first["settings"].get(k)]
        if differ:
            raise RobustmaskError(
                f"shard file {file} was made with other {', '.join(differ)} than {first_file}: rerun every "
                "shard with the same model, data and settings (or merge only one run's files)"
            )
        if meta["shard"] in by_shard:
            raise RobustmaskError(
                f"shard {meta['shard']} is given twice ({by_shard[meta['shard']][0]}, {file}): give each once"
            )
        by_shard[meta["shard"]] = (file, meta, arrays)
    num_shards = first["settings"]["num_shards"]
    missing = [i for i in range(num_shards) if i not in by_shard]
    if missing:
        names = ", ".join(shard_file("", i, num_shards).name for i in missing)
        raise RobustmaskError(
            f"shard(s) {', '.join(map(str, missing))} of {num_shards} missing ({names}): run evaluate_shard "
            f"with shard={missing[0]}, num_shards={num_shards} (the same command as the others) and merge again"
        )
    parts = [by_shard[i][1:] for i in range(num_shards)]
    if first["settings"]["kind"] == "robustness":
        return merge_robustness(parts)
    return merge_evaluator(parts)


# ---------------------------------------------------------------------------------------------- settings


def _settings(job: Evaluator | RobustnessSpec, model: Model, data: Any) -> tuple[str, int, dict[str, Any]]:
    """(unit name, number of units, the fingerprint every shard of one evaluation shares)."""
    weights = hashlib.sha256()
    for w in cast(Any, model).get_weights():
        weights.update(repr((w.shape, w.dtype.str)).encode() + np.ascontiguousarray(w).tobytes())
    settings: dict[str, Any] = {"model": weights.hexdigest()}
    if isinstance(job, RobustnessSpec):
        sets, descriptions = normalise_sets(job.attacks, job.protocol)
        settings.update(kind="robustness", epsilons=check_epsilons(job.eps)[0], descriptions=descriptions)
        settings["attacks"] = [{c: _describe(a) for c, a in s.attacks.items()} for s in sets]
        settings["protocols"] = [s.protocol for s in sets]
        unit, size = "chunk", check_positive_int(job.chunk_size, "chunk_size")
    else:
        settings.update(kind="evaluator", attacks=_describe(job.attack), labels_from=job.labels)
        settings["epsilons"] = [None if np.isnan(e) else e for e in job.eps]
        unit, size = "batch", job.batch_size
    if is_stream(data):  # its batches are blocks of its files: known before any file is decoded
        settings["data"] = f"stream of {stream_report(data).fingerprint()}"
        return "batch", stream_report(data).batches, settings
    if is_dataset(data):
        units = int(data.cardinality())
        if units < 0:
            raise RobustmaskError(
                "the dataset's length is unknown: give (x, y) arrays or a batched dataset of known length "
                "(dataset.apply(tf.data.experimental.assert_cardinality(number_of_batches)))"
            )
        settings["data"] = f"dataset of {units} batches"
        return "batch", units, settings
    x, y = data
    if len(x) != len(y):
        raise RobustmaskError(f"data has {len(x)} images but {len(y)} labels")
    labels = np.ascontiguousarray(y)
    settings["data"] = f"{len(x)} images, labels {hashlib.sha256(labels.tobytes()).hexdigest()[:16]}"
    settings["unit"] = f"{unit} of {size}"
    return unit, -(-len(x) // size), settings


def _describe(attack: Attack) -> str:
    params = getattr(attack, "art_params", None)
    return repr(attack) + (f" {sorted((k, repr(v)) for k, v in params.items())}" if params else "")
