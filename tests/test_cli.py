"""The `robustmask` command: fast help, one-line errors, nothing overwritten."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import robustmask
from robustmask.cli.main import COMMANDS, build_parser, main
from robustmask.datasets import synthetic_face_masks

SUBCOMMANDS = [command.NAME for command in COMMANDS]


def run_cli(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "robustmask.cli.main", *args], capture_output=True, text=True, timeout=timeout
    )


def one_line(err: str) -> str:
    assert err.startswith("robustmask: error: ") and err.count("\n") == 1, err
    return err


def test_help_does_not_import_tensorflow():
    code = "import sys, robustmask.cli.main as m; m.build_parser(); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: robustmask {command}" in capsys.readouterr().out


def test_reproduce_refuses_to_overwrite_results(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "table4.csv").write_text("precious")
    assert main(["reproduce", "--out", str(out), "--no-progress"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("robustmask: error: output folder") and "--overwrite" in error
    assert len(error.splitlines()) == 1
    assert (out / "table4.csv").read_text() == "precious"


def test_attacks_lists_native_and_art_names(capsys):
    assert main(["attacks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = {line.split()[0] for line in lines if not line.startswith(" ")}
    assert {"fgsm", "bim", "pgd", "deepfool", "square"} <= names
    pgd = lines.index(next(line for line in lines if line.startswith("pgd ")))
    assert "Projected Gradient Descent" in lines[pgd] or "PGD" in lines[pgd]
    assert (
        "steps" in lines[pgd + 1] and "rel_stepsize" in lines[pgd + 1] and "eps" not in lines[pgd + 1].split()
    )


def test_missing_model_and_unknown_attack_are_one_line_errors(tmp_path, capsys, monkeypatch):
    import robustmask.reproduce

    studies = []
    monkeypatch.setattr(robustmask.reproduce, "run_study", lambda *args, **kwargs: studies.append(args))
    assert main(["evaluate", "--model", str(tmp_path / "nope.keras")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"robustmask: error: model not found: {tmp_path / 'nope.keras'}; check the path."
    )
    assert build_parser().parse_args(["attack", "--model", "m.keras", "--param", "steps=3"]).param == [
        "steps=3"
    ]
    # A misspelt attack: exit code 2, one line that suggests the close names (before any model loads).
    for command in (
        ["attack", "--model", str(tmp_path / "nope.keras")],
        ["evaluate", "--model", str(tmp_path / "nope.keras")],
        ["reproduce", "--out", str(tmp_path / "run"), "--no-progress"],
    ):
        assert main([*command, "--attack", "pgdd"]) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1
        assert error.startswith("robustmask: error: unknown attack 'pgdd' (did you mean ")
        assert "pgd" in error.partition("did you mean")[2].partition(")")[0]
    assert studies == [], "reproduce checks the attack name before the study starts"


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A small CNN trained briefly on 32 px synthetic faces, saved as .keras."""
    import keras

    from robustmask.datasets import synthetic_face_masks

    x, y = synthetic_face_masks(n_per_class=60, image_size=32, seed=1)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5, verbose=0)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return path


def test_evaluate_and_attack_on_a_saved_model(saved_model, tmp_path, capsys):
    csv = tmp_path / "table.csv"
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(saved_model),
                "--n-per-class",
                "20",
                "--eps",
                "0.01",
                "0.03",
                "--csv",
                str(csv),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Accuracy (%)" in out and csv.read_text().startswith("Epsilon (L-inf),Accuracy (%),Loss")
    save = tmp_path / "adv.npz"
    assert (
        main(
            [
                "attack",
                "--model",
                str(saved_model),
                "--n-per-class",
                "10",
                "--attack",
                "bim",
                "--param",
                "steps=3",
                "--eps",
                "0.02",
                "--save",
                str(save),
            ]
        )
        == 0
    )
    assert "BIM" in capsys.readouterr().out
    saved = np.load(save)
    assert saved["adversarial"].shape == (30, 32, 32, 3) and saved["adversarial"].max() <= 1.0
    # The saved file is never overwritten.
    assert main(["attack", "--model", str(saved_model), "--n-per-class", "10", "--save", str(save)]) == 2
    assert "exists" in capsys.readouterr().err


def test_class_names_select_synthetic_classes_for_two_class_models(tmp_path, capsys):
    import keras

    model = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")]
    )
    path = tmp_path / "binary.keras"
    model.save(path)
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(path),
                "--n-per-class",
                "10",
                "--eps",
                "0.01",
                "--class-names",
                "with_mask",
                "without_mask",
            ]
        )
        == 0
    )
    assert main(["evaluate", "--model", str(path), "--n-per-class", "10", "--class-names", "masked"]) == 2
    assert "synthetic classes are" in capsys.readouterr().err


class CountingNoise(robustmask.GradientAttack):
    """Random sign noise of size eps (unseeded), counting the runs."""

    runs = 0

    def __call__(self, *args, **kwargs):
        CountingNoise.runs += 1
        return super().__call__(*args, **kwargs)

    def run(self, model, x, y, eps):
        return x + eps * tf.sign(tf.random.uniform(tf.shape(x), -1.0, 1.0))


@pytest.mark.parametrize("eps", [["0.05"], ["0.02", "0.05"]])
def test_attack_save_keeps_the_reported_run_and_runs_once(saved_model, tmp_path, monkeypatch, capsys, eps):
    import robustmask.attacks as attacks
    from robustmask.attacks import perturbation_norms, registry

    monkeypatch.setattr(registry._REGISTRY, "registered", {})
    attacks.register("counting-noise", CountingNoise)
    reported = []
    real_report = attacks.attack_report
    monkeypatch.setattr(
        attacks, "attack_report", lambda *a, **k: reported.append(real_report(*a, **k)) or reported[-1]
    )
    CountingNoise.runs = 0
    save = tmp_path / "adv.npz"
    assert (
        main(
            [
                "attack",
                "--model",
                str(saved_model),
                "--n-per-class",
                "4",
                "--attack",
                "counting-noise",
                "--eps",
                *eps,
                "--save",
                str(save),
            ]
        )
        == 0
    )
    assert CountingNoise.runs == len(eps)  # once per eps, for the report; none more for --save
    table, images = reported[0]
    saved = np.load(save)["adversarial"]
    expected = images[0] if len(eps) == 1 else np.stack(images)
    np.testing.assert_array_equal(saved, expected)
    x, _ = synthetic_face_masks(n_per_class=4, image_size=32, seed=0)
    for i, adversarial in enumerate(saved if len(eps) > 1 else [saved]):
        norms = perturbation_norms(x, adversarial)
        assert table["L2 (mean)"].iloc[i] == pytest.approx(norms["L2"].mean(), rel=1e-6)


def test_defend_refuses_bad_names_and_parameters_before_training(tmp_path, capsys):
    out = tmp_path / "defend"
    assert main(["defend", "--defense", "nope", "--out", str(out)]) == 2
    assert "unknown defense 'nope'" in capsys.readouterr().err
    # multi-eps has no single budget: --eps must be refused, not silently ignored.
    assert main(["defend", "--defense", "multi-eps", "--eps", "0.1", "--out", str(out)]) == 2
    assert "multi-eps trains at a list of epsilons" in one_line(capsys.readouterr().err)
    assert main(["defend", "--defense", "pgd-at", "--param", "stepz=3", "--out", str(out)]) == 2
    assert "stepz" in capsys.readouterr().err
    assert not out.exists()
    # in Python, multi-eps takes its epsilons as a list, and a single number is refused the same way
    from robustmask.defenses.presets import robust_preset
    from robustmask.errors import RobustmaskError

    assert robust_preset("multi-eps", eps=[0.01, 0.02]).eps == [0.01, 0.02]
    with pytest.raises(RobustmaskError, match="not at one budget eps=0.1"):
        robust_preset("multi-eps", eps=0.1)


def test_defend_trains_compares_and_keeps_earlier_results(tmp_path):
    import pandas as pd

    out = tmp_path / "defend"
    args = [
        "defend",
        "--defense",
        "fast-at",
        "--epochs",
        "2",
        "--n-per-class",
        "25",
        "--image-size",
        "16",
        "--eps",
        "0.05",
        "--suite-param",
        "apgd_iter=5",
        "--suite-param",
        "square_queries=20",
        "--out",
        str(out),
    ]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    table = pd.read_csv(out / "tables" / "comparison.csv")
    assert list(table["Defense"].unique()) == ["undefended", "fast-at"]
    assert (out / "report.html").is_file() and (out / "figures" / "accuracy_vs_eps.png").is_file()
    assert len(table) == 8  # four budgets each: 0.009, 2/255, 4/255, 8/255
    attacks = ["FGSM (%)", "PGD (%)", "Square (%)", "APGD-CE (%)", "APGD-DLR (%)", "Square (suite) (%)"]
    assert set(attacks) | {"Worst case (%)"} <= set(table.columns)
    # one worst case per image over every attack, the suite included: never above any column
    assert (table["Worst case (%)"] <= table[attacks].min(axis=1) + 1e-9).all()
    # and never below the union bound: an image the worst case lost was lost to FGSM, PGD or Square
    # (each run on every clean image) or to the suite (a cascade: its last column is its own worst case)
    clean = table["Clean (%)"]
    lost = sum(
        clean - table[column] for column in ["FGSM (%)", "PGD (%)", "Square (%)", "Square (suite) (%)"]
    )
    assert (table["Worst case (%)"] >= clean - lost - 1e-9).all()
    assert (clean - lost > 0).any()  # where no attack fooled anything, a worst case of 0 fails
    assert (table["Worst case (%)"] <= table["Clean (%)"]).all()
    defended = tf.keras.models.load_model(out / "defended.keras")
    assert defended.input_shape[1:] == (16, 16, 3)
    assert not (tmp_path / ".defend.checkpoints").exists()  # removed once the results are in place
    before = (out / "tables" / "comparison.csv").read_bytes()
    second = run_cli(*args)
    assert second.returncode == 2 and "--overwrite" in second.stderr
    assert (out / "tables" / "comparison.csv").read_bytes() == before
