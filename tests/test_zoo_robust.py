"""The shipped-model layer of the zoo: one-line errors, and "Table 5, as it should read" from a card.

No robust MobileNetV2 is shipped yet (docs/defences.md, run 11: its full-suite evaluation did not
finish); these tests cover the loader's errors and the study's table on a card built here.
"""

from __future__ import annotations

import json

import pytest

from robustmask.errors import ModelError
from robustmask.zoo import model_card, robust_mobilenetv2
from robustmask.zoo import robust as robust_module

HEADLINE_EPS = (0.009, 8 / 255)


def test_a_missing_file_or_unknown_name_is_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="no shipped model called 'nope'"):
        model_card("nope")
    monkeypatch.setattr(robust_module, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ModelError, match="missing from this installation"):
        robust_mobilenetv2()
    with pytest.raises(ModelError, match="card .* is missing"):
        model_card()
    (tmp_path / "robust_mobilenetv2_96.json").write_text(json.dumps({"name": "x"}))
    assert model_card() == {"name": "x"}


def _card() -> dict:
    rows = [
        {"Epsilon": 0.009, "Clean (%)": 90.0, "FGSM (%)": 80.0, "PGD-20 (%)": 70.0, "Worst case (%)": 60.0}
    ]
    rows += [
        {
            "Epsilon": e,
            "Clean (%)": 90.0,
            "FGSM (%)": 89.0 - i,
            "PGD-20 (%)": 85.0 - i,
            "Worst case (%)": 84.0 - i,
        }
        for i, e in enumerate((0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008))
    ]
    return {"results": {"robust": rows}}


def test_table5_as_it_should_read_takes_fgsm_and_the_worst_case_beside_the_paper():
    from robustmask import paper
    from robustmask._study_shipped import table5_as_it_should_read

    table = table5_as_it_should_read(_card())
    assert list(table["Epsilon"]) == list(paper.TABLE5["Epsilon"])
    assert table["Accuracy (%)"].iloc[0] == 90.0 and table["Worst case (%)"].iloc[0] == 90.0  # eps 0: clean
    assert list(table["Accuracy (%)"].iloc[1:-1]) == [89.0 - i for i in range(8)]
    assert table["Accuracy (%)"].iloc[-1] == 80.0 and table["Worst case (%)"].iloc[-1] == 60.0
    assert list(table["Paper accuracy (%)"]) == list(paper.TABLE5["Accuracy (%)"])


def test_the_study_section_says_when_no_model_is_shipped(tmp_path, monkeypatch):
    from robustmask._study_shipped import shipped_section
    from robustmask.evaluation.results import ResultsWriter

    monkeypatch.setattr(robust_module, "WEIGHTS_DIR", tmp_path / "empty")
    folder = tmp_path / "run"
    folder.mkdir()
    writer = ResultsWriter(folder, title="t", kind="reproduce", command="c")
    assert shipped_section(writer) == {"shipped_model": None}
    assert any("not in this installation" in section["text"] for section in writer.summary["sections"])
