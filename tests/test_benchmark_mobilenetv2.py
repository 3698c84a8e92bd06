"""benchmarks/robust_mobilenetv2.py: the card's retrain command gives back the recipe that was run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import load_benchmark

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "robust_mobilenetv2.py"


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("robust_mobilenetv2.py", "bench_robust_mobilenetv2")


def test_the_default_recipe_retrains_with_the_bare_command(bench):
    assert bench.retrain_command(bench.parse([])) == "python benchmarks/robust_mobilenetv2.py --ship"


def test_a_changed_recipe_is_in_the_command_and_where_it_ran_is_not(bench):
    argv = ["--epochs", "30", "--train-steps", "10", "--eps-ramp", "5", "--trainer", "trades"]
    run_only = ["--out", "runs/x", "--no-write", "--only-shard", "4", "--shards", "7"]
    command = bench.retrain_command(bench.parse(argv + run_only))
    assert command.endswith("--ship") and "runs/x" not in command and "--only-shard" not in command
    # the command parses back to the same recipe
    again = bench.parse(command.split()[2:])
    for name in ("epochs", "train_steps", "eps_ramp", "trainer"):
        assert getattr(again, name) == getattr(bench.parse(argv), name)


def _results(robust_8, robust_009=(96.0, 96.0), clean=(93.0, 97.0)):
    """evaluate()'s form for the twin and the robust model: (APGD-CE alone, worst case) per eps."""

    def row(eps, clean, apgd, worst):
        return {"Epsilon": eps, "Clean (%)": clean, "FGSM (%)": 99.0, "PGD-20 (%)": 99.0,
                "APGD-CE (%)": apgd, "Worst case (%)": worst, "attacks": ["iterative"]}  # fmt: skip

    return {
        "undefended": {
            "rows": [row(0.009, clean[0], 0.0, 0.0), row(8 / 255, clean[0], 0.0, 0.0)],
            "seconds": {"APGD-CE": 1.0},
            "sample": {},
        },
        "robust": {
            "rows": [row(0.009, clean[1], *robust_009), row(8 / 255, clean[1], *robust_8)],
            "seconds": {"APGD-CE": 2.0, "Square": 5.0},
            "sample": {"images": 60},
        },
    }


def _card(bench, results):
    import keras
    import numpy as np

    card_module = sys.modules["_mobilenetv2_card"]
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)  # a trained model carries its optimizer's state
    data = {
        "train": (np.zeros((3000, 4)), np.zeros(3000, int)),
        "test": (np.zeros((300, 4)), np.zeros(300, int)),
    }
    history = {"loss": [1.0, 0.5]}
    seconds = {"undefended": 10.0, "robust": 20.0}
    card = card_module.make_card(bench.parse([]), data, results, history, seconds, model, "python x --ship")
    return card_module, model, card


@pytest.mark.parametrize(
    "robust_8, robust_009, clean, missed",
    [
        ((75.0, 73.7), (96.0, 96.0), (93.0, 97.0), []),
        ((75.0, 72.0), (96.0, 96.0), (93.0, 88.0), []),  # 3.0 points under APGD-CE, 5.0 under the twin
        ((45.0, 45.0), (75.0, 75.0), (93.0, 97.0), []),  # exactly at both thresholds
        ((71.0, 67.7), (96.0, 96.0), (93.0, 97.0), ["worst case within 3 points of APGD-CE"]),  # run 13
        ((75.0, 73.7), (96.0, 92.9), (93.0, 97.0), ["worst case within 3 points of APGD-CE"]),
        ((45.5, 44.9), (96.0, 96.0), (93.0, 97.0), ["worst case >= 45% at 8/255"]),
        ((75.0, 73.7), (76.0, 74.9), (93.0, 97.0), ["worst case >= 75% at 0.009"]),
        ((75.0, 73.7), (96.0, 96.0), (93.0, 87.9), ["clean within 5 points of the twin"]),
    ],
)
def test_the_card_judges_each_target_at_its_threshold(bench, robust_8, robust_009, clean, missed):
    _, _, card = _card(bench, _results(robust_8, robust_009, clean))
    assert len(card["targets"]) == 4
    assert sorted(name for name, met in card["targets"].items() if not met) == missed


def test_ship_writes_a_loadable_model_and_its_card_and_the_section_only_between_markers(
    bench, tmp_path, monkeypatch
):
    import json

    import keras
    import numpy as np

    card_module, model, card = _card(bench, _results((75.0, 73.7)))
    monkeypatch.setattr(card_module, "WEIGHTS_DIR", tmp_path / "weights")
    card_module.ship(model, card)
    stem = card_module.SHIPPED_MODELS["robust_mobilenetv2"]
    assert json.loads((tmp_path / "weights" / f"{stem}.json").read_text()) == card
    loaded = keras.models.load_model(tmp_path / "weights" / f"{stem}.keras")
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert getattr(model, "optimizer", None) is not None
    assert getattr(loaded, "optimizer", None) is None  # shipped without the optimizer's state

    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import defences  # the one writer of docs/defences.md's marked tables

    doc = tmp_path / "defences.md"
    doc.write_text(f"before\n{card_module.BEGIN}\nold\n{card_module.END}\nafter\n")
    monkeypatch.setattr(defences, "DOC", doc)
    text = card_module.section_text(card)
    card_module.write_section(text)
    assert doc.read_text() == f"before\n{card_module.BEGIN}\n{text}{card_module.END}\nafter\n"
    assert "- worst case within 3 points of APGD-CE: met" in text and "`python x --ship`" in text


@pytest.mark.parametrize(
    "argv, n_train, ramp",
    [
        ([], 3000, "4 epochs"),  # the shipped recipe: 21 epochs, a ramp of 4
        (["--epochs", "2"], 30, "1 epoch"),  # the smoke run: the trainer cuts a 4-epoch ramp to half the run
        (["--epochs", "3", "--batch-size", "10"], 30, "1.33333 epochs"),  # 3 updates a epoch: 4 of 9 updates
        (["--eps-ramp", "0"], 3000, "0 epochs"),
    ],
)
def test_the_card_states_the_ramp_the_trainer_ran(bench, argv, n_train, ramp):
    card_module = sys.modules["_mobilenetv2_card"]
    assert card_module.ramp_epochs(bench.parse(argv), n_train) == ramp


def test_the_cards_recipe_names_that_ramp(bench):
    _, _, card = _card(bench, _results((75.0, 73.7), (96.0, 96.0), (93.0, 97.0)))
    assert "21 epochs, eps ramp 4 epochs, Adam" in card["recipe"]["defense"]
