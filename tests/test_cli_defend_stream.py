"""``defend --stream``: the training images are read from disk batch by batch, never loaded into
memory; the test images (--test-data, or a held-out share of --data's files) are."""

from __future__ import annotations

import json
import warnings

import pytest

from robustmask.cli.main import main
from robustmask.datasets import write_synthetic_face_mask_directory

SIZE = 16


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A training folder of 8 faces a class and a broken file, a test folder of 4 faces a class."""
    root = tmp_path_factory.mktemp("defend-stream")
    train = write_synthetic_face_mask_directory(root / "train", 8, SIZE, seed=1)
    (train / "without_mask" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 4)
    test = write_synthetic_face_mask_directory(root / "test", 4, SIZE, seed=2)
    return train, test


@pytest.fixture
def cheap_attacks(monkeypatch):
    """defend's FGSM / PGD / Square at a few steps and queries (the command's path unchanged)."""
    import robustmask.defenses.comparison as comparison
    import robustmask.evaluation.worst_case as worst_case

    real = worst_case.standard_attacks
    for module in (worst_case, comparison):
        monkeypatch.setattr(module, "standard_attacks", lambda **kw: real(pgd_steps=2, square_queries=10))


@pytest.fixture
def no_training_folder_in_memory(folders, monkeypatch):
    """Loading the training folder into memory fails the test; the test folder may be loaded."""
    from robustmask.datasets import source

    real = source.load_face_mask_directory

    def load(path, *args, **kwargs):
        assert str(path) != str(folders[0]), "the training folder was loaded into memory"
        return real(path, *args, **kwargs)

    monkeypatch.setattr(source, "load_face_mask_directory", load)


def _defend(train, tmp_path, *extra):
    out = tmp_path / "out"
    argv = ["defend", "--stream", "--data", str(train), "--image-size", str(SIZE), "--epochs", "1"]
    argv += ["--defense", "multi-eps", "--suite", "none", "--no-progress", "--out", str(out), *extra]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(argv)
    return code, out, [str(w.message) for w in caught]


def test_defend_trains_on_a_stream(folders, tmp_path, capsys, cheap_attacks, no_training_folder_in_memory):
    train, test = folders
    code, out, caught = _defend(train, tmp_path, "--test-data", str(test))
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["streamed"] is True
    assert (summary["train"], summary["test"]) == (24, 12)  # the broken file is not counted
    assert any("skipped 1 file(s)" in message and "broken.png" in message for message in caught)
    assert (out / "defended.keras").is_file() and (out / "undefended.keras").is_file()
    assert "data: 25 train files (streamed) / 12 test (" in capsys.readouterr().out


def test_defend_holds_out_a_share_of_the_streamed_files(
    folders, tmp_path, cheap_attacks, no_training_folder_in_memory
):
    train, _ = folders
    code, out, _ = _defend(train, tmp_path)
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    # 25 files: a quarter (the most defend holds out, for about 50 test images) is 2 files a class
    assert summary["test"] == 6 and summary["train"] == 25 - 6 - 1


def test_defend_stream_needs_a_folder(tmp_path, capsys):
    argv = ["defend", "--stream", "--epochs", "1", "--out", str(tmp_path / "out"), "--suite", "none"]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "--stream reads a folder: give --data DIR" in error and error.count("\n") == 1
