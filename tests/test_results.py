"""Results folders: the writer, the paper's tables, and the commands that write and read them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robustmask import paper
from robustmask.cli.main import main
from robustmask.errors import RobustmaskError
from robustmask.evaluation.results import ResultsWriter, eps_label, markdown_table

PAPER_MD = Path(__file__).resolve().parents[2] / "shared" / "PAPER.md"


def small_table(accuracy=(90.0, 50.0, 10.0)):
    table = pd.DataFrame(
        {"Epsilon": [0.0, 0.004, 8 / 255], "Accuracy (%)": accuracy, "Loss": [0.1, 1.2, 3.4]}
    )
    table.attrs["norm"] = "L-inf"
    return table


# ---------------------------------------------------------------------------------------------- the writer
def test_the_writer_writes_every_format_and_a_summary_that_lists_them(tmp_path):
    from robustmask.evaluation import plots

    writer = ResultsWriter(
        tmp_path,
        title="t",
        kind="evaluate",
        command="robustmask evaluate",
        seed=3,
        settings={"eps": [0.004], "model": Path("m.keras")},
    )
    writer.section("First", "text")
    writer.table("fgsm", small_table(), "FGSM")
    writer.figure("accuracy", plots.accuracy_and_loss_vs_eps({"FGSM": small_table()}), "a figure")

    class Named(str):
        check = "non-monotonic"

    writer.warn([Named("non-monotonic: accuracy rose"), "plain sentence"], "Table 4")
    writer.note("a note")
    report = writer.finish({"extra": 1})
    assert report == tmp_path / "report.html" and report.is_file()
    assert pd.read_csv(tmp_path / "tables" / "fgsm.csv").equals(small_table())  # the numbers, unrounded
    assert "| 8/255 | 10.00 | 3.4 |" in (tmp_path / "tables" / "fgsm.md").read_text()
    assert "\\begin{tabular}" in (tmp_path / "tables" / "fgsm.tex").read_text()
    assert (tmp_path / "figures" / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["sections"] == [
        {
            "heading": "First",
            "text": "text",
            "tables": [{"name": "fgsm", "caption": "FGSM"}],
            "figures": [{"name": "accuracy", "caption": "a figure"}],
        }
    ]
    assert summary["warnings"] == [
        {"check": "non-monotonic", "message": "Table 4: accuracy rose"},
        {"check": "", "message": "Table 4: plain sentence"},
    ]
    assert summary["seed"] == 3 and summary["notes"] == ["a note"] and summary["extra"] == 1
    assert summary["settings"]["model"] == "m.keras" and "tensorflow" in " ".join(summary["versions"])
    # files anyone on the machine may read, like any other file the user writes
    assert (tmp_path / "report.html").stat().st_mode & 0o044 == 0o044


@pytest.mark.parametrize("name", ["../escape", "with space", "", ".hidden"])
def test_the_writer_refuses_names_that_are_not_plain_file_names(tmp_path, name):
    writer = ResultsWriter(tmp_path, title="t", kind="evaluate")
    with pytest.raises(RobustmaskError, match="use letters, digits"):
        writer.table(name, small_table(), "c")


def test_the_writer_refuses_a_table_written_twice_and_a_missing_folder(tmp_path):
    writer = ResultsWriter(tmp_path, title="t", kind="evaluate")
    writer.table("a", small_table(), "c")
    with pytest.raises(RobustmaskError, match="written twice"):
        writer.table("a", small_table(), "c")
    with pytest.raises(RobustmaskError, match="does not exist"):
        ResultsWriter(tmp_path / "nowhere", title="t", kind="evaluate")


@pytest.mark.parametrize(
    "eps,label",
    [
        (0.0, "0 (clean)"),
        (8 / 255, "8/255"),
        (1 / 255, "1/255"),
        (0.004, "0.004"),
        (0.0095, "0.0095"),
        (0.5, "0.5"),
    ],
)
def test_eps_labels(eps, label):
    assert eps_label(eps) == label


def test_eps_column_finds_the_epsilons_wherever_they_are_and_however_the_norm_is_named():
    from robustmask.evaluation.headline import headline
    from robustmask.evaluation.labels import eps_column

    for name in ("Epsilon", "Epsilon (L2)", "Epsilon (L-inf)"):
        table = pd.DataFrame({"Defense": ["a"], "Epsilons seen": [3], name: [0.1], "Clean (%)": [90.0]})
        assert eps_column(table) == name
    table = pd.DataFrame({"Epsilon (L2)": [0.5], "Clean (%)": [90.0], "Worst case (%)": [40.0]})
    assert headline(table)["rows"][0]["epsilon"] == 0.5
    no_eps = pd.DataFrame({"Epsilons": [0.5], "Clean (%)": [90.0], "Worst case (%)": [40.0]})
    with pytest.raises(RobustmaskError) as caught:
        headline(no_eps)
    assert str(caught.value) == (
        "a robustness table needs an Epsilon column (one row per eps); this one has "
        "['Epsilons', 'Clean (%)', 'Worst case (%)']"
    )


def test_markdown_leaves_missing_values_empty():
    table = paper.beside_paper(small_table(), paper.TABLE4)
    lines = markdown_table(table).splitlines()
    assert lines[2] == "| 0 (clean) | 90.00 | 0.1 | 95.83 | 0.1339 |"
    assert lines[4] == "| 8/255 | 10.00 | 3.4 |  |  |"  # the paper has no 8/255 row


# ---------------------------------------------------------------------------------------------- the paper
# Tables 4 and 5 as the paper prints them (Sheikh & Zafar 2023; ../shared/PAPER.md restates them): an
# independent transcription, so a slip in robustmask.paper fails here, with or without PAPER.md.
PUBLISHED = {
    "Table 4": """
| 0 (clean) | 95.83 | 0.1339 |
| 0.001 | 75.12 | 1.2533 |
| 0.002 | 59.54 | 2.7042 |
| 0.003 | 45.20 | 3.9079 |
| 0.004 | 33.62 | 4.8393 |
| 0.005 | 26.59 | 5.5416 |
| 0.006 | 22.51 | 6.0692 |
| 0.007 | 18.52 | 6.4622 |
| 0.008 | 16.33 | 6.7565 |
| 0.009 | 14.53 | 6.9780 |
""",
    "Table 5": """
| 0 (clean) | 93.79 | 0.5855 |
| 0.001 | 92.87 | 0.5937 |
| 0.002 | 92.79 | 0.6011 |
| 0.003 | 92.70 | 0.6084 |
| 0.004 | 92.62 | 0.6182 |
| 0.005 | 92.62 | 0.6317 |
| 0.006 | 92.38 | 0.6450 |
| 0.007 | 92.05 | 0.6585 |
| 0.008 | 91.97 | 0.6738 |
| 0.009 | 92.13 | 0.6883 |
""",
}


def published_rows(text: str) -> list[tuple[float, float, float]]:
    """(epsilon, accuracy, loss) of each row of a paper table in markdown, the clean row at eps 0."""
    rows = re.findall(r"^\| (0 \(clean\)|0\.\d+) \| ([\d.]+) \| ([\d.]+) \|$", text, re.M)
    return [(0.0 if eps == "0 (clean)" else float(eps), float(acc), float(loss)) for eps, acc, loss in rows]


def test_the_paper_tables_are_the_published_ones():
    for name, table in (("Table 4", paper.TABLE4), ("Table 5", paper.TABLE5)):
        rows = published_rows(PUBLISHED[name])
        assert len(rows) == 10 == len(table), name
        assert list(zip(table["Epsilon"], table["Accuracy (%)"], table["Loss"])) == rows, name
        assert table.attrs["norm"] == "L-inf"
    if PAPER_MD.is_file():  # beside the checkout: the transcription above is what it says, row for row
        text = PAPER_MD.read_text()
        for name, block in PUBLISHED.items():
            assert published_rows(text[text.index(name + ":") :])[:10] == published_rows(block), name


# ---------------------------------------------------------------------------------------------- the commands
@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    from conftest import build_cnn, train
    from robustmask.datasets import synthetic_face_masks

    x, y = synthetic_face_masks(n_per_class=40, image_size=16, seed=0)
    path = tmp_path_factory.mktemp("model") / "m.keras"
    train(build_cnn(3, size=16), x, y, epochs=15).save(path)
    return path


def test_evaluate_out_writes_a_results_folder_with_a_report(saved_model, tmp_path, capsys):
    out = tmp_path / "fgsm"
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(saved_model),
                "--n-per-class",
                "10",
                "--eps",
                "0.01",
                "0.05",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "report.html" in capsys.readouterr().out
    table = pd.read_csv(out / "tables" / "evaluation.csv")
    assert list(table.columns) == ["Epsilon (L-inf)", "Accuracy (%)", "Loss"] and len(table) == 3
    assert (out / "figures" / "accuracy_vs_eps.png").is_file()
    report = (out / "report.html").read_text()
    assert "data:image/png;base64," in report and "Accuracy under attack" in report
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "evaluate" and summary["settings"]["eps"] == [0.01, 0.05]
    # the headline: one attack ran, so its accuracy is the worst case, shown first in the report
    headline = summary["headline"]
    assert headline["covers"] == "FGSM" and [r["epsilon"] for r in headline["rows"]] == [0.01, 0.05]
    assert [r["worst_case"] for r in headline["rows"]] == table["Accuracy (%)"].iloc[1:].tolist()
    assert report.index('id="summary"') < report.index("Accuracy under attack</h2>")
    # a second run into the same folder is refused; --overwrite replaces it whole
    assert main(["evaluate", "--model", str(saved_model), "--n-per-class", "10", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_evaluate_suite_prints_the_cascade_worst_case(saved_model, tmp_path, capsys):
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(saved_model),
                "--n-per-class",
                "10",
                "--suite",
                "standard",
                "--eps",
                "0.005",
                "0.1",
                "--param",
                "apgd_iter=5",
                "--param",
                "square_queries=20",
                "--csv",
                str(tmp_path / "s.csv"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "standard suite (APGD-CE, APGD-DLR, Square" in out
    table = pd.read_csv(tmp_path / "s.csv")
    worst = table["Worst case (%)"]
    assert "worst case over APGD-CE, APGD-DLR (5 iterations), Square (20 queries) on 30 images:" in out
    assert (
        f"clean {table['Clean (%)'].iloc[0]:.1f}%, worst case {worst.iloc[0]:.1f}% at 0.005, "
        f"{worst.iloc[1]:.1f}% at 0.1" in out
    )
    assert list(table.columns) == [
        "Epsilon (L-inf)",
        "Clean (%)",
        "APGD-CE (%)",
        "APGD-DLR (%)",
        "Square (%)",
        "Worst case (%)",
    ]
    # a cascade: each column is the robust accuracy after the attacks so far, so they never rise and the
    # worst case (robust under every attack) is the last one, exactly, at each eps; at the small eps some
    # images resist all three (a worst case stuck at 0 fails), at 0.1 fewer do
    cascade = table[["Clean (%)", "APGD-CE (%)", "APGD-DLR (%)", "Square (%)"]].to_numpy()
    assert (np.diff(cascade, axis=1) <= 1e-9).all()
    assert worst.tolist() == pytest.approx(table["Square (%)"].tolist())
    assert worst.iloc[0] > 0 and worst.iloc[1] < worst.iloc[0]
    assert main(["evaluate", "--model", str(saved_model), "--suite", "standard", "--attack", "pgd"]) == 2
    assert "--attack or --suite" in capsys.readouterr().err


def test_report_rewrites_the_page_and_compare_puts_two_runs_side_by_side(saved_model, tmp_path, capsys):
    runs = []
    for eps in ("0.01", "0.05"):
        out = tmp_path / f"run_{eps}"
        assert (
            main(
                [
                    "evaluate",
                    "--model",
                    str(saved_model),
                    "--n-per-class",
                    "10",
                    "--eps",
                    eps,
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        runs.append(out)
    (runs[0] / "report.html").unlink()
    assert main(["report", str(runs[0])]) == 0 and (runs[0] / "report.html").is_file()
    out = tmp_path / "compared"
    assert main(["compare", str(runs[0]), str(runs[1]), "--out", str(out)]) == 0
    capsys.readouterr()
    merged = pd.read_csv(out / "tables" / "evaluation.csv")
    a = pd.read_csv(runs[0] / "tables" / "evaluation.csv")
    b = pd.read_csv(runs[1] / "tables" / "evaluation.csv")
    assert list(merged.columns) == [
        "Epsilon (L-inf)",
        "Accuracy (%) [run_0.01]",
        "Loss [run_0.01]",
        "Accuracy (%) [run_0.05]",
        "Loss [run_0.05]",
    ]
    assert list(merged["Epsilon (L-inf)"]) == [0.0, 0.01, 0.05]  # the union of both runs' rows
    clean = merged.iloc[0]
    assert clean["Accuracy (%) [run_0.01]"] == a["Accuracy (%)"].iloc[0] == b["Accuracy (%)"].iloc[0]
    assert np.isnan(merged["Accuracy (%) [run_0.05]"].iloc[1])  # run B has no 0.01 row
    report = (out / "report.html").read_text()
    assert "Settings that differ" in report and "0.01" in report and "data:image/png;base64," in report
    assert main(["compare", str(runs[0]), str(tmp_path)]) == 2
    assert "no summary.json" in capsys.readouterr().err


def test_report_of_a_folder_that_is_not_a_results_folder_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "summary.json" in error


def test_the_report_command_does_not_load_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys; from robustmask.cli import compare, report; from robustmask.evaluation import html_report; "
        "print('tensorflow' in sys.modules)"
    )
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "False"
    )
