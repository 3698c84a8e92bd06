"""``evaluate --shard I/N --shard-out DIR`` in N processes, then ``merge``: the one-process table.

The library side (slicing, fingerprints, exact merges) is tested in test_shards.py; this checks the
command line end to end on a saved model and a folder, for an attack's sweep and for the suite.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest

from robustmask.cli.main import main
from robustmask.cli.shards import shard_value


@pytest.fixture(scope="module")
def model_and_folder(saved_model, face_folder):
    return saved_model, str(face_folder(50))  # 150 images: batches of 64, 64, 22, one a shard


@pytest.mark.parametrize(
    "job",
    [
        ["--attack", "pgd", "--param", "steps=3", "--param", "seed=0", "--eps", "0.01", "8/255"],
        ["--suite", "standard", "--param", "apgd_iter=2", "--param", "square_queries=3", "--eps", "8/255"],
    ],
    ids=["attack", "suite"],
)
def test_three_shards_merge_into_the_one_process_table(job, model_and_folder, tmp_path, capsys):
    model, folder = model_and_folder
    common = ["evaluate", "--model", model, "--data", folder, "--no-progress", *job]
    whole = tmp_path / "whole.csv"
    assert main([*common, "--csv", str(whole)]) == 0
    for i in range(3):
        assert main([*common, "--shard", f"{i}/3", "--shard-out", str(tmp_path / "shards")]) == 0
    merged = tmp_path / "merged.csv"
    assert main(["merge", str(tmp_path / "shards"), "--csv", str(merged)]) == 0
    one, joined = pd.read_csv(whole), pd.read_csv(merged)
    if "--suite" in job:  # APGD and Square draw from NumPy's global generator: equal up to their draws
        pd.testing.assert_frame_equal(one.iloc[:, :2], joined.iloc[:, :2])  # eps and clean accuracy
        assert np.all(joined["Worst case (%)"] <= joined["Clean (%)"])
    else:
        pd.testing.assert_frame_equal(one, joined)


def test_a_missing_shard_and_bad_flags_are_one_line_errors(model_and_folder, tmp_path, capsys):
    model, folder = model_and_folder
    common = ["evaluate", "--model", model, "--data", folder, "--attack", "fgsm", "--eps", "0.01"]
    assert main([*common, "--shard", "0/2", "--shard-out", str(tmp_path / "s")]) == 0
    capsys.readouterr()
    assert main(["merge", str(tmp_path / "s")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main([*common, "--shard", "1/2"]) == 2
    assert "--shard-out" in capsys.readouterr().err
    with pytest.raises(argparse.ArgumentTypeError, match="0 <= I < N"):
        shard_value("2/2")
