"""The shipped robust MobileNetV2: it loads offline in one line, and its card's numbers are true.

The card (written by ``benchmarks/robust_mobilenetv2.py --ship`` from the same run that trained the
model) holds counts on the first test faces that these tests recompute from nothing: the synthetic
test faces, a fresh PGD-20, the shipped model. A model file and a card from different runs, a card
edited by hand, or a loader that returns another model fail here. The loader's errors and the
study's "Table 5, as it should read" are checked on cards built here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from robustmask.attacks import PGD
from robustmask.errors import ModelError
from robustmask.zoo import model_card, robust_mobilenetv2, shipped_model_path
from robustmask.zoo import robust as robust_module
from robustmask.zoo.robust import card_sample_faces

HEADLINE_EPS = (0.009, 8 / 255)


@pytest.fixture(scope="module")
def shipped():
    return robust_mobilenetv2(), model_card("robust_mobilenetv2")


def _correct(model, x: np.ndarray, y: np.ndarray) -> int:
    return int(np.sum(np.argmax(np.asarray(model(x, training=False)), axis=1) == y))


def test_the_model_loads_offline_in_one_line_and_is_small(shipped):
    model, card = shipped
    assert model.input_shape == (None, 96, 96, 3) and model.output_shape == (None, 3)
    assert model.count_params() == card["parameters"]
    limit_mb = 2 if card["alpha"] <= 0.35 else 10  # alpha 0.35 under 2 MB, alpha 1.0 under 10 MB
    assert shipped_model_path().stat().st_size < limit_mb * 1024 * 1024


def test_the_cards_sample_counts_match_a_fresh_evaluation(shipped):
    model, card = shipped
    x, y = card_sample_faces(card)
    assert len(x) == card["sample_check"]["images"] == 60 and set(np.unique(y)) == {0, 1, 2}
    sample = card["sample_check"]
    # One image of slack: oneDNN's float order may differ across CPUs and flip a borderline face.
    assert abs(_correct(model, x, y) - sample["clean_correct"]) <= 1
    pgd = PGD(steps=20, seed=0)
    for eps in HEADLINE_EPS:
        robust = _correct(model, pgd(model, x, y, eps=eps), y)
        assert abs(robust - sample[f"pgd20_correct_at_{eps:.6f}"]) <= 1, eps
    # And the attack really bites: the sample is not a set the model resists whatever happens.
    assert sample[f"pgd20_correct_at_{8 / 255:.6f}"] < sample["clean_correct"]


def test_the_card_reports_one_worst_case_per_eps_never_above_any_attack(shipped):
    _, card = shipped
    for name, rows in card["results"].items():
        epsilons = [round(row["Epsilon"], 6) for row in rows]
        assert len(epsilons) == len(set(epsilons)), name  # one row, so one worst case, per eps
        for row in rows:
            attacks = [row[k] for k in ("FGSM (%)", "PGD-20 (%)", "APGD-CE (%)") if row.get(k) is not None]
            assert row["Worst case (%)"] <= min(attacks) + 1e-9, (name, row)
            assert row["Worst case (%)"] <= row["Clean (%)"]
    assert set(card["targets"]) and all(isinstance(v, bool) for v in card["targets"].values())
    assert card["not_tested_against"] and card["retrain"].startswith("python benchmarks/")


def test_the_study_section_rechecks_the_shipped_card(tmp_path):
    from robustmask._study_shipped import shipped_section
    from robustmask.evaluation.results import ResultsWriter

    folder = tmp_path / "run"
    folder.mkdir()
    writer = ResultsWriter(folder, title="t", kind="reproduce", command="c")
    record = shipped_section(writer, log=lambda *_: None)["shipped_model"]
    assert record["card_agrees"] is True
    assert all(abs(card - fresh) <= 1 for card, fresh in record["sample"].values())


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
