"""``robustmask merge``: join the shard files of ``evaluate --shard I/N`` into the one-process table."""

from __future__ import annotations

import argparse

NAME = "merge"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    merge = commands.add_parser(
        NAME,
        help="join the shards of `evaluate --shard I/N` into one table",
        description="Read every shard file of one sharded evaluation (folders or .npz files), check "
        "that they share their settings and that none is missing, and print the table one process "
        "gives.",
    )
    merge.add_argument("shards", nargs="+", metavar="DIR_OR_NPZ")
    merge.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    return merge


def run(args: argparse.Namespace) -> int:
    from robustmask._io import write_text_atomically
    from robustmask.evaluation import named_norm
    from robustmask.evaluation.shards import merge_shards

    table = named_norm(merge_shards(args.shards))  # as `evaluate` prints and writes it
    print(table.to_string(index=False))
    if args.csv:
        write_text_atomically(args.csv, table.to_csv(index=False))
    return 0
