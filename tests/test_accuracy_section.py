"""The accuracy section of a results folder, written once (evaluate, defend, reproduce): its curves,
text, table and figure, for each of the three tables robustmask makes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from robustmask.evaluation.accuracy_section import accuracy_curves, accuracy_text, write_accuracy_section
from robustmask.evaluation.results import ResultsWriter

EPS = [0.0, 0.004, 8 / 255]


def evaluator_table(norm="L-inf", attack="PGD"):
    table = pd.DataFrame({"Epsilon": EPS, "Accuracy (%)": [90.0, 50.0, 10.0], "Loss": [0.1, 1.2, 3.4]})
    table.attrs.update(attack=attack, examples=20, measured_epsilon=False, norm=norm)
    return table


def robustness_table_like(epsilon="Epsilon"):
    table = pd.DataFrame(
        {
            epsilon: EPS,
            "Clean (%)": [90.0] * 3,
            "FGSM (%)": [90.0, 60.0, 40.0],
            "PGD (%)": [90.0, 45.0, 20.0],
            "APGD-CE (%)": [90.0, 40.0, 15.0],
            "Worst case (%)": [90.0, 35.0, 5.0],
        }
    )
    table.attrs.update(
        norm="L2",
        examples=20,
        protocols={"FGSM": "individual", "PGD": "individual", "APGD-CE": "cascade"},
        attacks={"FGSM": "FGSM", "PGD": "PGD-20", "APGD-CE": "APGD-CE (100 iterations)"},
    )
    return table


def comparison_like():
    one, two = robustness_table_like(), robustness_table_like()
    two[["PGD (%)", "Worst case (%)"]] = [[80.0, 80.0], [70.0, 65.0], [60.0, 55.0]]
    table = pd.concat([one.assign(Defense="undefended"), two.assign(Defense="pgd-at")], ignore_index=True)
    table = table[["Defense", *one.columns]]
    table.attrs = dict(one.attrs)
    return table


def test_curves_of_each_kind_of_table():
    comparison = comparison_like()
    curves = accuracy_curves(comparison)
    assert list(curves) == ["undefended, PGD", "undefended, Worst case", "pgd-at, PGD", "pgd-at, Worst case"]
    for name, frame in curves.items():
        model, column = name.split(", ")
        rows = comparison[comparison["Defense"] == model]
        assert list(frame.columns) == ["Epsilon", "Accuracy (%)"]
        np.testing.assert_array_equal(frame["Epsilon"], rows["Epsilon"])
        np.testing.assert_array_equal(frame["Accuracy (%)"], rows[f"{column} (%)"])
        assert frame.attrs["norm"] == "L2"  # the figure's x-axis names it

    written = robustness_table_like("Epsilon (L2)")  # as the CSV files have it
    written.attrs.pop("norm")
    curves = accuracy_curves(written)
    assert list(curves) == ["FGSM", "PGD", "APGD-CE", "Worst case"]
    np.testing.assert_array_equal(curves["APGD-CE"]["Accuracy (%)"], [90.0, 40.0, 15.0])
    assert all(frame.attrs["norm"] == "L2" for frame in curves.values())

    table = evaluator_table()
    (name, frame), *rest = accuracy_curves(table).items()
    assert name == "PGD" and not rest and frame.equals(table)  # its loss is drawn too
    assert list(accuracy_curves(table, name="mine")) == ["mine"]


def test_the_text_says_what_the_numbers_are():
    text = accuracy_text(robustness_table_like())
    assert text.startswith("Per eps: clean accuracy, accuracy under FGSM and PGD, each on every image, then ")
    assert "under APGD-CE in a cascade, each attack on the images still robust" in text
    assert text.endswith(
        "the worst case per image over every attack: FGSM, PGD-20, APGD-CE (100 iterations). A robustness "
        "claim holds only under that worst case."
    )
    assert accuracy_text(comparison_like()).startswith("Per model and eps: clean accuracy")
    assert accuracy_text(evaluator_table(norm="L2")).startswith(
        "One row per epsilon (L2); the first is the clean"
    )
    measured = evaluator_table()
    measured.attrs["measured_epsilon"] = True
    assert "chooses its own perturbation size" in accuracy_text(measured)


def test_the_section_writes_its_table_and_figure(tmp_path):
    writer = ResultsWriter(tmp_path, title="t", kind="evaluate")
    table = comparison_like()
    write_accuracy_section(
        writer,
        table,
        heading="Accuracy under every attack",
        intro="The CNN at 24 px.",
        name="comparison",
        caption="the table",
        figure_caption="the figure",
    )
    writer.finish()
    (section,) = json.loads((tmp_path / "summary.json").read_text())["sections"]
    assert section["heading"] == "Accuracy under every attack"
    assert section["text"] == "The CNN at 24 px. " + accuracy_text(table)
    assert section["tables"] == [{"name": "comparison", "caption": "the table"}]
    assert section["figures"] == [{"name": "accuracy_vs_eps", "caption": "the figure"}]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "tables" / "comparison.csv"), table)
    assert (tmp_path / "figures" / "accuracy_vs_eps.png").read_bytes()[:4] == b"\x89PNG"
    assert 'id="table-comparison"' in (tmp_path / "report.html").read_text()


@pytest.mark.parametrize("given", ["text", "curves"])
def test_a_caller_may_give_its_own_text_and_curves(tmp_path, given, monkeypatch):
    from robustmask.evaluation import plots

    drawn = []
    real = plots.accuracy_and_loss_vs_eps
    monkeypatch.setattr(
        plots, "accuracy_and_loss_vs_eps", lambda curves: drawn.append(curves) or real(curves)
    )
    writer = ResultsWriter(tmp_path, title="t", kind="reproduce")
    table, own = evaluator_table(), {"this run": evaluator_table(), "paper": evaluator_table(attack="FGSM")}
    options = {"text": "Table 4, as the paper has it."} if given == "text" else {"curves": own}
    write_accuracy_section(
        writer, table, heading="h", name="table4", caption="c", figure="t4", figure_caption="f", **options
    )
    writer.finish(report=False)
    (section,) = json.loads((tmp_path / "summary.json").read_text())["sections"]
    assert section["text"] == (options.get("text") or accuracy_text(table))
    assert list(drawn[0]) == (["this run", "paper"] if given == "curves" else ["PGD"])
