"""The `robustmask` command: fast help, one-line errors, nothing overwritten."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from robustmask.cli.main import build_parser, main

SUBCOMMANDS = ["reproduce", "attack", "evaluate", "attacks", "seed-weights", "synthetic"]


def run_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "robustmask.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout)


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
    names = capsys.readouterr().out.split()
    assert {"fgsm", "bim", "pgd", "deepfool", "square"} <= set(names)


def test_missing_model_and_unknown_attack_are_one_line_errors(tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path / "nope.keras")]) == 2
    assert capsys.readouterr().err.strip() == f"robustmask: error: {tmp_path / 'nope.keras'}: no such model file"
    assert build_parser().parse_args(["attack", "--model", "m.keras", "--param", "steps=3"]).param == ["steps=3"]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A small CNN trained briefly on 32 px synthetic faces, saved as .keras."""
    import keras

    from robustmask.datasets import synthetic_face_masks

    x, y = synthetic_face_masks(n_per_class=60, image_size=32, seed=1)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((32, 32, 3)), keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5, verbose=0)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return path


def test_evaluate_and_attack_on_a_saved_model(saved_model, tmp_path, capsys):
    csv = tmp_path / "table.csv"
    assert main(["evaluate", "--model", str(saved_model), "--n", "20", "--eps", "0.01", "0.03", "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "Accuracy (%)" in out and csv.read_text().startswith("Epsilon,Accuracy (%),Loss")
    save = tmp_path / "adv.npz"
    assert main(["attack", "--model", str(saved_model), "--n", "10", "--attack", "bim", "--param", "steps=3",
                 "--eps", "0.02", "--save", str(save)]) == 0
    assert "BIM" in capsys.readouterr().out
    saved = np.load(save)
    assert saved["adversarial"].shape == (30, 32, 32, 3) and saved["adversarial"].max() <= 1.0
    # The saved file is never overwritten.
    assert main(["attack", "--model", str(saved_model), "--n", "10", "--save", str(save)]) == 2
    assert "exists" in capsys.readouterr().err


def test_class_names_select_synthetic_classes_for_two_class_models(tmp_path, capsys):
    import keras

    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
    path = tmp_path / "binary.keras"
    model.save(path)
    assert main(["evaluate", "--model", str(path), "--n", "10", "--eps", "0.01",
                 "--class-names", "with_mask", "without_mask"]) == 0
    assert main(["evaluate", "--model", str(path), "--n", "10", "--class-names", "masked"]) == 2
    assert "synthetic classes are" in capsys.readouterr().err
