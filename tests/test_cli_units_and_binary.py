"""Units that cannot be confused (``--eps 8/255``; 8 refused) and binary models as first-class citizens.

Two tiny models trained on two classes of the synthetic faces (Dense(2, softmax) and a one-unit
sigmoid) go through ``evaluate --suite standard``, ``attack`` and ``defend``; the clean accuracy each
command reports must be the one ``model.evaluate`` gives.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import robustmask

from robustmask._validation import check_eps_units
from robustmask.cli.main import build_parser, main
from robustmask.cli.options import check_eps_options, one_line_warnings
from robustmask.datasets import (
    load_face_mask_directory,
    synthetic_face_masks,
    write_synthetic_face_mask_directory,
)
from robustmask.errors import AttackError, RobustmaskError
from robustmask.evaluation.sanity import check_below_chance

SIZE = 24
BINARY = ("with_mask", "without_mask")
MEANT = "did you mean 8/255 = 0.0314?"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two-class training and test folders and a three-class folder, of different seeds."""
    root = tmp_path_factory.mktemp("faces")
    write_synthetic_face_mask_directory(root / "train", 10, SIZE, seed=1, classes=BINARY)
    write_synthetic_face_mask_directory(root / "test", 10, SIZE, seed=2, classes=BINARY)
    write_synthetic_face_mask_directory(root / "three", 4, SIZE, seed=3)
    return root


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> saved path of a 2-class softmax and a one-unit sigmoid model, trained on 2 classes."""
    import keras

    x, y = synthetic_face_masks(60, SIZE, seed=0, classes=BINARY)
    root, paths = tmp_path_factory.mktemp("models"), {}
    for name, units, activation, loss in (
        ("softmax", 2, "softmax", "sparse_categorical_crossentropy"),
        ("sigmoid", 1, "sigmoid", "binary_crossentropy"),
    ):
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((SIZE, SIZE, 3)),
                keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
                keras.layers.Flatten(),
                keras.layers.Dense(units, activation=activation),
            ]
        )
        model.compile(keras.optimizers.Adam(3e-3), loss, metrics=["accuracy"])
        model.fit(x, y, epochs=20, batch_size=16, verbose=0)
        paths[name] = root / f"{name}.keras"
        model.save(paths[name])
    return paths


def keras_accuracy(path, folder) -> float:
    """model.evaluate's accuracy (%) on every image of `folder`, as the CLI loads them."""
    import keras

    data = load_face_mask_directory(folder, image_size=SIZE, split=0.0)
    model = keras.models.load_model(path)
    return 100 * model.evaluate(data.x_train, data.y_train, verbose=0)[1]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("robustmask: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------------------------------- units
EPS_COMMANDS = {
    "attack": ["attack", "--model", "m.keras"],
    "evaluate": ["evaluate", "--model", "m.keras"],
    "defend": ["defend", "--model", "m.keras"],
    "universal": ["universal", "--out", "u", "--model", "m.keras"],
    "scan": ["scan", "photo.jpg", "--out", "s"],
}


@pytest.mark.parametrize("command", EPS_COMMANDS)
def test_every_eps_option_takes_fractions(command):
    args = build_parser().parse_args([*EPS_COMMANDS[command], "--eps", "8/255"])
    assert np.ravel(args.eps)[0] == pytest.approx(8 / 255)


def test_an_eps_that_is_no_number_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["evaluate", "--model", "m.keras", "--eps", "8/x"])
    assert exit_info.value.code == 2 and "a fraction such as 8/255" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["attack", "evaluate", "defend", "universal"])
def test_an_linf_eps_above_one_is_refused_in_one_line(command, tmp_path, capsys):
    assert main([*EPS_COMMANDS[command], "--eps", "8"]) == 2
    assert f"--eps 8 is larger than the [0, 1] pixel range; {MEANT}" in one_error_line(capsys)
    # An L2 budget may exceed the pixel range.
    check_eps_options(build_parser().parse_args([*EPS_COMMANDS["evaluate"], "--norm", "2", "--eps", "8"]))


def test_the_python_api_refuses_eps_8_and_scales_the_limit_to_the_pixel_range():
    import keras

    from robustmask.attacks import PGD
    from robustmask.defenses import PGDAdversarialTrainer

    model = keras.Sequential(
        [keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(2, "softmax")]
    )
    x, y = np.full((2, 4, 4, 3), 0.5, np.float32), np.array([0, 1])
    with pytest.raises(
        AttackError, match="^" + re.escape(f"eps 8 is larger than the [0, 1] pixel range; {MEANT}") + "$"
    ):
        PGD(steps=1)(model, x, y, eps=8)
    with pytest.raises(RobustmaskError, match="eps 8 is larger"):
        PGDAdversarialTrainer(eps=8)
    with pytest.raises(RobustmaskError, match="eps 8 is larger"):  # the Evaluator calls generate directly
        robustmask.Evaluator(PGD(steps=1), [0.01, 8])
    with pytest.raises(AttackError, match=r"\[-1, 1\] pixel range; did you mean 8/255 of the range = 0.0627"):
        PGD(steps=1, clip=(-1, 1))(model, x, y, eps=8)
    assert PGD(steps=1, clip=(0, 255))(model, x * 255, y, eps=8).shape == x.shape  # 8 levels of 255
    check_eps_units(8, norm=PGD(norm=2).norm)  # an L2 budget of 8 is no units error


# ------------------------------------------------------------------------- binary models, end to end
@pytest.fixture
def fast_comparison(monkeypatch):
    """defend's FGSM / PGD / Square at a few steps and queries (the CLI path itself unchanged)."""
    import robustmask.defenses.comparison as comparison
    import robustmask.evaluation.worst_case as worst_case

    real = worst_case.standard_attacks
    for module in (worst_case, comparison):
        monkeypatch.setattr(module, "standard_attacks", lambda **kw: real(pgd_steps=2, square_queries=10))


@pytest.mark.parametrize("kind", ["softmax", "sigmoid"])
def test_clean_accuracy_of_evaluate_attack_and_defend_is_model_evaluate(
    kind, models, folders, tmp_path, capsys, fast_comparison
):
    path, train, test = str(models[kind]), str(folders / "train"), str(folders / "test")
    expected = keras_accuracy(path, test)
    assert expected > 70, f"the {kind} fixture did not learn ({expected:.1f}%)"
    csv = tmp_path / "suite.csv"
    suite = ["--suite", "standard", "--param", "apgd_iter=2", "--param", "square_queries=5"]
    common = ["--model", path, "--data", test, "--eps", "8/255"]
    assert main(["evaluate", *common, *suite, "--no-progress", "--csv", str(csv)]) == 0
    assert pd.read_csv(csv)["Clean (%)"].iloc[0] == pytest.approx(expected)

    save = tmp_path / "adv.npz"
    assert main(["attack", *common, "--save", str(save)]) == 0
    out = capsys.readouterr().out
    assert f"clean accuracy: {expected:.2f}%" in out and "classified correctly before the attack" in out
    saved = np.load(save)
    data = load_face_mask_directory(test, image_size=SIZE, split=0.0)
    assert np.allclose(saved["clean"], data.x_train) and (saved["labels"] == data.y_train).all()
    assert saved["adversarial"].shape == saved["clean"].shape

    out_dir = tmp_path / "defend"
    defend = ["defend", "--model", path, "--data", train, "--test-data", test, "--eps", "8/255"]
    assert (
        main(
            [
                *defend,
                "--defense",
                "fast-at",
                "--epochs",
                "1",
                "--param",
                "eps_ramp=0",
                "--suite",
                "none",
                "--out",
                str(out_dir),
            ]
        )
        == 0
    )
    table = pd.read_csv(out_dir / "tables" / "comparison.csv")
    assert table.loc[table["Defense"] == "undefended", "Clean (%)"].iloc[0] == pytest.approx(expected)
    assert "only 20 test images: one image is 5.0 points" in capsys.readouterr().out


def test_class_count_mismatch_names_the_flag_before_any_attack(models, folders, monkeypatch, capsys):
    import keras

    def no_sweep(*args, **kwargs):
        raise AssertionError("the sweep ran before the class check")

    monkeypatch.setattr("robustmask.cli.evaluate._suite_table", no_sweep)
    monkeypatch.setattr("robustmask.cli.evaluate._attack_table", no_sweep)
    monkeypatch.setattr("robustmask.cli.defend._compare", no_sweep)
    monkeypatch.setattr("robustmask.attacks.attack_report", no_sweep)
    two = str(models["softmax"])
    assert main(["evaluate", "--model", two, "--data", str(folders / "three"), "--suite", "standard"]) == 2
    err = one_error_line(capsys)
    assert "has 3 classes (incorrect_mask, with_mask, without_mask) but the model has 2 outputs" in err
    assert "pass --class-names with_mask without_mask" in err
    # the synthetic faces: 3 classes
    assert main(["attack", "--model", str(models["sigmoid"]), "--n-per-class", "2"]) == 2
    assert "the model has 2 classes (one sigmoid unit): pass --class-names" in one_error_line(capsys)

    three = folders / "three.keras"
    keras.Sequential(
        [keras.Input((SIZE, SIZE, 3)), keras.layers.Flatten(), keras.layers.Dense(3, "softmax")]
    ).save(three)
    assert (
        main(["evaluate", "--model", str(three), "--data", str(folders / "test"), "--suite", "standard"]) == 2
    )
    assert "has 2 classes (with_mask, without_mask) but the model has 3 outputs" in one_error_line(capsys)
    assert main(["defend", "--model", str(three), "--data", str(folders / "test"), "--out", "x"]) == 2
    assert "but the model has 3 outputs" in one_error_line(capsys)


def test_swapped_class_names_warn_that_accuracy_is_below_chance(models, folders):
    swapped = ["--class-names", "without_mask", "with_mask", "--eps", "0.01", "--no-progress"]
    with pytest.warns(RuntimeWarning, match="below-chance: the clean accuracy is .* below chance"):
        assert (
            main(["evaluate", "--model", str(models["softmax"]), "--data", str(folders / "test"), *swapped])
            == 0
        )
    assert check_below_chance(45.0, 2, 100) is None  # within sampling noise of chance
    assert check_below_chance(10.0, 3, 100).evidence["chance"] == pytest.approx(100 / 3)


def test_defend_warns_when_the_test_images_are_the_training_images(models, folders, capsys, fast_comparison):
    train = str(folders / "train")
    args = ["defend", "--model", str(models["softmax"]), "--data", train, "--test-data", train]
    assert (
        main(
            [
                *args,
                "--defense",
                "fast-at",
                "--epochs",
                "1",
                "--param",
                "eps_ramp=0",
                "--suite",
                "none",
                "--out",
                str(folders / "d"),
            ]
        )
        == 0
    )
    assert "--test-data is the --data folder" in capsys.readouterr().out


# ----------------------------------------------------------------------------- data and messages
def test_synthetic_faces_pick_classes_and_renumber_them():
    x, y = synthetic_face_masks(4, 16, seed=0)
    x2, y2 = synthetic_face_masks(4, 16, seed=0, classes=["without_mask", 1])
    assert (np.bincount(y2) == [4, 4]).all()
    assert np.array_equal(x2[y2 == 0], x[y == 2]) and np.array_equal(x2[y2 == 1], x[y == 1])
    with pytest.raises(RobustmaskError, match="'masked' is not a synthetic class"):
        synthetic_face_masks(4, 16, classes=["masked"])


def test_synthetic_command_writes_the_classes_asked_for(tmp_path, capsys):
    assert main(["synthetic", "--out", str(tmp_path / "s"), "--n-per-class", "2", "--image-size", "16",
                 "--classes", *BINARY]) == 0  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == list(BINARY)
    assert "wrote 4 images of with_mask, without_mask" in capsys.readouterr().out
    synthetic = build_parser()._subparsers._group_actions[0].choices["synthetic"]
    assert all(action.help for action in synthetic._actions), "every synthetic option has help text"


def test_a_wrong_param_names_the_attack_s_parameters(capsys):
    assert main(["attack", "--model", "m.keras", "--attack", "pgd", "--param", "stepz=3"]) == 2
    err = one_error_line(capsys)
    assert "pgd has no parameter 'stepz' (did you mean steps?); its parameters: steps, rel_stepsize" in err


def test_warnings_are_one_line_without_a_source_path(models, folders, tmp_path):
    with one_line_warnings():
        shown = warnings.formatwarning("skipped 1 file(s)\n  under x", UserWarning, "/src/x.py", 3)
    assert shown == "robustmask: warning: skipped 1 file(s) under x\n"
    data = tmp_path / "data"
    write_synthetic_face_mask_directory(data, 2, SIZE, seed=4, classes=BINARY)
    (data / "with_mask" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    args = ["attack", "--model", str(models["softmax"]), "--data", str(data), "--eps", "8/255"]
    run = subprocess.run([sys.executable, "-m", "robustmask.cli.main", *args], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [line for line in run.stderr.splitlines() if "skipped" in line]
    assert len(lines) == 1 and lines[0].startswith("robustmask: warning: skipped 1 file(s)"), run.stderr
    assert ".py:" not in run.stderr.split("robustmask: warning:")[1].split("\n")[0]
