"""Sharded evaluation: shards merged give exactly the one-process table (issue 19, item 2)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from robustmask.attacks import FGSM, PGD
from robustmask.attacks.base import Attack
from robustmask.attacks.gradient_attack import GradientAttack
from robustmask.errors import RobustmaskError
from robustmask.evaluation import Evaluator
from robustmask.evaluation.attack_sets import AttackSet
from robustmask.evaluation.shards import RobustnessSpec, evaluate_shard, merge_shards, shard_bounds

EPSILONS = [0.02, 0.05, 0.1]


class EveryOtherInItsBatch(Attack):
    """Any attack whose per-image result depends on the image's position in its batch (as a seeded
    random start does), made certain: it blanks the images at even positions of each batch. One-process
    and sharded results agree only if the shards run the same batches."""

    def generate(self, model, x, y, epsilons):
        odd = tf.reshape(tf.math.floormod(tf.range(tf.shape(x)[0]), 2) == 1, [-1, 1, 1, 1])
        blanked = tf.where(odd, x, tf.zeros_like(x))
        return tf.repeat(blanked[None], tf.size(epsilons), axis=0)


def _run(job, model, data, num_shards, folder):
    for i in range(num_shards):
        evaluate_shard(job, model, data, shard=i, num_shards=num_shards, out=folder)
    return merge_shards([folder])


def _same_attrs(merged, whole):
    # every attr equal; seconds are each shard's own time, summed: only their names must agree
    assert set(merged.attrs) == set(whole.attrs)
    for key, value in whole.attrs.items():
        if key == "seconds":
            assert merged.attrs[key].keys() == value.keys()
        else:
            assert merged.attrs[key] == value, key


def test_shard_bounds_are_contiguous_and_cover_everything():
    for units in (1, 4, 7, 10):
        for n in range(1, units + 1):
            bounds = [shard_bounds(units, i, n) for i in range(n)]
            assert bounds[0][0] == 0 and bounds[-1][1] == units
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1


@pytest.mark.parametrize(
    "attack", [FGSM(), PGD(steps=3, seed=0), EveryOtherInItsBatch()], ids=["FGSM", "PGD-seeded", "positional"]
)
@pytest.mark.parametrize("num_shards", [2, 3])
def test_evaluator_shards_merge_to_the_one_process_table(tiny_model, tiny_data, tmp_path, attack, num_shards):
    x, y = tiny_data[0][:40], tiny_data[1][:40]  # 40 images, batches of 12: 12, 12, 12, 4
    evaluator = Evaluator(attack, EPSILONS, batch_size=12)
    whole = evaluator.evaluate(tiny_model, (x, y))
    merged = _run(evaluator, tiny_model, (x, y), num_shards, tmp_path)
    pd.testing.assert_frame_equal(merged, whole, check_exact=True)
    _same_attrs(merged, whole)
    assert whole["Accuracy (%)"].iloc[-1] < whole["Accuracy (%)"].iloc[0]  # the attack did something


def test_evaluator_shards_of_a_batched_dataset(tiny_model, tiny_data, tmp_path):
    x, y = tiny_data[0][:40], tiny_data[1][:40]
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(12)
    evaluator = Evaluator(PGD(steps=3, seed=0), EPSILONS, labels="predicted")  # the batches are the units
    merged = _run(evaluator, tiny_model, data, 3, tmp_path)
    pd.testing.assert_frame_equal(merged, evaluator.evaluate(tiny_model, data), check_exact=True)


class ItsOwnSize(GradientAttack):
    """An attack that chooses its own perturbation size (as DeepFool does), another for each image."""

    eps_bounded = False

    def run(self, model, x, y, eps):
        size = 0.05 + 0.3 * tf.reduce_max(x[..., :1], axis=[1, 2, 3], keepdims=True)  # by class
        return x + size * tf.sign(self.gradient(model, x, y))


def test_shards_of_an_attack_that_measures_its_own_size(tiny_model, tiny_data, tmp_path):
    """Its eps is measured: the merged row's Epsilon is the mean size over every shard's images."""
    x, y = tiny_data[0][:40], tiny_data[1][:40]
    evaluator = Evaluator(ItsOwnSize(), batch_size=12)
    whole = evaluator.evaluate(tiny_model, (x, y))
    merged = _run(evaluator, tiny_model, (x, y), 3, tmp_path)
    pd.testing.assert_frame_equal(merged, whole, check_exact=True)
    _same_attrs(merged, whole)
    assert merged.attrs["measured_epsilon"]
    sizes = np.abs(ItsOwnSize()(tiny_model, x, y) - x).reshape(len(x), -1).max(axis=1)
    assert merged["Epsilon"].iloc[1] == pytest.approx(sizes.mean(), rel=1e-5)
    first_shard = np.abs(ItsOwnSize()(tiny_model, x[:12], y[:12]) - x[:12]).reshape(12, -1).max(axis=1)
    assert abs(first_shard.mean() - sizes.mean()) > 1e-2  # one shard's mean would not do


@pytest.mark.parametrize("protocol", ["individual", "cascade"])
def test_robustness_shards_merge_to_the_one_process_table(tiny_model, tiny_data, tmp_path, protocol):
    x, y = tiny_data[0][:40], tiny_data[1][:40]
    attacks = {"FGSM": FGSM(), "PGD": PGD(steps=3, seed=0), "positional": EveryOtherInItsBatch()}
    spec = RobustnessSpec(attacks, EPSILONS, protocol, chunk_size=12)
    whole = spec.table(tiny_model, (x, y))
    for num_shards in (2, 3):
        merged = _run(spec, tiny_model, (x, y), num_shards, tmp_path / str(num_shards))
        pd.testing.assert_frame_equal(merged, whole, check_exact=True)
        _same_attrs(merged, whole)
    worst = whole["Worst case (%)"]
    assert (worst > 0).any() and (worst < whole["Clean (%)"]).any()  # a worst case worth comparing


def test_two_attack_sets_keep_one_worst_case(tiny_model, tiny_data, tmp_path):
    x, y = tiny_data[0][:30], tiny_data[1][:30]
    cascade = {"PGD": PGD(steps=3, seed=0), "positional": EveryOtherInItsBatch()}
    sets = [
        AttackSet({"FGSM": FGSM(), "positional": EveryOtherInItsBatch()}),
        AttackSet(cascade, "cascade", "suite"),
    ]
    spec = RobustnessSpec(sets, [0.05], chunk_size=8)
    whole = spec.table(tiny_model, (x, y))
    merged = _run(spec, tiny_model, (x, y), 3, tmp_path)
    pd.testing.assert_frame_equal(merged, whole, check_exact=True)
    _same_attrs(merged, whole)


def test_a_seeded_random_start_depends_on_the_position_in_the_batch(tiny_model, tiny_data):
    """Why shards take whole batches: PGD(seed=0) gives an image another start one position later."""
    x, y = tiny_data
    pgd = PGD(steps=1, seed=0)
    first = pgd(tiny_model, x[1:13], y[1:13], eps=0.05)[0]
    shifted = pgd(tiny_model, x[0:12], y[0:12], eps=0.05)[1]
    assert not np.array_equal(first, shifted)


def test_mismatched_shards_are_refused_in_one_line(tiny_model, tiny_data, tmp_path):
    x, y = tiny_data[0][:40], tiny_data[1][:40]
    evaluate_shard(
        Evaluator(FGSM(), EPSILONS, batch_size=12), tiny_model, (x, y), shard=0, num_shards=2, out=tmp_path
    )
    other = evaluate_shard(
        Evaluator(FGSM(), [0.02, 0.2], batch_size=12),
        tiny_model,
        (x, y),
        shard=1,
        num_shards=2,
        out=tmp_path / "b",
    )
    with pytest.raises(RobustmaskError, match=r"other epsilons than .*rerun every shard") as err:
        merge_shards([tmp_path, other])
    assert "\n" not in str(err.value)
    # another model (same architecture, other weights) is refused too
    import keras

    changed = keras.models.clone_model(tiny_model)
    changed.set_weights([w + 1e-3 for w in tiny_model.get_weights()])
    evaluate_shard(
        Evaluator(FGSM(), EPSILONS, batch_size=12), changed, (x, y), shard=1, num_shards=2, out=tmp_path / "c"
    )
    with pytest.raises(RobustmaskError, match="other model than"):
        merge_shards([tmp_path, tmp_path / "c"])


def test_a_missing_shard_is_named(tiny_model, tiny_data, tmp_path):
    x, y = tiny_data[0][:40], tiny_data[1][:40]
    evaluator = Evaluator(FGSM(), EPSILONS, batch_size=12)
    for i in (0, 2):
        evaluate_shard(evaluator, tiny_model, (x, y), shard=i, num_shards=3, out=tmp_path)
    with pytest.raises(
        RobustmaskError, match=r"shard\(s\) 1 of 3 missing \(shard-001-of-003\.npz\).*shard=1"
    ):
        merge_shards(tmp_path)
    with pytest.raises(RobustmaskError, match="given twice"):
        merge_shards([tmp_path, tmp_path / "shard-000-of-003.npz"])
    with pytest.raises(RobustmaskError, match="at most 4 shards"):
        evaluate_shard(evaluator, tiny_model, (x, y), shard=0, num_shards=5, out=tmp_path)
    with pytest.raises(RobustmaskError, match="chunk_size must be a positive integer"):
        RobustnessSpec({"FGSM": FGSM()}, EPSILONS, chunk_size=0).table(tiny_model, (x, y))
    with pytest.raises(RobustmaskError, match="shard must be 0..2"):
        evaluate_shard(evaluator, tiny_model, (x, y), shard=3, num_shards=3, out=tmp_path)


def test_the_specs_table_shows_its_progress_bar_as_asked_for_arrays_and_streams(
    tiny_model, tiny_data, monkeypatch
):
    """`RobustnessSpec.table` passes ``progress`` and ``description`` on (the CLI's suite shows its bar
    through it): the bar of each chunk is named after the description and on only when asked."""
    from contextlib import nullcontext

    from robustmask.evaluation import worst_case

    bars = []
    monkeypatch.setattr(
        worst_case,
        "progress_bar",
        lambda steps, description, enabled, unit: (
            bars.append((description, enabled)) or nullcontext(SimpleNamespace(update=lambda n: None))
        ),
    )
    x, y = tiny_data
    spec = RobustnessSpec({"FGSM": FGSM()}, [0.01], chunk_size=8)
    spec.table(tiny_model, (x[:12], y[:12]), progress=True, description="suite")
    assert bars == [("suite", True)]
    bars.clear()
    stream = tf.data.Dataset.from_tensor_slices((x[:12], y[:12])).batch(8)
    spec.table(tiny_model, stream, description="suite")
    assert bars == [("suite (batch 1)", False), ("suite (batch 2)", False)]
