"""``evaluate --stream``: an attack's sweep over a folder read batch by batch, the in-memory table.

The library side (the stream's files and pixels equal the in-memory loader's) is tested in
test_streaming.py; this checks the command line on a saved model and a small folder with a bad file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import CLI_SIZE
from robustmask.cli.main import main
from robustmask.datasets import write_synthetic_face_mask_directory


@pytest.fixture(scope="module")
def model_and_folder(saved_model, face_folder):
    # 3 x 25 images: two full batches of 64 would hide a last-batch difference, so 75 (64 + 11)
    folder = face_folder(25)
    (folder / "with_mask" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    return saved_model, str(folder)


def test_the_streamed_table_is_the_in_memory_one(model_and_folder, tmp_path, capsys):
    model, folder = model_and_folder
    common = ["evaluate", "--model", model, "--data", folder, "--no-progress", "--attack", "fgsm"]
    common += ["--eps", "0.01", "8/255"]
    outputs, tables = [], []
    for i, stream in enumerate([[], ["--stream"]]):
        csv = tmp_path / f"{i}.csv"
        with pytest.warns(UserWarning, match=r"skipped 1 file\(s\) under .*broken\.png"):
            assert main([*common, *stream, "--csv", str(csv)]) == 0
        outputs.append(capsys.readouterr().out)
        tables.append(pd.read_csv(csv))
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert outputs[0] == outputs[1]
    assert ": 75 images" in outputs[1]  # the bad file is not counted


def test_the_class_count_is_checked_before_any_attack(model_and_folder, tmp_path, capsys, monkeypatch):
    from robustmask.evaluation import Evaluator

    model, _ = model_and_folder
    two = write_synthetic_face_mask_directory(
        tmp_path / "two", 3, CLI_SIZE, classes=["with_mask", "without_mask"]
    )

    def no_sweep(*args, **kwargs):
        raise AssertionError("the sweep ran")

    monkeypatch.setattr(Evaluator, "evaluate", no_sweep)
    assert main(["evaluate", "--model", model, "--data", str(two), "--stream", "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "has 2 classes" in error and "the model has 3 outputs" in error and "--class-names" in error


def test_the_streamed_suite_is_the_in_memory_one(model_and_folder, face_folder, tmp_path, capsys):
    """No bad file here: the stream's batches of 64 files are then the in-memory path's 64-image chunks."""
    model, _ = model_and_folder
    folder = str(face_folder(30))  # 90 images: chunks of 64 and 26
    common = ["evaluate", "--model", model, "--data", folder, "--no-progress", "--suite", "standard"]
    common += ["--param", "apgd_iter=2", "--param", "square_queries=3", "--eps", "8/255"]
    tables = []
    for i, stream in enumerate([[], ["--stream"]]):
        np.random.seed(0)  # ART's APGD and Square draw from NumPy's global generator
        assert main([*common, *stream, "--csv", str(tmp_path / f"{i}.csv")]) == 0
        tables.append(pd.read_csv(tmp_path / f"{i}.csv"))
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert ": 90 images" in capsys.readouterr().out


def test_stream_without_a_folder_is_a_one_line_error(model_and_folder, capsys):
    model, _ = model_and_folder
    assert main(["evaluate", "--model", model, "--stream", "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "--stream reads a folder: give --data DIR" in error and error.count("\n") == 1, error
