"""The shipped robust MobileNetV2: it loads offline in one line, and its card's numbers are true.

The card (written by ``benchmarks/robust_mobilenetv2.py --ship`` from the same run that trained the
model) holds counts on the first test faces that this test recomputes from nothing: the synthetic
test faces, a fresh PGD-20, the shipped model. A model file and a card from different runs, a
card edited by hand, or a loader that returns another model fail here.
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
            attacks = [row[k] for k in ("FGSM (%)", "PGD-20 (%)", "APGD-CE (%)") if row[k] is not None]
            assert row["Worst case (%)"] <= min(attacks) + 1e-9, (name, row)
            assert row["Worst case (%)"] <= row["Clean (%)"]
    assert set(card["targets"]) and all(isinstance(v, bool) for v in card["targets"].values())
    assert card["not_tested_against"] and card["retrain"].startswith("python benchmarks/")


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
