"""Compiled functions are traced once: shared by equal attack instances and by every Evaluator,
never traced again for the last, smaller batch, and never keeping a model alive."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import tensorflow as tf

import robustmask
from robustmask.attacks import BIM, FGSM, PGD
from robustmask.attacks.gradient_attack import _SHARED
from conftest import build_cnn

SHAPE_X, SHAPE_Y = tf.TensorShape([16, 12, 12, 3]), tf.TensorShape([16, 3])


def test_equal_settings_share_one_compiled_function(tiny_model):
    assert FGSM().compiled_for(tiny_model, SHAPE_X, SHAPE_Y) is FGSM().compiled_for(
        tiny_model, SHAPE_X, SHAPE_Y
    )
    # batch_size only splits NumPy input: it does not change the graph
    assert FGSM(batch_size=7).compiled_for(tiny_model, SHAPE_X, SHAPE_Y) is FGSM().compiled_for(
        tiny_model, SHAPE_X, SHAPE_Y
    )


def test_different_settings_get_their_own_function(tiny_model):
    def compiled(attack):
        return attack.compiled_for(tiny_model, SHAPE_X, SHAPE_Y)

    distinct = [
        compiled(FGSM()),
        compiled(FGSM(clip=None)),
        compiled(FGSM(norm=2)),
        compiled(FGSM(loss="keras")),
        compiled(BIM(steps=3)),
        compiled(BIM(steps=4)),
        compiled(PGD(steps=3, seed=0)),
        compiled(PGD(steps=3, seed=1)),
        compiled(PGD(steps=3, norm=1)),
        compiled(PGD(steps=3, norm=robustmask.attacks.norms.L1(l1_percentile=90.0))),
    ]
    assert len({id(f) for f in distinct}) == len(distinct)


def test_a_setting_changed_after_compiling_gets_a_new_function(tiny_model, tiny_data):
    x, y = tiny_data[0][:8], tf.one_hot(tiny_data[1][:8], 3)
    bim = BIM(steps=1, rel_stepsize=0.5)
    one_step = bim.generate(tiny_model, x, y, [0.05])
    bim.steps = 5
    assert bim.compiled_for(tiny_model, tf.TensorShape(x.shape), y.shape) is not BIM(
        steps=1, rel_stepsize=0.5
    ).compiled_for(tiny_model, tf.TensorShape(x.shape), y.shape)
    five_steps = BIM(steps=5, rel_stepsize=0.5).generate(tiny_model, x, y, [0.05])
    np.testing.assert_allclose(bim.generate(tiny_model, x, y, [0.05]), five_steps)
    assert not np.allclose(one_step, bim.generate(tiny_model, x, y, [0.05]))


def traces_of(model) -> dict:
    """Every compiled function the shared caches (attacks and scorers) hold for `model`: key -> traces."""
    from robustmask.evaluation._scoring import _SCORERS

    counts = {
        ("attack", key): f.experimental_get_tracing_count() for key, f in _SHARED._entries[id(model)].items()
    }
    for key, scorer in _SCORERS._entries[id(model)].items():
        counts[("score", key)] = scorer.score.experimental_get_tracing_count()
    return counts


def test_fresh_evaluators_attacks_and_other_batch_sizes_trace_nothing_again(tiny_model, tiny_data):
    """Over the whole shared cache: one function per (model, setting, image shape), traced once,
    whatever the batch sizes (a cache keyed on the batch size would hold one per size)."""
    model = build_cnn(3)  # its own cache entries, nothing left from other tests
    model.set_weights(tiny_model.get_weights())
    x, y = tiny_data  # 120 images: batches of 32, 32, 32 and 24
    eps = [0.01, 0.02]
    first = robustmask.Evaluator(FGSM(), eps, batch_size=32).evaluate(model, (x, y))
    after_first = traces_of(model)
    # the scorer and FGSM's generate: two functions, one trace served all four batches
    assert sorted(after_first.values()) == [1, 1] and {kind for kind, _ in after_first} == {"attack", "score"}
    for batch_size in (32, 50, 7):  # a fresh Evaluator and FGSM each time, other batch sizes
        again = robustmask.Evaluator(FGSM(), eps, batch_size=batch_size).evaluate(model, (x, y))
        np.testing.assert_allclose(again["Accuracy (%)"], first["Accuracy (%)"])
        np.testing.assert_allclose(again["Loss"], first["Loss"], rtol=1e-5)
    for n in (5, 9, 13):  # attacks called directly, three batch sizes: FGSM's function and one for BIM
        FGSM()(model, x[:n], y[:n], eps=0.01)
        BIM(steps=2)(model, x[:n], y[:n], eps=0.01)
    counts = traces_of(model)
    assert {key: counts[key] for key in after_first} == after_first
    assert len(counts) == 3 and sum(counts.values()) == 3, counts


def test_the_shared_caches_keep_no_model_alive(tiny_data):
    x, y = tiny_data
    model = build_cnn(3)
    robustmask.Evaluator(FGSM(), [0.01], batch_size=64).evaluate(model, (x, y))
    PGD(steps=2, seed=0)(model, x[:4], y[:4], eps=0.01)
    model_id, alive = id(model), weakref.ref(model)
    assert model_id in _SHARED._entries
    del model
    gc.collect()
    assert alive() is None
    assert model_id not in _SHARED._entries


def test_new_models_and_settings_are_not_reported_as_retracing(tiny_data):
    """TensorFlow counts traces per code object: compiled functions made for one model or setting
    each must not add up to its "N out of the last M calls triggered tf.function retracing"."""
    import logging

    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Collect()
    logging.getLogger("tensorflow").addHandler(handler)
    try:
        x, y = tiny_data
        for steps in range(2, 9):  # seven models, seven PGD settings: one trace each, none repeated
            model = build_cnn()
            robustmask.Evaluator(FGSM(), [0.01]).evaluate(model, (x[:8], y[:8]))
            PGD(steps=steps)(model, x[:8], y[:8], eps=0.01)
    finally:
        logging.getLogger("tensorflow").removeHandler(handler)
    assert not [m for m in messages if "retracing" in m], messages
