"""Nothing is overwritten without --overwrite; with it, a results folder is replaced as a whole.

Every command that writes files refuses an existing one (exit code 2, one line, the old bytes kept)
before it spends any time; `reproduce --overwrite` leaves nothing of an earlier run and a crash
leaves the earlier results as they were.
"""

from __future__ import annotations

import types

import keras
import numpy as np
import pytest

import robustmask.reproduce as reproduce
from robustmask._io import replaced_folder, swap_in_folder
from robustmask.cli.main import main
from robustmask.errors import RobustmaskError

SIZE = 16


def tiny_classifier(num_classes: int = 3, size: int = SIZE):
    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    tiny_classifier().save(path)
    return path


class StubTrainer:
    """Stands in for Algorithm 2 (tested in its own files): the 'defended' model is the model."""

    labels = "predicted"

    def __init__(self, *args, **kwargs):
        pass

    def fit(self, model, data, **kwargs):
        return model, types.SimpleNamespace(history={"loss": [0.5]})


@pytest.fixture
def fast_study(monkeypatch):
    """`robustmask reproduce` on a tiny CNN and 16 px faces, in seconds; counts the studies started."""
    started = []

    def build(config, num_classes, chosen):
        started.append(config)
        return tiny_classifier(num_classes, config.image_size)

    monkeypatch.setattr(reproduce, "_build_model", build)
    # The study's stage beyond the paper trains its own models: not what these tests are about.
    monkeypatch.setattr(
        reproduce, "_robust_comparison", lambda config, log, progress=False: None, raising=False
    )
    monkeypatch.setattr("robustmask.defenses.MultiEpsilonAdversarialTrainer", StubTrainer)
    return started


def reproduce_args(out, *extra):
    return [
        "reproduce",
        "--out",
        str(out),
        "--no-progress",
        "--weights",
        "none",
        "--image-size",
        str(SIZE),
        "--epochs",
        "1",
        "--n-per-class",
        "30",
        "--defense-epochs",
        "1",
        *extra,
    ]


def test_reproduce_overwrite_replaces_the_folder_as_a_whole(tmp_path, fast_study, capsys):
    out = tmp_path / "run"
    assert main(reproduce_args(out)) == 0
    first = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert (out / "tables" / "table4.csv").is_file() and (out / "summary.json").is_file()
    # What an earlier run with other epsilons (or another version) left behind.
    (out / "reports" / "table4" / "eps_0.5000.csv").write_text("stale")
    (out / "notes_from_an_older_version.txt").write_text("stale")
    assert main(reproduce_args(out, "--overwrite")) == 0
    assert not (out / "reports" / "table4" / "eps_0.5000.csv").exists()
    assert not (out / "notes_from_an_older_version.txt").exists()
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"], "no staging or old folder is left beside it"
    assert len(fast_study) == 2


def test_a_crash_while_writing_leaves_the_earlier_results_intact(tmp_path, fast_study, monkeypatch):
    out = tmp_path / "run"
    assert main(reproduce_args(out)) == 0
    for written_first in ("tables/table4.csv", "reports/table4/eps_0.0000.csv"):  # unlike what a rerun writes
        (out / written_first).write_text("an earlier run's results")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def crash(folder, results):
        raise RuntimeError("disk full")

    # halfway through writing the outputs: after the tables and figures, before the models
    monkeypatch.setattr("robustmask._study_report._files", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        main(reproduce_args(out, "--overwrite"))
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# ---------------------------------------------------------------------------------------------- every writer
def existing_csv(tmp_path, model_file):
    target = tmp_path / "table.csv"
    return target, [
        "evaluate",
        "--model",
        str(model_file),
        "--n-per-class",
        "2",
        "--eps",
        "0.01",
        "--csv",
        str(target),
    ]


def existing_npz(tmp_path, model_file):
    target = tmp_path / "adv.npz"
    return target, [
        "attack",
        "--model",
        str(model_file),
        "--n-per-class",
        "2",
        "--eps",
        "0.01",
        "--save",
        str(target),
    ]


def existing_results(tmp_path, model_file):
    target = tmp_path / "run" / "tables" / "table4.csv"
    return target, reproduce_args(tmp_path / "run")


def existing_synthetic(tmp_path, model_file):
    target = tmp_path / "faces" / "with_mask" / "img_00001.png"  # an earlier write's image
    return target, ["synthetic", "--out", str(tmp_path / "faces"), "--n-per-class", "2", "--image-size", "16"]


def existing_weights(tmp_path, model_file):
    target = tmp_path / "cache" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    return target, ["seed-weights", "--cache-dir", str(tmp_path / "cache")]


WRITERS = {
    "evaluate --csv": existing_csv,
    "attack --save": existing_npz,
    "reproduce": existing_results,
    "synthetic": existing_synthetic,
    "seed-weights": existing_weights,
}


@pytest.mark.parametrize("writer", WRITERS.values(), ids=WRITERS.keys())
def test_every_writer_refuses_an_existing_file_without_overwrite(
    writer, tmp_path, model_file, fast_study, capsys
):
    target, argv = writer(tmp_path, model_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    old = b"results of an earlier run \x00\x01"
    target.write_bytes(old)
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("robustmask: error: ")
    assert "overwrite" in error
    assert target.read_bytes() == old
    assert fast_study == [], "the refusal comes before any work"


@pytest.mark.parametrize("writer", [existing_csv, existing_npz], ids=["evaluate --csv", "attack --save"])
def test_overwrite_replaces_the_file(writer, tmp_path, model_file, capsys):
    target, argv = writer(tmp_path, model_file)
    target.write_bytes(b"old")
    assert main([*argv, "--overwrite"]) == 0
    assert target.read_bytes() != b"old"
    if target.suffix == ".npz":
        assert np.load(target)["adversarial"].shape == (6, SIZE, SIZE, 3)
    else:
        assert target.read_text().startswith("Epsilon (L-inf),Accuracy (%),Loss")


# ---------------------------------------------------------------------------------------------- the folder swap
def test_replaced_folder_swaps_whole_and_cleans_up_on_error(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    with pytest.raises(ValueError, match="boom"):
        with replaced_folder(out, overwrite=True) as folder:
            (folder / "new.txt").write_text("new")
            raise ValueError("boom")
    assert [p.name for p in out.iterdir()] == ["stale.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with replaced_folder(out, overwrite=True) as folder:
        assert folder.parent == tmp_path and folder.name.startswith(".out.")
        (folder / "new.txt").write_text("new")
    assert [p.name for p in out.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_swap_refuses_a_folder_that_filled_up_meanwhile(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RobustmaskError, match="nothing was overwritten: the new results are in"):
        with replaced_folder(out, overwrite=False) as folder:
            (folder / "new.txt").write_text("new")
            out.mkdir()
            (out / "theirs.txt").write_text("another run's")
    assert (out / "theirs.txt").read_text() == "another run's"
    kept = [p for p in tmp_path.iterdir() if p.name != "out"]
    assert len(kept) == 1 and (kept[0] / "new.txt").read_text() == "new"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert swap_in_folder(kept[0], empty, overwrite=False) == empty  # an empty folder holds nothing to lose
    assert (empty / "new.txt").read_text() == "new"


def test_run_study_leaves_the_callers_config_as_it_was(tmp_path, fast_study):
    import copy

    from robustmask.reproduce import StudyConfig, run_study

    # No weights: the quick preset takes the small CNN at 48 px, on its own copy of the settings.
    config = StudyConfig.quick(
        weights="none", image_size=96, epochs=12, n_per_class=20, defense_epochs=1, robust=False
    )
    before = copy.deepcopy(config)
    summary = run_study(config, tmp_path / "run", progress=False, log=lambda *_: None)
    assert config == before
    assert summary["settings"]["image_size"] == 48 and summary["settings"]["architecture"] == "cnn"
    assert any("small face-mask CNN" in note for note in summary["notes"])
