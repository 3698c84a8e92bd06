"""benchmarks/_doc_markers.py: a benchmark rewrites only its marked block of a doc page."""

from __future__ import annotations

import pytest
from conftest import load_benchmark

write_between = load_benchmark("_doc_markers.py", "doc_markers").write_between

BEGIN, END = "<!-- t: begin -->", "<!-- t: end -->"


def test_only_the_first_marked_block_changes(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"hand {BEGIN}\nold\n{END} prose\n{BEGIN}\nsecond\n{END}\n", encoding="utf-8")
    write_between(page, BEGIN, END, "new \\1 $x\n")  # replacement syntax in the text is kept as written
    assert page.read_text() == f"hand {BEGIN}\nnew \\1 $x\n{END} prose\n{BEGIN}\nsecond\n{END}\n"


def test_a_page_without_markers_is_refused_and_left_alone_unless_they_may_be_added(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("prose\n", encoding="utf-8")
    for text in (f"prose\n{BEGIN}\n", f"prose\n{END}\n", "prose\n"):
        page.write_text(text, encoding="utf-8")
        with pytest.raises(SystemExit, match=r"has no '<!-- t: begin -->' \.\.\. '<!-- t: end -->' markers"):
            write_between(page, BEGIN, END, "new\n")
        assert page.read_text() == text
    page.write_text("prose\n", encoding="utf-8")
    write_between(page, BEGIN, END, "new\n", add_missing=True)
    assert page.read_text() == f"prose\n\n{BEGIN}\nnew\n{END}\n"
