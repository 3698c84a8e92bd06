"""A streamed folder's batches are blocks of files, fixed by the listing: `stream_slice` reads some of
them without decoding the rest, a split is made on the files, and a sharded evaluation of a stream
(library and ``evaluate --stream --shard``) merges into exactly the one-process table."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from robustmask.datasets import load_face_mask_directory, write_synthetic_face_mask_directory
from robustmask.datasets import streaming
from robustmask.datasets.streaming import stream_face_mask_directory, stream_report, stream_slice
from robustmask.errors import RobustmaskError

SIZE = 12


@pytest.fixture(scope="module")
def dirty(tmp_path_factory):
    """7 faces a class at 12 px, with four bad files side by side in one class (a whole batch of 4
    unreadable files, wherever the blocks fall) and one more elsewhere."""
    root = write_synthetic_face_mask_directory(tmp_path_factory.mktemp("dirty"), 7, SIZE, seed=4)
    for i in range(4):
        (root / "with_mask" / f"zz_bad{i}.png").write_bytes(b"not an image")
    (root / "incorrect_mask" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 4)
    return root


def _batches(dataset):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [(x.numpy(), y.numpy()) for x, y in dataset]


def _counting_reads(monkeypatch) -> list[str]:
    reads: list[str] = []
    real = streaming._read_rgb
    monkeypatch.setattr(streaming, "_read_rgb", lambda path, size: (reads.append(path), real(path, size))[1])
    return reads


def test_a_batch_is_a_block_of_files_less_its_bad_ones(dirty):
    stream = stream_face_mask_directory(dirty, SIZE, 4)
    report = stream_report(stream)
    batches = _batches(stream)
    bad = {path for path, _ in report.skipped}
    blocks = [report.files[i : i + 4] for i in range(0, len(report.files), 4)]
    kept = [[f for f in block if f not in bad] for block in blocks]
    assert report.batches == len(blocks) == 7 and [] in kept  # one block is bad files only ...
    assert [len(y) for _, y in batches] == [len(k) for k in kept if k]  # ... and gives no batch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        memory = load_face_mask_directory(dirty, SIZE, split=0.0)
    by_path = dict(zip(memory.paths_train, memory.x_train))
    for (x, _), files in zip(batches, [k for k in kept if k]):
        np.testing.assert_array_equal(x, np.stack([by_path[f] for f in files]))


def test_a_slice_reads_only_its_own_files(dirty, monkeypatch):
    stream = stream_face_mask_directory(dirty, SIZE, 4)
    whole = _batches(stream)
    report = stream_report(stream)
    reads = _counting_reads(monkeypatch)
    kept_per_block = [
        [f for f in report.files[i : i + 4] if "bad" not in f and "broken" not in f]
        for i in range(0, len(report.files), 4)
    ]
    for start, stop in [(0, 2), (2, 5), (5, 7), (3, 3)]:
        reads.clear()
        part = _batches(stream_slice(stream, start, stop))
        assert sorted(reads) == sorted(report.files[start * 4 : stop * 4])  # nothing before or after
        first = sum(1 for k in kept_per_block[:start] if k)
        expected = whole[first : first + sum(1 for k in kept_per_block[start:stop] if k)]
        assert len(part) == len(expected)
        for (x, y), (wx, wy) in zip(part, expected):
            np.testing.assert_array_equal(x, wx)
            np.testing.assert_array_equal(y, wy)
    with pytest.raises(RobustmaskError, match=r"batches \[6, 8\) are not within the stream's 7"):
        stream_slice(stream, 6, 8)
    with pytest.raises(RobustmaskError, match="a shuffled stream has no fixed batches"):
        stream_slice(stream_face_mask_directory(dirty, SIZE, 4, shuffle=True), 0, 1)


def test_a_split_is_made_on_the_files_as_the_in_memory_loader_makes_it(tmp_path):
    root = write_synthetic_face_mask_directory(tmp_path, 10, SIZE, seed=5)
    memory = load_face_mask_directory(root, SIZE, split=0.3, seed=7)
    train = stream_report(stream_face_mask_directory(root, SIZE, 8, split=0.3, subset="train", seed=7))
    test = stream_report(stream_face_mask_directory(root, SIZE, 8, split=0.3, subset="test", seed=7))
    assert train.files == memory.paths_train and test.files == memory.paths_test  # same files, same order
    assert np.bincount(test.labels).tolist() == [3, 3, 3]
    everything = stream_report(stream_face_mask_directory(root, SIZE, 8, subset="train", seed=7)).files
    assert sorted(everything) == sorted(train.files + test.files) and everything != sorted(everything)
    with pytest.raises(RobustmaskError, match="split=0.3 needs subset='train' or subset='test'"):
        stream_face_mask_directory(root, SIZE, split=0.3)
    with pytest.raises(RobustmaskError, match="subset must be one of 'train', 'test'"):
        stream_face_mask_directory(root, SIZE, split=0.3, subset="validation")


# ---------------------------------------------------------------------------------------------- shards


@pytest.mark.parametrize("num_shards", [2, 3])
def test_merged_stream_shards_equal_one_streamed_process(
    dirty, tiny_model, tmp_path, num_shards, monkeypatch
):
    from robustmask.attacks import FGSM
    from robustmask.evaluation import Evaluator
    from robustmask.evaluation.shards import evaluate_shard, merge_shards

    evaluator = Evaluator(FGSM(), [0.02, 0.05], batch_size=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = evaluator.evaluate(tiny_model, stream_face_mask_directory(dirty, SIZE, 4))
        reads = _counting_reads(monkeypatch)
        for shard in range(num_shards):
            stream = stream_face_mask_directory(dirty, SIZE, 4)
            reads.clear()
            evaluate_shard(evaluator, tiny_model, stream, shard=shard, num_shards=num_shards, out=tmp_path)
            assert len(set(reads)) <= -(-7 // num_shards) * 4  # its own blocks' files only
            assert len(reads) == len(set(reads))
        merged = merge_shards(tmp_path)
    pd.testing.assert_frame_equal(merged, one, check_exact=True)
    assert merged.attrs["examples"] == 21  # 26 files less 5 bad ones


def test_shards_of_another_folder_are_refused(dirty, tiny_model, tmp_path):
    from robustmask.attacks import FGSM
    from robustmask.evaluation import Evaluator
    from robustmask.evaluation.shards import evaluate_shard, merge_shards

    # 26 files as `dirty` has, in 7 blocks of 4 too: only the files' names and labels differ
    other = write_synthetic_face_mask_directory(tmp_path / "other", 8, SIZE, seed=4)
    for i, png in enumerate(sorted((other / "with_mask").rglob("*.png"))[:2]):
        (other / "without_mask" / f"copy{i}.png").write_bytes(png.read_bytes())
    evaluator = Evaluator(FGSM(), [0.02], batch_size=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for shard, folder in enumerate([dirty, other]):
            stream = stream_face_mask_directory(folder, SIZE, 4)
            evaluate_shard(evaluator, tiny_model, stream, shard=shard, num_shards=2, out=tmp_path / "s")
    with pytest.raises(RobustmaskError, match="was made with other data"):
        merge_shards(tmp_path / "s")


# ---------------------------------------------------------------------------------------------- the command


def test_evaluate_stream_shards_merge_into_the_streamed_table(saved_model, face_folder, tmp_path, capsys):
    from robustmask.cli.main import main

    folder = face_folder(25)
    (folder / "with_mask" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    common = ["evaluate", "--model", saved_model, "--data", str(folder), "--no-progress", "--stream"]
    common += ["--attack", "fgsm", "--eps", "0.01", "8/255"]
    with pytest.warns(UserWarning, match=r"skipped 1 file\(s\)"):
        assert main([*common, "--csv", str(tmp_path / "one.csv")]) == 0
    capsys.readouterr()
    for shard in ("0/2", "1/2"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert main([*common, "--shard", shard, "--shard-out", str(tmp_path / "shards")]) == 0
        skipped = [str(w.message) for w in caught if "skipped 1 file" in str(w.message)]
        assert len(skipped) == (shard == "0/2")  # broken.png lies in the first shard's files only
        assert f"wrote shard {shard[0]} of 2" in capsys.readouterr().out
    assert main(["merge", str(tmp_path / "shards"), "--csv", str(tmp_path / "merged.csv")]) == 0
    one, merged = pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "merged.csv")
    pd.testing.assert_frame_equal(merged, one, check_exact=True)
