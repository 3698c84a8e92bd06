"""The one writer of a benchmark's marked block in a doc page: the text between two HTML comments.

    write_between(Path("docs/evaluation.md"), "<!-- suite cost: begin -->", "<!-- suite cost: end -->", text)

Everything outside the markers stays as it was; a page without them is refused (or, with
``add_missing``, gets them appended), so a benchmark never rewrites prose someone wrote by hand.
"""

from __future__ import annotations

import re
from pathlib import Path


def write_between(path: Path, begin: str, end: str, text: str, *, add_missing: bool = False) -> None:
    """Put `text` between the `begin` and `end` markers of `path` (the first such pair)."""
    document = path.read_text(encoding="utf-8")
    if add_missing and begin not in document:
        document += f"\n{begin}\n{end}\n"
    if begin not in document or end not in document:
        raise SystemExit(f"{path} has no '{begin}' ... '{end}' markers to write between")
    updated = re.sub(
        re.escape(begin) + ".*?" + re.escape(end),
        lambda _: f"{begin}\n{text}{end}",
        document,
        count=1,
        flags=re.S,
    )
    path.write_text(updated, encoding="utf-8")
