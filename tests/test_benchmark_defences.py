"""benchmarks/defences.py: the standard suite at full strength in the comparison, and the targets judged
on the one worst case. No training here: the comparison itself is replaced by a recorded table."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import load_benchmark

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "defences.py"


@pytest.fixture
def bench():
    return load_benchmark("defences.py", "bench_defences")


def comparison(pgd_at_worst_8: float) -> pd.DataFrame:
    """undefended and pgd-at at 0.009 and 8/255; pgd-at's PGD 57.1% at 8/255, its worst case given."""
    table = pd.DataFrame(
        {
            "Defense": ["undefended", "undefended", "pgd-at", "pgd-at"],
            "Train time (s)": [147.3, 147.3, 275.9, 275.9],
            "Epsilon": [0.009, 8 / 255, 0.009, 8 / 255],
            "Clean (%)": [90.0, 90.0, 87.2, 87.2],
            "FGSM (%)": [45.0, 13.9, 84.4, 73.3],
            "PGD (%)": [30.6, 0.0, 84.4, 57.1],
            "APGD-CE (%)": [25.0, 0.0, 84.0, pgd_at_worst_8],
            "Worst case (%)": [25.0, 0.0, 84.0, pgd_at_worst_8],
        }
    )
    table.attrs["attacks"] = {
        "FGSM": "FGSM",
        "PGD": "PGD-20 (3 restarts)",
        "APGD-CE": "APGD-CE (100 iterations)",
    }
    return table


def test_the_targets_are_judged_on_the_worst_case_over_every_attack(bench):
    judged = bench.judge_targets(comparison(pgd_at_worst_8=46.8)).set_index("Target")["pgd-at"]
    assert judged["clean within 5 points of undefended"] == "met: 87.2% (-2.8)"
    assert judged["worst case >= 60% at eps 0.009"] == "met: 84.0%"
    assert judged["worst case >= 40% at 8/255"] == "met: 46.8%"  # on the worst case, not PGD's 57.1%
    assert judged["PGD at most 3 points above the worst case"] == "missed by 7.3: largest lead 10.3"
    assert judged["FGSM never weaker than PGD"] == "met: never above"
    low = bench.judge_targets(comparison(pgd_at_worst_8=36.7)).set_index("Target")["pgd-at"]
    assert low["worst case >= 40% at 8/255"] == "missed by 3.3: 36.7%"


def _fake_run(bench, monkeypatch, tmp_path):
    """The benchmark with its training and attacks replaced: each model's rows come from `comparison`."""
    calls = {"attacked": [], "trained": []}

    def fake_rows(name, model, seconds, test_data, sets, eps, progress=False):
        calls["attacked"].append(name)
        calls["sets"] = sets
        rows = comparison(46.8)
        rows = rows[rows["Defense"] == (name if name == "undefended" else "pgd-at")].reset_index(drop=True)
        rows["Defense"] = name
        rows.attrs = {"attacks": comparison(46.8).attrs["attacks"], "robust": {name: ()}}
        rows.attrs["seconds"] = {"FGSM": 1.0, "PGD": 2.0, "APGD-CE": 3.5}
        return rows

    class FakePreset:
        def __init__(self, name):
            self.name = name

        def fit(self, model, data, verbose=0):
            calls["trained"].append(self.name)
            return model, None

    model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(3)])
    data = (np.zeros((6, 4, 4, 3)), np.zeros((3, 4, 4, 3)), np.array([0, 1, 2] * 2), np.array([0, 1, 2]))
    monkeypatch.setattr(bench, "model_rows", fake_rows)
    monkeypatch.setattr(bench, "train_undefended", lambda *args, **kwargs: model)
    monkeypatch.setattr(bench, "robust_preset", lambda name, **kwargs: FakePreset(name))
    monkeypatch.setattr(bench, "robust_data", lambda *args, **kwargs: data)
    return calls


def test_the_benchmark_runs_the_full_suite_and_writes_table_and_targets(bench, tmp_path, monkeypatch):
    doc = tmp_path / "defences.md"
    doc.write_text(
        f"intro\n{bench.BEGIN}\nold table\n{bench.END}\nmiddle\n{bench.TARGETS_BEGIN}\nold\n{bench.TARGETS_END}\n"
    )
    calls = _fake_run(bench, monkeypatch, tmp_path)
    monkeypatch.setattr(bench, "DOC", doc)
    assert bench.main(["--defenses", "pgd-at", "--out", str(tmp_path / "run")]) == 0
    individual, suite = (s.attacks for s in calls["sets"])
    assert list(suite) == ["APGD-CE", "APGD-DLR", "Square"]  # AutoAttack's, at full strength
    assert suite["APGD-CE"].steps == 100 and suite["Square"].steps == 5000
    assert list(individual) == ["FGSM", "PGD", "Square"] and calls["trained"] == ["pgd-at"]
    written = doc.read_text()
    assert "| pgd-at | 275.9 | 8/255 | 87.2 | 73.3 | 57.1 | 46.8 | 46.8 |" in written
    assert "| worst case >= 40% at 8/255 | met: 46.8% |" in written
    assert "Judged on the worst case over FGSM, PGD-20 (3 restarts), APGD-CE (100 iterations)." in written
    assert "old" not in written and written.startswith("intro\n") and "\nmiddle\n" in written
    # every model's training and attack seconds: 147.3 + 6.5 (undefended) + 275.9 + 6.5 (pgd-at)
    assert "48 px, 30 epochs; training and attacks 436 s on this machine" in written


def test_a_run_started_again_goes_on_with_the_models_still_to_do(bench, tmp_path, monkeypatch, capsys):
    calls = _fake_run(bench, monkeypatch, tmp_path)
    run = ["--out", str(tmp_path / "run"), "--no-write"]
    assert bench.main(["--defenses", "pgd-at", *run]) == 0
    assert calls["attacked"] == ["undefended", "pgd-at"] and calls["trained"] == ["pgd-at"]
    capsys.readouterr()
    assert bench.main(["--defenses", "pgd-at", "trades", *run]) == 0  # only trades is new
    # the reused models' seconds count: undefended 153.8, pgd-at and trades 282.4 each
    assert "training and attacks 719 s" in capsys.readouterr().out
    assert calls["attacked"] == ["undefended", "pgd-at", "trades"] and calls["trained"] == [
        "pgd-at",
        "trades",
    ]
    assert (tmp_path / "run" / "undefended.keras").is_file()
    with pytest.raises(SystemExit, match="other settings"):
        bench.main(["--defenses", "pgd-at", "--epochs", "3", *run])


def test_append_merges_into_a_table_written_with_the_old_defence_column(bench):
    documented = "| Defence | Clean (%) |\n|---|---|\n| undefended | 90.0 |\n| trades | 80.0 |\n"
    measured = "| Defense | Clean (%) |\n|---|---|\n| undefended | 90.0 |\n| pgd-at | 85.0 |\n"
    merged = bench.merge_rows(documented, measured, ["pgd-at"])
    assert merged.splitlines() == [
        "| Defense | Clean (%) |",
        "|---|---|",
        "| undefended | 90.0 |",
        "| trades | 80.0 |",
        "| pgd-at | 85.0 |",
    ]
    with pytest.raises(SystemExit, match="other columns"):
        bench.merge_rows(documented.replace("Clean", "Robust"), measured, ["pgd-at"])


def test_the_old_defences_flag_still_works_and_warns(bench, capsys):
    assert bench._parser().parse_args(["--defences", "trades"]).defenses == ["trades"]
    assert "--defences is deprecated; use --defenses" in capsys.readouterr().err
