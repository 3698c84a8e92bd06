"""Sharded evaluation on the command line: ``evaluate --shard I/N --shard-out DIR``, then ``merge``
(`robustmask.cli.merge`).

Each of N jobs (a Slurm array task, a Kubernetes indexed Job, or N processes) runs ``robustmask
evaluate ... --shard $I/N --shard-out shards/`` with the same options and writes one file;
``robustmask merge shards/`` prints (and with --csv writes) exactly the table one process gives
(`robustmask.evaluation.shards`; docs/scale.md says how).
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

from robustmask.errors import RobustmaskError

if TYPE_CHECKING:  # pragma: no cover - TensorFlow is imported only when a command runs
    import numpy as np
    import tensorflow as tf

#: Images scored and attacked together by `evaluate --suite` (sharded or not: the same chunks, so
#: that merged shards equal the one-process table).
SUITE_CHUNK = 64
_SHARD = re.compile(r"(\d+)/(\d+)")


def shard_value(text: str) -> tuple[int, int]:
    """``I/N`` (0-based shard I of N, as ``$SLURM_ARRAY_TASK_ID`` counts) as a pair."""
    match = _SHARD.fullmatch(text.strip())
    if match is None or not 0 <= int(match[1]) < int(match[2]):
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, such as 0/4, got {text!r}")
    return int(match[1]), int(match[2])


def add_shard_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shard",
        type=shard_value,
        metavar="I/N",
        help="evaluate only shard I (0-based) of N and write it to --shard-out; `robustmask merge` "
        "joins the N files into the one-process table",
    )
    parser.add_argument("--shard-out", metavar="DIR", help="folder (or .npz file) for this shard's results")


def write_shard(
    args: argparse.Namespace, model: Any, data: tuple[np.ndarray, np.ndarray] | tf.data.Dataset, job: Any
) -> int:
    """Run this process's shard of `job` (an Evaluator or a RobustnessSpec) on `data` (``(x, y)``, or
    for an Evaluator a folder's stream) and say where it went."""
    from robustmask.evaluation.shards import evaluate_shard

    if not args.shard_out:
        raise RobustmaskError("--shard needs --shard-out DIR (where the shard's results go)")
    if args.out or args.csv:
        raise RobustmaskError("a shard writes only --shard-out; give --out or --csv to `robustmask merge`")
    shard, num_shards = args.shard
    path = evaluate_shard(job, model, data, shard=shard, num_shards=num_shards, out=args.shard_out)
    print(f"wrote shard {shard} of {num_shards}: {path}")
    return 0
