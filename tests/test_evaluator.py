"""The Evaluator's tables equal a hand computation; it streams; it warns about suspicious results."""

from __future__ import annotations

import gc
import tracemalloc
import warnings

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from sklearn.metrics import classification_report

import robustmask
from robustmask.attacks import FGSM
from robustmask.errors import DataError, RobustmaskError
from robustmask.evaluation import TABLE_COLUMNS, classification_report_frame, named_norm, sanity_warnings

EPSILONS = [0.02, 0.05, 0.1]


def hand_table(model, x, y, epsilons):
    rows = []
    for eps in [0.0] + epsilons:
        images = x if eps == 0 else FGSM()(model, x, y, eps=eps)
        p = model.predict(images, verbose=0).astype(np.float64)
        rows.append((eps, 100 * np.mean(p.argmax(1) == y), np.mean(-np.log(p[np.arange(len(y)), y]))))
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def test_table_equals_hand_computation(tiny_model, tiny_data):
    x, y = tiny_data
    table = robustmask.Evaluator(FGSM(), EPSILONS, batch_size=32).evaluate(tiny_model, (x, y))
    assert list(table.columns) == list(TABLE_COLUMNS)
    expected = hand_table(tiny_model, x, y, EPSILONS)
    np.testing.assert_allclose(table["Epsilon"], expected["Epsilon"])
    np.testing.assert_allclose(table["Accuracy (%)"], expected["Accuracy (%)"])
    np.testing.assert_allclose(table["Loss"], expected["Loss"], rtol=1e-4)
    # The attack works on this model: accuracy falls with eps.
    assert table["Accuracy (%)"].iloc[-1] < table["Accuracy (%)"].iloc[0] - 20


def test_clean_row_first_and_dataset_equals_arrays(tiny_model, tiny_data):
    x, y = tiny_data
    evaluator = robustmask.Evaluator(FGSM(), [0.05, 0.0, 0.02], batch_size=17)
    assert evaluator.eps == [0.0, 0.05, 0.02]
    from_arrays = evaluator.evaluate(tiny_model, (x, y))
    dataset = tf.data.Dataset.from_tensor_slices((x, np.eye(3)[y])).batch(25)
    from_dataset = evaluator.evaluate(tiny_model, dataset)
    pd.testing.assert_frame_equal(from_arrays, from_dataset, atol=1e-5)
    assert list(robustmask.Evaluator(FGSM(), [0.01]).eps) == [0.0, 0.01]


class CountingLayer(keras.layers.Layer):
    """Counts the images that pass through it (forward passes, eager or compiled)."""

    def build(self, input_shape):
        self.seen = self.add_weight(shape=(), initializer="zeros", trainable=False, dtype="float32")

    def call(self, x):
        self.seen.assign_add(tf.cast(tf.shape(x)[0], tf.float32))
        return x


def test_scores_are_taken_in_inference_mode(tiny_model, tiny_data):
    """A Dropout after the softmax (active only in training mode) changes nothing: the table equals the
    hand computation on the model without it."""
    x, y = tiny_data
    dropped = keras.Sequential([tiny_model, keras.layers.Dropout(0.9)])
    table = robustmask.Evaluator(FGSM(), EPSILONS, batch_size=32).evaluate(dropped, (x, y))
    expected = hand_table(tiny_model, x, y, EPSILONS)
    np.testing.assert_allclose(table["Accuracy (%)"], expected["Accuracy (%)"])
    np.testing.assert_allclose(table["Loss"], expected["Loss"], rtol=1e-4)


def test_one_gradient_per_batch_for_all_epsilons(tiny_model, tiny_data):
    x, y = tiny_data
    counter = CountingLayer()
    model = keras.Sequential([keras.Input((12, 12, 3)), counter, *tiny_model.layers])
    robustmask.Evaluator(FGSM(), EPSILONS, batch_size=40).evaluate(model, (x, y))
    # One forward (+ backward) for the attack and one scoring pass per epsilon row, per image.
    assert counter.seen.numpy() == len(x) * (1 + 1 + len(EPSILONS))


def test_details_match_sklearn_and_hand_counts(tiny_model, tiny_data):
    x, y = tiny_data
    names = ["incorrect_mask", "with_mask", "without_mask"]
    result = robustmask.Evaluator(FGSM(), EPSILONS, class_names=names).evaluate(
        tiny_model, (x, y), details=True
    )
    assert set(result.reports) == {0.0, *EPSILONS}
    adv = FGSM()(tiny_model, x, y, eps=0.1)
    p = tiny_model.predict(adv, verbose=0)
    predicted = p.argmax(1)
    expected = classification_report(y, predicted, target_names=names, output_dict=True, zero_division=0)
    report = result.reports[0.1]
    for name in names:
        assert report.loc[name, "precision"] == pytest.approx(expected[name]["precision"])
        assert report.loc[name, "recall"] == pytest.approx(expected[name]["recall"])
        assert report.loc[name, "support"] == expected[name]["support"]
    assert report.loc["accuracy", "f1-score"] == pytest.approx(expected["accuracy"])
    wrong = predicted != y
    assert result.wrong_confidence[0.1] == pytest.approx(p.max(1)[wrong].mean(), rel=1e-4)
    np.testing.assert_array_equal(
        result.predicted_classes.loc[0.1].to_numpy(), np.bincount(predicted, minlength=3)
    )
    assert result.perturbation.loc[3, "Linf (max)"] <= 0.1 + 1e-6


# Batches above TensorFlow's CPU allocator's tracking threshold (256 KiB), so that its statistics
# would see batch tensors that were held.
BATCH = 192


def generated_batches(n_batches, size=BATCH):
    """A generated Dataset of `n_batches` batches: nothing of it exists before it is read."""

    def batches():
        rng = np.random.default_rng(0)
        for _ in range(n_batches):
            yield rng.uniform(0, 1, (size, 12, 12, 3)).astype(np.float32), rng.integers(0, 3, size)

    return tf.data.Dataset.from_generator(
        batches,
        output_signature=(tf.TensorSpec((None, 12, 12, 3), tf.float32), tf.TensorSpec((None,), tf.int64)),
    )


def peak_memory(evaluate):
    """Peak bytes above the start during `evaluate()`: (NumPy/Python via tracemalloc, TensorFlow's CPU allocator)."""
    gc.collect()
    tf.config.experimental.reset_memory_stats("CPU:0")
    tf_start = tf.config.experimental.get_memory_info("CPU:0")["current"]
    tracemalloc.start()
    try:
        result = evaluate()
        python_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    tf_peak = tf.config.experimental.get_memory_info("CPU:0")["peak"] - tf_start
    return result, python_peak, tf_peak


def test_streaming_peak_memory_stays_flat_when_the_data_grows_4x(tiny_model):
    """The Evaluator holds a batch, never the (adversarial) set: 4x the data, the same peak memory."""
    evaluator = robustmask.Evaluator(FGSM(), [0.01])
    evaluator.evaluate(tiny_model, generated_batches(1))  # trace the attack's graph outside the measurement
    table, python_small, tf_small = peak_memory(lambda: evaluator.evaluate(tiny_model, generated_batches(5)))
    assert table.attrs["examples"] == 5 * BATCH
    table, python_large, tf_large = peak_memory(lambda: evaluator.evaluate(tiny_model, generated_batches(20)))
    assert table.attrs["examples"] == 20 * BATCH
    # Holding the 15 extra batches of images (clean or adversarial) would add 5 MB.
    held = 15 * BATCH * 12 * 12 * 3 * 4
    assert python_large - python_small < held / 4, (python_small, python_large)
    assert tf_large - tf_small < held / 4, (tf_small, tf_large)


def test_sanity_warns_when_the_attack_changes_nothing(tiny_data):
    x, y = tiny_data
    # A model whose input goes through a stop_gradient: FGSM's gradient is zero everywhere.
    inputs = keras.Input((12, 12, 3))
    masked = keras.layers.Lambda(lambda t: tf.stop_gradient(t))(inputs)
    hidden = keras.layers.Flatten()(masked)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=30, verbose=0)
    with pytest.warns(RuntimeWarning, match="did not change the loss"):
        robustmask.Evaluator(FGSM(), EPSILONS).evaluate(model, (x, y))


def test_sanity_checks_on_tables():
    good = pd.DataFrame({"Epsilon": [0, 0.1, 0.2], "Accuracy (%)": [95.0, 60.0, 30.0], "Loss": [0.1, 1, 2]})
    assert sanity_warnings(good, 3, examples=1000) == []
    rising = good.assign(**{"Accuracy (%)": [95.0, 40.0, 70.0]})
    assert "accuracy rose from 40.00% to 70.00%" in sanity_warnings(rising, 3, examples=1000)[0]
    stuck = pd.DataFrame({"Epsilon": [0, 0.3, 0.5], "Accuracy (%)": [95.0, 80.0, 75.0], "Loss": [0.1, 1, 2]})
    assert "far above chance" in sanity_warnings(stuck, 3, examples=1000)[0]
    noisy = good.assign(**{"Accuracy (%)": [95.0, 40.0, 40.5]})
    assert sanity_warnings(noisy, 3, examples=1000) == []


def test_bad_arguments(tiny_model, tiny_data):
    x, y = tiny_data
    with pytest.raises(RobustmaskError, match="must be a robustmask Attack"):
        robustmask.Evaluator("fgsm", [0.1])
    with pytest.raises(RobustmaskError, match="targeted"):
        robustmask.Evaluator(FGSM(targeted=True), [0.1])
    with pytest.raises(RobustmaskError, match="eps must be >= 0"):
        robustmask.Evaluator(FGSM(), [-0.1])
    for batch_size in (0, -3, 2.5, True, "64"):
        with pytest.raises(RobustmaskError) as error:
            robustmask.Evaluator(FGSM(), [0.1], batch_size=batch_size)
        assert str(error.value) == f"batch_size must be a positive integer, got {batch_size!r}"
    with pytest.raises(DataError, match="label 5"):
        robustmask.Evaluator(FGSM(), [0.1]).evaluate(tiny_model, (x, np.full(len(y), 5)))
    with pytest.raises(DataError, match="120 images but 3 labels"):
        robustmask.Evaluator(FGSM(), [0.1]).evaluate(tiny_model, (x, y[:3]))
    with pytest.raises(DataError, match="must be batched"):
        robustmask.Evaluator(FGSM(), [0.1]).evaluate(
            tiny_model, tf.data.Dataset.from_tensor_slices((x[:, 0, 0, 0], y))
        )
    with pytest.raises(RobustmaskError, match="2 class_names given for a model with 3 classes"):
        robustmask.Evaluator(FGSM(), [0.1], class_names=["a", "b"]).evaluate(tiny_model, (x, y), details=True)


def test_predicted_labels_option(tiny_model, tiny_data):
    x, y = tiny_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flipped = (y + 1) % 3  # wrong "true" labels: the true-label attack pushes towards the model's answer
        with_true = robustmask.Evaluator(FGSM(), [0.1]).evaluate(tiny_model, (x, flipped))
        with_predicted = robustmask.Evaluator(FGSM(), [0.1], labels="predicted").evaluate(
            tiny_model, (x, flipped)
        )
    assert with_predicted["Loss"].iloc[1] < with_true["Loss"].iloc[1]


def test_predicted_labels_attack_each_images_own_answer_and_scores_count_the_given_labels(
    tiny_model, tiny_data
):
    """labels="predicted": FGSM pushes each image away from the model's own answer (a NumPy argmax
    here), whatever y holds; accuracy and loss are still counted against y. Batches of 32 over 120."""
    x, y = tiny_data
    flipped = (y + 1) % 3
    own = np.argmax(tiny_model.predict(x, verbose=0), 1)

    def scores(images):
        p = tiny_model.predict(images, verbose=0).astype(np.float64)
        return 100 * np.mean(p.argmax(1) == flipped), np.mean(-np.log(p[np.arange(len(y)), flipped]))

    accuracy, loss = scores(FGSM()(tiny_model, x, own, eps=0.05))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = robustmask.Evaluator(FGSM(), [0.05], labels="predicted", batch_size=32).evaluate(
            tiny_model, (x, flipped)
        )
    assert table["Accuracy (%)"].iloc[1] == pytest.approx(accuracy)
    assert table["Loss"].iloc[1] == pytest.approx(loss, rel=1e-4)
    assert abs(scores(FGSM()(tiny_model, x, flipped, eps=0.05))[1] - loss) > 0.5  # y's own attack differs


def test_unbounded_attack_reports_its_measured_size(tiny_model, tiny_data):
    """An attack that picks its own perturbation size runs once; its row shows the size it used."""
    x, y = tiny_data

    class Overshoot(robustmask.GradientAttack):
        eps_bounded = False

        def run(self, model, x, y, eps):  # a fixed, large FGSM step, whatever eps says
            return x + 0.2 * tf.sign(self.gradient(model, x, y))

    table = robustmask.Evaluator(Overshoot()).evaluate(tiny_model, (x, y))
    assert table.attrs["measured_epsilon"] and len(table) == 2
    measured = np.abs(Overshoot()(tiny_model, x, y) - x).reshape(len(x), -1).max(axis=1).mean()
    assert table["Epsilon"].iloc[1] == pytest.approx(measured, rel=1e-5)
    assert table["Accuracy (%)"].iloc[1] < table["Accuracy (%)"].iloc[0]
    with pytest.raises(RobustmaskError, match="chooses its own perturbation size: give no eps;"):
        robustmask.Evaluator(Overshoot(), [0.1])
    with pytest.raises(RobustmaskError, match="FGSM needs eps, e.g. Evaluator"):
        robustmask.Evaluator(FGSM())


def test_details_report_the_share_of_exactly_zero_gradients(tiny_model, tiny_data):
    x, y = tiny_data
    x_t = tf.convert_to_tensor(x)
    weights = tiny_model.get_weights()
    penultimate = keras.Model(tiny_model.inputs, tiny_model.layers[-2].output)
    # The same network with its logits scaled so that the median top-two gap is 40: the softmax is
    # saturated (p > 1 - 1e-7) on most images, yet exp(-gap) stays above float32's smallest numbers.
    logits = penultimate(x_t).numpy() @ weights[-2] + weights[-1]
    top2 = np.sort(logits, axis=1)[:, -2:]
    scale = 40.0 / np.median(top2[:, 1] - top2[:, 0])
    saturated = keras.models.clone_model(tiny_model)
    saturated.set_weights(weights[:-2] + [weights[-2] * scale, weights[-1] * scale])

    def independent_share(loss_of_images):
        with tf.GradientTape() as tape:
            tape.watch(x_t)
            loss = loss_of_images(x_t)
        return 100.0 * np.mean(~tape.gradient(loss, x_t).numpy().reshape(len(x), -1).any(axis=1))

    # Keras 2's categorical cross-entropy on the softmax output, written out: probabilities clipped
    # to [1e-7, 1 - 1e-7] (Keras 3 would quietly use the logits the softmax tensor carries) ...
    keras_expected = independent_share(
        lambda images: (
            -tf.reduce_sum(
                tf.one_hot(y, 3) * tf.math.log(tf.clip_by_value(saturated(images), 1e-7, 1 - 1e-7)), axis=1
            )
        )
    )
    # ... and the cross-entropy from the logits (penultimate features times the scaled last layer)
    own_expected = independent_share(
        lambda images: tf.nn.sparse_softmax_cross_entropy_with_logits(
            y, penultimate(images) @ (weights[-2] * scale) + weights[-1] * scale
        )
    )
    assert keras_expected > 30 and own_expected < 10  # the construction works

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the masked sweep may trip the sanity checks
        keras_loss = robustmask.Evaluator(FGSM(loss="keras"), [0.05], batch_size=7).evaluate(
            saturated, (x, y), details=True
        )
        own_loss = robustmask.Evaluator(FGSM(), [0.05]).evaluate(saturated, (x, y), details=True)
    assert keras_loss.zero_gradient_share == pytest.approx(keras_expected)
    assert own_loss.zero_gradient_share == pytest.approx(own_expected)
    square = robustmask.attacks.get("square", steps=2)
    assert (
        robustmask.Evaluator(square, [0.05])
        .evaluate(tiny_model, (x[:6], y[:6]), details=True)
        .zero_gradient_share
        is None
    )  # no gradient, no share


def test_the_classification_report_has_a_row_for_every_class_even_one_never_seen():
    y_true, y_pred = np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0])
    frame = classification_report_frame(y_true, y_pred, ["a", "b", "c"])
    assert list(frame.index) == ["a", "b", "c", "macro avg", "weighted avg", "accuracy"]
    # By hand: a 1 of 2 predicted right, 1 of 2 found; b 2 of 3 and 2 of 3; c neither present nor
    # predicted: zeros (not NaN, not a missing row), and it counts in the macro average.
    np.testing.assert_allclose(frame.loc["a", ["precision", "recall"]].to_numpy(float), [1 / 2, 1 / 2])
    np.testing.assert_allclose(frame.loc["b", ["precision", "recall"]].to_numpy(float), [2 / 3, 2 / 3])
    np.testing.assert_array_equal(frame.loc["c"].to_numpy(float), [0, 0, 0, 0])
    assert frame.loc["macro avg", "precision"] == pytest.approx((1 / 2 + 2 / 3) / 3)
    accuracy = frame.loc["accuracy"]
    assert np.isnan(accuracy["precision"]) and np.isnan(accuracy["recall"])
    assert accuracy["f1-score"] == pytest.approx(3 / 5) and accuracy["support"] == 5
    assert frame["support"].dtype.kind == "i"


def test_named_norm_puts_the_norm_in_the_epsilon_column_of_a_copy():
    table = pd.DataFrame({"Epsilon": [0.0, 0.1], "Accuracy (%)": [90.0, 50.0]})
    table.attrs["norm"] = "L2"
    named = named_norm(table)
    assert list(named.columns) == ["Epsilon (L2)", "Accuracy (%)"]
    assert list(table.columns) == ["Epsilon", "Accuracy (%)"]  # the caller's table is left as it was
    np.testing.assert_array_equal(named["Epsilon (L2)"], table["Epsilon"])
    made_by_hand = pd.DataFrame({"Epsilon": [0.1]})  # no norm in its attrs
    assert list(named_norm(made_by_hand).columns) == ["Epsilon"]
    no_epsilon = pd.DataFrame({"eps": [0.1]})
    no_epsilon.attrs["norm"] = "L2"
    assert list(named_norm(no_epsilon).columns) == ["eps"]


def test_details_name_the_classes_by_number_without_class_names(tiny_model, tiny_data):
    x, y = tiny_data[0][:30], tiny_data[1][:30]
    result = robustmask.Evaluator(FGSM(), [0.1]).evaluate(tiny_model, (x, y), details=True)
    assert list(result.predicted_classes.columns) == ["0", "1", "2"]
    assert list(result.reports[0.1].index[:3]) == ["0", "1", "2"]


def test_details_frames_are_whole_and_named(tiny_model, tiny_data):
    """Every details frame against one computed here from FGSM's own images."""
    x, y = tiny_data[0][:30], tiny_data[1][:30]
    eps = [0.05, 0.1]
    result = robustmask.Evaluator(FGSM(), eps).evaluate(tiny_model, (x, y), details=True)
    assert result.table.attrs["attack"] == FGSM().name and result.table.attrs["norm"] == "L-inf"
    assert list(result.table["Epsilon"]) == [0.0, *eps] and result.warnings == []
    deltas = [np.abs(FGSM()(tiny_model, x, y, eps=e) - x).reshape(len(x), -1) for e in eps]
    expected = pd.DataFrame(
        {
            "Epsilon": [0.0, *eps],
            "Linf (mean)": [0.0] + [d.max(1).mean() for d in deltas],
            "Linf (max)": [0.0] + [d.max() for d in deltas],
            "L2 (mean)": [0.0] + [np.sqrt((d.astype(np.float64) ** 2).sum(1)).mean() for d in deltas],
        }
    )
    pd.testing.assert_frame_equal(result.perturbation, expected, rtol=1e-4)
    assert result.wrong_confidence.name == "wrong_confidence"
    assert list(result.wrong_confidence.index) == [0.0, *eps]
    assert result.predicted_classes.index.name == "Epsilon"
    assert list(result.predicted_classes.index) == [0.0, *eps]


def test_a_model_that_answers_one_class_and_has_no_gradient_is_reported_and_warned(tiny_data):
    x, y = tiny_data[0][:12], tiny_data[1][:12]
    model = keras.Sequential(
        [
            keras.Input(x.shape[1:]),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax", kernel_initializer="zeros", bias_initializer="ones"),
        ]
    )
    model.layers[-1].bias.assign([5.0, 0.0, 0.0])  # always class 0: classes 1 and 2 never predicted
    with pytest.warns(RuntimeWarning) as caught:
        result = robustmask.Evaluator(FGSM(), [0.1]).evaluate(model, (x, y), details=True)
    # Counted for all three classes; the zero gradient named, in the result and as a warning
    # pointing at the caller's line (stacklevel).
    np.testing.assert_array_equal(result.predicted_classes.to_numpy(), [[12, 0, 0], [12, 0, 0]])
    # The table's check (the loss never moved) and the evidence's (every input gradient exactly zero).
    assert {str(m).split(":")[0] for m in result.warnings} == {"loss-unchanged", "zero-gradients"}
    assert result.zero_gradient_share == 100.0
    assert {w.filename for w in caught} == {__file__}
    assert result.table is not None and len(result.table) == 2


def test_one_scorer_per_model_and_image_size_traced_once_for_every_batch_size():
    from robustmask.evaluation._scoring import compiled_scorer
    from robustmask.modelinfo import inspect_model

    inputs = keras.Input((None, None, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(pooled))
    rng = np.random.default_rng(0)
    for size, batches in ((12, (5, 8, 13)), (16, (5, 7))):  # one model, two image sizes
        x, y = rng.uniform(size=(13, size, size, 3)).astype(np.float32), rng.integers(0, 3, 13)
        for n in batches:
            table = robustmask.Evaluator(FGSM(), [0.1], batch_size=n).evaluate(model, (x[:n], y[:n]))
            assert table["Accuracy (%)"].iloc[0] == pytest.approx(
                100 * np.mean(model.predict(x[:n], verbose=0).argmax(1) == y[:n])
            )
        scorer = compiled_scorer(model, inspect_model(model), (size, size, 3))
        assert scorer.score.experimental_get_tracing_count() == 1


def test_evaluate_is_silent_by_default_and_the_report_warns_nothing(tiny_model, tiny_data, capsys):
    x, y = tiny_data[0][:10], tiny_data[1][:10]
    robustmask.Evaluator(FGSM(), [0.1]).evaluate(tiny_model, (x, y))
    assert capsys.readouterr() == ("", "")  # no progress bar unless asked
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        classification_report_frame(np.array([0, 0]), np.array([0, 0]), ["a", "b"])  # b: 0 / 0
    assert caught == []
