"""The suite's table over a batched dataset (a folder's stream): each batch one chunk, the images never
all in memory, and the table `robustness_table` gives on the same images in chunks of the batch size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from robustmask.attacks import FGSM, PGD
from robustmask.errors import DataError
from robustmask.evaluation import robustness_table, streamed_robustness_table
from robustmask.evaluation.attack_sets import AttackSet
from robustmask.evaluation.shards import RobustnessSpec, evaluate_shard, merge_shards

EPS = [0.01, 8 / 255]
BATCH = 16


def _attacks():
    return {"FGSM": FGSM(), "PGD": PGD(steps=3, seed=0)}


def _assert_same_table(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs["robust"] == b.attrs["robust"] and a.attrs["examples"] == b.attrs["examples"]
    assert a.attrs.get("gains") == b.attrs.get("gains")


@pytest.mark.parametrize("protocol", ["individual", "cascade"])
def test_the_streamed_table_is_the_in_memory_one_in_chunks_of_the_batch(face_model, face_data, protocol):
    _, (x, y) = face_data
    x, y = x[:45], y[:45]  # batches of 16, 16, 13
    stream = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
    streamed = streamed_robustness_table(face_model, stream, _attacks(), EPS, protocol=protocol)
    in_memory = robustness_table(face_model, (x, y), _attacks(), EPS, protocol=protocol, chunk_size=BATCH)
    _assert_same_table(streamed, in_memory)
    assert streamed.attrs["examples"] == 45 and all(len(m) == 45 for m in streamed.attrs["robust"].values())


def test_attack_sets_keep_one_worst_case(face_model, face_data):
    _, (x, y) = face_data
    x, y = x[:32], y[:32]
    sets = [AttackSet({"FGSM": FGSM()}), AttackSet({"PGD": PGD(steps=3, seed=0)}, "cascade", label="suite")]
    stream = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
    streamed = streamed_robustness_table(face_model, stream, sets, EPS)
    _assert_same_table(streamed, robustness_table(face_model, (x, y), sets, EPS, chunk_size=BATCH))
    assert np.all(streamed["Worst case (%)"] <= streamed[["FGSM (%)", "PGD (%)"]].min(axis=1) + 1e-9)


def test_a_spec_shards_a_stream_and_the_merge_is_the_one_process_table(face_model, face_data, tmp_path):
    _, (x, y) = face_data
    stream = tf.data.Dataset.from_tensor_slices((x[:45], y[:45])).batch(BATCH)
    spec = RobustnessSpec(_attacks(), EPS, protocol="cascade")
    for shard in range(2):  # batches [0, 1) and [1, 3)
        evaluate_shard(spec, face_model, stream, shard=shard, num_shards=2, out=tmp_path)
    _assert_same_table(merge_shards(tmp_path), spec.table(face_model, stream))


def test_an_empty_dataset_is_a_one_line_error(face_model, face_data):
    _, (x, y) = face_data
    empty = tf.data.Dataset.from_tensor_slices((x[:0], y[:0])).batch(BATCH)
    with pytest.raises(DataError, match="holds no image"):
        streamed_robustness_table(face_model, empty, _attacks(), EPS)
