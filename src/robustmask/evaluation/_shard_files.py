"""The files of a sharded evaluation: which files a merge reads, and reading one (`shards` writes them)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from robustmask.errors import RobustmaskError

FORMAT = 1  # the shard file's format; a file of another format is refused, never misread
NAME = re.compile(r"shard-(\d+)-of-(\d+)\.npz")


def shard_files(paths: list[str | os.PathLike]) -> list[Path]:
    if not paths:
        raise RobustmaskError("merge_shards needs shard files or folders holding them")
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if NAME.fullmatch(f.name))
            if not found:
                raise RobustmaskError(f"no shard files (shard-*-of-*.npz) in {p}: run evaluate_shard first")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise RobustmaskError(f"shard file {p} does not exist: run evaluate_shard for it or leave it out")
    return files


def load_shard(file: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(str(arrays.pop("meta")))
    except Exception as err:  # any unreadable file: one line naming it
        raise RobustmaskError(
            f"{file} is not a readable shard file ({type(err).__name__}): rerun its shard"
        ) from None
    if meta.get("format") != FORMAT:
        raise RobustmaskError(
            f"{file} is a shard file of format {meta.get('format')}, not {FORMAT}: rerun its shard"
        )
    return meta, arrays
