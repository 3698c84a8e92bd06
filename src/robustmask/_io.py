"""Atomic writes: a reader never sees half a file or a folder of mixed runs, and a crash leaves none."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from robustmask.errors import RobustmaskError


def write_atomically(path: str | os.PathLike, write: Callable[[str], object], suffix: str = ".tmp") -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside `path`, then move it onto `path`.

    `suffix` is the temporary file's ending, for writers that pick a format from it (``.keras``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp makes a private (0600) file; give the result the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def new_folder_beside(path: str | os.PathLike, tag: str = "new") -> Path:
    """Create and return an empty hidden folder next to `path` (same file system: renames are atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            folder = _free_name_beside(path, tag)
            folder.mkdir()  # honours the umask, unlike mkdtemp's private 0o700 folders
            return folder
        except FileExistsError:  # taken between the look and the mkdir
            continue


def _free_name_beside(path: Path, tag: str) -> Path:
    while True:
        candidate = path.parent / f".{path.name}.{tag}-{secrets.token_hex(4)}"
        if not os.path.lexists(candidate):
            return candidate


def refuse_filled_folder(path: str | os.PathLike, overwrite: bool) -> None:
    """Refuse, before any work, an output that is a file or a folder already holding results.

    `replaced_folder` checks again when it swaps; this is the early check, so a run's time is not
    spent on results that cannot be written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RobustmaskError(f"output {path} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise RobustmaskError(f"output folder {path} already holds results; pass --overwrite to replace them")


@contextmanager
def replaced_folder(path: str | os.PathLike, *, overwrite: bool) -> Iterator[Path]:
    """Fill a new folder beside `path`, then swap it in for `path` as a whole.

    Yields the new (empty) folder to write into. When the block ends normally the old `path` is
    renamed aside, the new folder renamed to `path`, and the old one deleted: nothing of an earlier
    run survives. When the block raises, the new folder is deleted and `path` is untouched. Without
    `overwrite`, a `path` that holds anything when the swap comes is refused, and the new results
    are kept in their folder (the error names it).
    """
    path = Path(path)
    if path.is_symlink():  # replace the folder the link points to, not the link
        path = path.resolve()
    if path.exists() and not path.is_dir():
        raise RobustmaskError(f"output {path} exists and is not a folder")
    staging = new_folder_beside(path)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    swap_in_folder(staging, path, overwrite=overwrite)


def swap_in_folder(new: str | os.PathLike, path: str | os.PathLike, *, overwrite: bool) -> Path:
    """Move the folder `new` to `path`, replacing a folder already there as a whole (see `replaced_folder`)."""
    new, path = Path(new), Path(path)
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise RobustmaskError(
            f"{path} filled up while the results were computed; nothing was overwritten: "
            f"the new results are in {new}, move them where you want them"
        )
    old = None
    if path.exists():
        old = _free_name_beside(path, "old")
        os.rename(path, old)
    try:
        os.rename(new, path)
    except BaseException:
        if old is not None:
            os.rename(old, path)  # put the earlier results back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it: set and restore at once
    os.umask(mask)
    return mask
