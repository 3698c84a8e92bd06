"""The study end to end on the embedded synthetic faces (slow: minutes on 2 CPU cores)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from robustmask.attacks import FGSM
from robustmask.datasets import synthetic_face_masks
from robustmask.errors import RobustmaskError
from robustmask.reproduce import PAPER_EPSILONS, StudyConfig, run_study

# Table 4 of Sheikh & Zafar (2023) (../shared/PAPER.md): FGSM at these epsilons, after the clean row.
TABLE4_EPSILONS = (0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009)


def test_paper_epsilons_are_table_4s():
    assert PAPER_EPSILONS == TABLE4_EPSILONS
    assert StudyConfig.quick().epsilons == TABLE4_EPSILONS
    full = StudyConfig.full()
    assert (
        full.epsilons == TABLE4_EPSILONS and full.extra_epsilons == ()
    )  # the paper's preset: its epsilons alone


@pytest.mark.slow
def test_reproduce_quick_shape_holds(tmp_path):
    out = tmp_path / "run"
    # Smaller than the quick preset (64 px, 300 a class) and a larger test split for a steadier table.
    config = StudyConfig.quick(
        n_per_class=300,
        image_size=64,
        split=0.15,
        defense_epochs=6,
        subset=0.5,
        robust_n_per_class=300,
        robust_image_size=32,
        robust_epochs=20,
        robust_square_queries=100,
        robust_suite_square_queries=100,
        robust_epsilons=(4 / 255,),
    )
    summary = run_study(config, out, progress=False, log=lambda *_: None)
    table4 = pd.read_csv(out / "tables" / "table4.csv")
    table5 = pd.read_csv(out / "tables" / "table5.csv")
    # The tables carry the paper's epsilons (clean row first), and the same rows for both models,
    # with the paper's published numbers beside this run's.
    assert list(table4.columns) == ["Epsilon", "Accuracy (%)", "Loss", "Paper accuracy (%)", "Paper loss"]
    assert list(table4["Paper accuracy (%)"][:3]) == [95.83, 75.12, 59.54]  # Table 4 of PAPER.md
    assert list(table5["Paper accuracy (%)"][:2]) == [93.79, 92.87]  # Table 5
    assert list(table4["Epsilon"][: len(PAPER_EPSILONS) + 1]) == pytest.approx([0.0, *PAPER_EPSILONS])
    assert list(table4["Epsilon"]) == list(table5["Epsilon"])
    acc4, acc5 = table4["Accuracy (%)"], table5["Accuracy (%)"]

    # Table 4 at the paper's epsilons ALONE: the quick preset may append 4/255 to 8/255 when the paper's
    # epsilons barely move a model, and the checks below on the last row would then pass on those.
    paper = table4[table4["Epsilon"] <= PAPER_EPSILONS[-1] + 1e-12].reset_index(drop=True)
    assert list(paper["Epsilon"]) == pytest.approx([0.0, *PAPER_EPSILONS])
    clean, at_0009 = paper["Accuracy (%)"].iloc[0], paper["Accuracy (%)"].iloc[-1]
    assert clean > 70
    assert at_0009 < clean - 30, f"FGSM at eps 0.009 leaves {at_0009:.1f}% of {clean:.1f}% clean accuracy"
    assert paper["Accuracy (%)"].iloc[1] < clean  # even eps 0.001 costs accuracy (paper: 95.83 -> 75.12)
    assert paper["Loss"].iloc[-1] > paper["Loss"].iloc[0]
    # so the paper's epsilons moved the model and the preset appended none: Table 4 is the paper's rows
    assert len(table4) == len(paper) and not any("appends eps" in note for note in summary["notes"])
    # ... and the table is what the saved model gives: FGSM at 0.009 on the same test split, recomputed.
    x, y = synthetic_face_masks(n_per_class=300, image_size=64, seed=config.seed)
    _, x_test, _, y_test = train_test_split(x, y, test_size=0.15, stratify=y, random_state=config.seed)
    assert summary["data"]["test"] == len(y_test)
    undefended = keras.models.load_model(out / "undefended.keras")
    x_adv = FGSM()(undefended, x_test, y_test, eps=0.009)
    recomputed = 100.0 * np.mean(np.argmax(undefended.predict(x_adv, verbose=0), axis=1) == y_test)
    assert recomputed == pytest.approx(at_0009, abs=100.0 / len(y_test) + 1e-9)

    # The shape of the paper's Table 4: high clean accuracy, falling under FGSM.
    assert summary["results"]["test_accuracy"] > 70
    assert acc4.iloc[0] - acc4.iloc[-1] > 30
    assert acc4.iloc[-1] < acc4.iloc[1] <= acc4.iloc[0]
    # Table 5 under both losses, on the same rows; the paper-faithful defence changes the model.
    assert table5["Accuracy (%), Keras loss"].iloc[0] == acc5.iloc[0]  # clean rows need no gradient: equal
    shares = summary["results"]["zero_gradient_share_percent"]
    assert set(shares) == {
        f"{m}, {loss} loss" for m in ("undefended", "defended") for loss in ("robustmask", "Keras")
    }
    assert all(0 <= share <= 100 for share in shares.values())

    # Beyond the paper: the robust defence resists PGD where the undefended model of the same run does not.
    robust = pd.read_csv(out / "tables" / "robust_comparison.csv")
    assert list(robust["Defense"].unique()) == ["undefended", "pgd-at"]
    at = robust[np.isclose(robust["Epsilon"], 4 / 255)].set_index("Defense")
    # measured: PGD-20 at 4/255 leaves 56.5% of the defended model, 8.3% of the undefended one
    assert at.loc["pgd-at", "PGD (%)"] >= at.loc["undefended", "PGD (%)"] + 25, at.to_string()
    assert at.loc["pgd-at", "Clean (%)"] >= at.loc["undefended", "Clean (%)"] - 5, at.to_string()
    assert list(robust["Epsilon"]) == pytest.approx([4 / 255, 4 / 255])  # the budgets the config asked for
    # FGSM, PGD, Square on every image, then AutoAttack's suite (a cascade) on both models, in ONE table
    attacks = ["FGSM (%)", "PGD (%)", "Square (%)", "APGD-CE (%)", "APGD-DLR (%)", "Square (suite) (%)"]
    assert list(robust.columns) == [
        "Defense",
        "Train time (s)",
        "Epsilon",
        "Clean (%)",
        *attacks,
        "Worst case (%)",
    ]
    # per image, the worst case counts an image robust only if every attack failed: never above any column
    assert (robust["Worst case (%)"] <= robust[attacks].min(axis=1) + 1e-9).all()
    assert not (out / "tables" / "standard_suite.csv").exists()  # no second worst case anywhere
    headline = summary["headline"]["rows"]
    assert [row["worst_case"] for row in headline] == pytest.approx(robust["Worst case (%)"].tolist())
    for name in (
        "tables/table4.md",
        "tables/table4_details.csv",
        "tables/table4.tex",
        "tables/table5.md",
        "tables/robust_comparison.md",
        "undefended.keras",
        "defended.keras",
        "robust-undefended.keras",  # every model the study trained, the robust stage's too
        "robust-pgd-at.keras",
        "summary.json",
        "reports/table4/eps_0.0090.csv",
        "history_Algorithm_2.csv",
        "figures/table4_accuracy.png",
        "figures/adversarial_examples.png",
        "figures/robust_accuracy.png",
        "report.html",
    ):
        assert (out / name).is_file(), name
    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") >= 7 and "Beyond the paper" in report
    saved = json.loads((out / "summary.json").read_text())
    assert saved["settings"]["seed"] == 0 and saved["epsilons"][0] == PAPER_EPSILONS[0]
    assert saved["kind"] == "reproduce" and saved["sections"] and isinstance(saved["warnings"], list)
    assert "tensorflow" in " ".join(saved["versions"]) and saved["weights"]["description"]
    # A second run into the same folder is refused: nothing is overwritten.
    with pytest.raises(RobustmaskError, match="--overwrite"):
        run_study(config, out, progress=False, log=lambda *_: None)


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"robust_epochs": 0}, "robust_epochs must be a positive integer"),
        ({"robust_square_queries": 2.5}, "robust_square_queries must be a positive integer"),
        ({"robust_epsilons": (0.009, -1)}, "eps must be >= 0"),
        ({"robust_defense": "pgd-att"}, "pgd-att"),
    ],
)
def test_bad_robust_settings_fail_before_any_work(tmp_path, setting, message):
    logged = []
    with pytest.raises(RobustmaskError, match=message) as error:
        run_study(StudyConfig.quick(**setting), tmp_path / "run", progress=False, log=logged.append)
    assert len(str(error.value).splitlines()) == 1
    assert logged == [] and not (tmp_path / "run").exists()  # refused before the study started


def test_without_pretrained_weights_the_study_takes_the_small_cnn():
    from robustmask import reproduce

    notes = []
    quick = StudyConfig.quick()
    chosen = reproduce._settings_for(quick, {"weights": None}, notes, log=lambda *_: None)
    assert (chosen.architecture, chosen.image_size, chosen.epochs) == ("cnn", 48, quick.epochs)
    assert quick.architecture == "auto" and quick.image_size == 96  # the caller's settings, untouched
    model = reproduce._build_model(chosen, 3, {"weights": None, "freeze_base": False})
    assert model.input_shape == (None, 48, 48, 3) and "mobilenet" not in " ".join(
        l.name for l in model.layers
    )
    # with weights, or when asked, the paper's MobileNetV2
    assert reproduce._settings_for(quick, {"weights": "imagenet"}, [], print).architecture == "mobilenetv2"
    asked = StudyConfig.quick(architecture="mobilenetv2")
    assert reproduce._settings_for(asked, {"weights": None}, [], print).architecture == "mobilenetv2"
    with pytest.raises(RobustmaskError, match="architecture must be one of"):
        run_study(StudyConfig.quick(architecture="resnet"), "/nonexistent/never-written", progress=False)
