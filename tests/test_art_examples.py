"""The ART example script runs (exit 0) and prints what it promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import art  # noqa: F401  (a declared dependency: if it cannot be imported, this fails rather than skips)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_jsma_and_bim_example_runs():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "jsma_and_bim_facemask.py")],
        cwd=EXAMPLES.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout
    assert done.returncode == 0, f"the example failed:\n{out[-2000:]}\n{done.stderr[-4000:]}"
    for line in (
        "face-mask model (frozen random base, trained head), 32x32 px",
        "BIM (10 steps) on",
        "JSMA (theta=1, gamma=0.05)",
        "JSMA and BIM example done",
    ):
        assert line in out, out[-3000:]
    # the model learnt something, and both attacks flip most of the correctly classified images
    train_accuracy = float(re.search(r"train accuracy ([\d.]+)", out).group(1))
    assert train_accuracy > 0.5, out
    success = re.search(
        r"success: BIM (\d+)% at eps=[\d.]+ .*; JSMA (\d+)% changing (\d+) of (\d+) values", out
    )
    assert success, out
    bim, jsma, changed, values = (int(v) for v in success.groups())
    assert bim >= 50 and jsma >= 50, out
    assert changed < 0.1 * values, out  # JSMA: a few pixels, a lot
