"""The study end to end on the embedded synthetic faces (slow: minutes on 2 CPU cores)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from robustmask.errors import RobustmaskError
from robustmask.reproduce import PAPER_EPSILONS, StudyConfig, run_study


@pytest.mark.slow
def test_reproduce_quick_shape_holds(tmp_path):
    out = tmp_path / "run"
    # Smaller than the quick preset (64 px, 300 a class) and a larger test split for a steadier table.
    config = StudyConfig.quick(n_per_class=300, image_size=64, split=0.15, defence_epochs=6, subset=0.5)
    summary = run_study(config, out, progress=False, log=lambda *_: None)
    table4 = pd.read_csv(out / "table4.csv")
    table5 = pd.read_csv(out / "table5.csv")
    # The tables carry the paper's epsilons (clean row first), and the same rows for both models.
    assert list(table4.columns) == ["Epsilon", "Accuracy (%)", "Loss"]
    assert list(table4["Epsilon"][: len(PAPER_EPSILONS) + 1]) == pytest.approx([0.0, *PAPER_EPSILONS])
    assert list(table4["Epsilon"]) == list(table5["Epsilon"])
    acc4, acc5 = table4["Accuracy (%)"], table5["Accuracy (%)"]
    # The shape of the paper's result: high clean accuracy, falling under FGSM, defence clearly better.
    assert summary["results"]["test_accuracy"] > 70
    assert acc4.iloc[0] - acc4.iloc[-1] > 30
    assert acc4.iloc[-1] < acc4.iloc[1] <= acc4.iloc[0]
    assert acc5.iloc[-1] > acc4.iloc[-1] + 10
    for name in ("table4.md", "table5.md", "undefended.keras", "defended.keras", "summary.json",
                 "table4_reports/eps_0.0090.csv", "defence_history.csv"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "summary.json").read_text())
    assert saved["settings"]["seed"] == 0 and saved["epsilons"][0] == PAPER_EPSILONS[0]
    assert "tensorflow" in " ".join(saved["versions"]) and saved["weights"]["description"]
    # A second run into the same folder is refused: nothing is overwritten.
    with pytest.raises(RobustmaskError, match="--overwrite"):
        run_study(config, out, progress=False, log=lambda *_: None)
