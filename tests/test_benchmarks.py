"""benchmarks/run.py runs end to end at a tiny size and writes a table with every task.

No timing is asserted: the suite's figures belong to docs/benchmarks.md, measured on a quiet machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TASKS = [
    "Table-4 sweep, one Evaluator reused",
    "Table-4 sweep, a fresh Evaluator(FGSM()) per call",
    "Table-4 sweep vs ART FastGradientMethod looped over the epsilons",
    "TensorFlow kernels vs XLA",
    "FGSM on one batch vs ART",
    "BIM-10 on one batch vs ART",
    "PGD-20 on one batch vs ART",
    "FGSM on one batch vs its limit",
    "Algorithm 2 data: FGSM copies at 10 epsilons vs 1",
    "Algorithm 2 (3 epsilons): one epoch vs its bare limit",
    "Algorithm 2 (3 epsilons): one-epoch fit from scratch vs ART",
    "PGD-AT (7 steps): one epoch vs its bare limit",
    "PGD-AT (7 steps): one-epoch fit from scratch vs ART",
    "fast AT (FGSM, random start): one epoch vs its bare limit",
    "fast AT (FGSM, random start): one-epoch fit from scratch vs ART",
    "TRADES (7 steps): one epoch vs its bare limit",
    "peak memory, Evaluator",
    "peak memory, Algorithm 2",
    "peak memory, PGD-AT",
    "peak memory, fast AT",
    "peak memory, TRADES",
    "Kaggle-folder loader vs the model's clean forward pass",
    "Kaggle-folder loader vs the Table-4 sweep's consumption",
]


@pytest.mark.slow
def test_the_suite_runs_and_writes_every_row(tmp_path):
    out = tmp_path / "benchmarks.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| task")]
    for task in TASKS:
        assert sum(task in line for line in rows) == 1, f"no row (or several) for {task!r}"
    for line in rows:  # every row has all its columns, and a verdict where there is a target
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == 9, line
        assert cells[6] in ("yes", "no", "n/a"), line
        assert (cells[5] == "—") == (cells[6] == "n/a") or cells[4] == "—", line
    for heading in ("## Notes", "## GPU", "command: `python benchmarks/run.py", "versions: Python"):
        assert heading in text
    assert "[sweep]" in done.stdout and "[trainers]" in done.stdout  # progress, task by task


@pytest.fixture()
def sections(monkeypatch):
    """benchmarks/_sections.py, imported as benchmarks/run.py imports it."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import _sections

    return _sections


@pytest.mark.parametrize(
    "rm,comp,kind,target,ratio,met",
    [
        # slower: robustmask / comparison, the target an upper bound
        (3.0, 2.0, "slower", 2.0, 1.5, "yes"),
        (5.0, 2.0, "slower", 2.0, 2.5, "no"),
        (4.0, 2.0, "slower", 2.0, 2.0, "yes"),  # on the bound: met
        (1.0, 4.0, "slower", 0.5, 0.25, "yes"),
        (3.0, 4.0, "slower", 0.5, 0.75, "no"),
        # faster: comparison / robustmask, the target a lower bound
        (2.0, 8.0, "faster", 3.0, 4.0, "yes"),
        (2.0, 4.0, "faster", 3.0, 2.0, "no"),
        (2.0, 6.0, "faster", 3.0, 3.0, "yes"),  # on the bound: met
        (4.0, 2.0, "faster", 1.0, 0.5, "no"),
        # no target, or no ratio: no verdict
        (3.0, 2.0, "slower", None, 1.5, "n/a"),
        (None, 2.0, "slower", 2.0, None, "n/a"),
        (3.0, None, "faster", 2.0, None, "n/a"),
        (0.0, 2.0, "slower", 2.0, None, "n/a"),
        (3.0, 0.0, "faster", 2.0, None, "n/a"),
    ],
)
def test_a_rows_verdict_is_its_ratio_against_the_target(sections, rm, comp, kind, target, ratio, met):
    r = sections.row("task", rm, "other", comp, kind=kind, target=target)
    assert r["ratio"] == (None if ratio is None else pytest.approx(ratio))
    assert r["met"] == met
    bound = {"slower": "<=", "faster": ">="}[kind]
    assert r["target"] == ("—" if target is None else f"{bound} {target:g}x")
    assert sections.row_markdown(r).split(" | ")[6] == met
    assert sections.row_line(r).endswith(f"({met})")
