"""Binary classifiers in every output form robustmask supports, checked against counts made here.

One sigmoid unit (the common with/without-mask design), one logit unit, two softmax units and two
logits: the same network, so they predict the same classes. Every number robustmask reports
(clean and robust accuracy, fooling rates) is compared with a NumPy count from the model's own
outputs (issue 18: a one-unit sigmoid model was read as class 0 everywhere, and looked robust).
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import robustmask
from robustmask.attacks import FGSM, PGD, SGDUniversalPerturbation
from robustmask.cli.main import main
from robustmask.datasets import synthetic_face_masks
from robustmask.datasets.directory import CLASS_NAMES
from robustmask.evaluation.transfer import fooling_rate, transfer_table
from robustmask.evaluation.worst_case import WORST_CASE, predicted_classes, robustness_table, standard_suite
from robustmask.modelinfo import ModelInfo

L = keras.layers
SIZE = 24
PAIR = ("with_mask", "without_mask")  # relabelled 0 and 1, as `--class-names with_mask without_mask` does
TEST_SEED, TEST_PER_CLASS = 1, 30
# The class a one-unit model predicts: output above the threshold is class 1.
THRESHOLDS = {"sigmoid unit": 0.5, "one logit": 0.0}
KINDS = ("sigmoid unit", "one logit", "softmax", "two logits")


def faces(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = synthetic_face_masks(n_per_class=n_per_class, image_size=SIZE, seed=seed)
    first, second = (CLASS_NAMES.index(name) for name in PAIR)
    keep = np.isin(y, [first, second])
    return x[keep], (y[keep] == second).astype(np.int64)


def network(head: keras.layers.Layer) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            L.Conv2D(8, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(16, activation="relu"),
            head,
        ]
    )


def own_classes(model: keras.Model, x: np.ndarray, kind: str) -> np.ndarray:
    """The model's classes, in NumPy from its raw outputs."""
    out = np.concatenate([np.asarray(model(x[i : i + 50], training=False)) for i in range(0, len(x), 50)])
    if kind in THRESHOLDS:
        return (out[:, 0] > THRESHOLDS[kind]).astype(np.int64)
    return out.argmax(axis=1)


@pytest.fixture(scope="module")
def test_set():
    return faces(TEST_PER_CLASS, TEST_SEED)


@pytest.fixture(scope="module")
def models(test_set):
    """A trained one-unit sigmoid model, and the same network with the other three heads.

    Two units with weights (-w/2, w/2) and biases (-b/2, b/2) give softmax(-z/2, z/2) = (1 - sigmoid(z),
    sigmoid(z)): exactly the sigmoid model's probabilities.
    """
    keras.utils.set_random_seed(0)
    sigmoid = network(L.Dense(1, activation="sigmoid"))
    sigmoid.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy", metrics=["accuracy"])
    x, y = faces(60, 0)
    sigmoid.fit(x, y.astype(np.float32), epochs=20, batch_size=16, verbose=0)
    *body, w, b = sigmoid.get_weights()
    pair_w, pair_b = np.concatenate([-w / 2, w / 2], axis=1), np.concatenate([-b / 2, b / 2])
    built = {"sigmoid unit": sigmoid}
    for kind, head, weights in (
        ("one logit", L.Dense(1), [w, b]),
        ("softmax", L.Dense(2, activation="softmax"), [pair_w, pair_b]),
        ("two logits", L.Dense(2), [pair_w, pair_b]),
    ):
        built[kind] = network(head)
        built[kind].set_weights([*body, *weights])
    x_test, y_test = test_set
    expected = own_classes(sigmoid, x_test, "sigmoid unit")
    accuracy = np.mean(expected == y_test)
    assert 0.65 < accuracy < 1.0, f"the fixture should be well above chance, and not perfect: {accuracy:.2f}"
    for kind in KINDS:  # the four heads are one classifier
        np.testing.assert_array_equal(own_classes(built[kind], x_test, kind), expected)
    return built


@pytest.mark.parametrize("kind", KINDS)
def test_every_prediction_path_gives_the_models_own_classes(models, test_set, kind):
    model, x = models[kind], test_set[0]
    expected = own_classes(model, x, kind)
    np.testing.assert_array_equal(predicted_classes(model, x), expected)
    np.testing.assert_array_equal(FGSM().predict_labels(model, x), expected)
    from robustmask.predictions import predict_labels  # the one home (issue 18)

    np.testing.assert_array_equal(predict_labels(model, x, batch_size=7), expected)
    assert predict_labels(model, x[:0]).shape == (0,)


@pytest.mark.parametrize("kind", KINDS)
def test_robustness_table_counts_what_the_model_predicts(models, test_set, kind):
    model, (x, y) = models[kind], test_set
    clean = own_classes(model, x, kind) == y
    table = robustness_table(model, (x, y), {"FGSM": FGSM(), "PGD": PGD(steps=10, seed=0)}, [0.1])
    assert table["Clean (%)"][0] == pytest.approx(100 * clean.mean())
    # PGD is seeded: the same run on the images the model gets right, counted here.
    adversarial = PGD(steps=10, seed=0)(model, x[clean], y[clean], eps=0.1)
    robust = own_classes(model, adversarial, kind) == y[clean]
    assert table["PGD (%)"][0] == pytest.approx(100 * robust.sum() / len(x))
    assert table["PGD (%)"][0] < table["Clean (%)"][0] / 2, "a large eps must break the model"
    assert table[WORST_CASE][0] <= min(table["FGSM (%)"][0], table["PGD (%)"][0])


@pytest.mark.parametrize("kind", KINDS)
def test_evaluator_accuracy_is_the_models_accuracy(models, test_set, kind):
    model, (x, y) = models[kind], test_set
    result = robustmask.Evaluator(FGSM(), [0.05], batch_size=32).evaluate(model, (x, y), details=True)
    adversarial = FGSM()(model, x, y, eps=0.05)
    accuracies = [np.mean(own_classes(model, images, kind) == y) for images in (x, adversarial)]
    np.testing.assert_allclose(result.table["Accuracy (%)"], 100 * np.array(accuracies))
    assert result.predicted_classes is not None
    np.testing.assert_array_equal(
        result.predicted_classes.to_numpy()[0], np.bincount(own_classes(model, x, kind), minlength=2)
    )


@pytest.mark.parametrize("kind", KINDS)
def test_fooling_rates_are_the_share_of_changed_predictions(models, test_set, kind):
    model, (x, y) = models[kind], test_set
    pattern = np.random.default_rng(0).choice([-0.15, 0.15], size=x.shape[1:]).astype(np.float32)
    adversarial = np.clip(x + pattern, 0, 1)
    clean, fooled = own_classes(model, x, kind), own_classes(model, adversarial, kind)
    assert fooling_rate(model, x, adversarial, batch_size=7) == pytest.approx(np.mean(clean != fooled))
    row = transfer_table(pattern, model, {"test": (x, y)}).iloc[0]
    assert row["Clean accuracy (%)"] == pytest.approx(100 * np.mean(clean == y))
    assert row["Adversarial accuracy (%)"] == pytest.approx(100 * np.mean(fooled == y))
    assert row["Fooling rate (%)"] == pytest.approx(100 * np.mean(clean != fooled))
    uap = SGDUniversalPerturbation(epochs=2, seed=0)
    learnt_on = uap(model, x, eps=0.1)
    assert uap.fooling_rate == pytest.approx(np.mean(own_classes(model, learnt_on, kind) != clean))


def test_standard_suite_on_a_sigmoid_unit_attacks_the_images_it_gets_right(models, test_set):
    model, (x, y) = models["sigmoid unit"], test_set
    keras.utils.set_random_seed(0)  # APGD's random start and Square draw from NumPy's generator
    suite = standard_suite(num_classes=2, apgd_iter=5, square_queries=20)
    table = robustness_table(model, (x, y), suite, [0.1], protocol="cascade")
    accuracy = 100 * np.mean(own_classes(model, x, "sigmoid unit") == y)
    assert table["Clean (%)"][0] == pytest.approx(accuracy)
    assert table[WORST_CASE][0] < accuracy / 2, "the suite must break the model at a large eps"


def test_evaluate_suite_command_on_a_saved_sigmoid_model(models, test_set, tmp_path, capsys):
    model, (x, y) = models["sigmoid unit"], test_set
    path, csv = tmp_path / "sigmoid.keras", tmp_path / "suite.csv"
    model.save(path)
    keras.utils.set_random_seed(0)
    command = ["evaluate", "--model", str(path), "--suite", "standard", "--n-per-class", str(TEST_PER_CLASS)]
    command += ["--seed", str(TEST_SEED), "--class-names", *PAIR, "--eps", "0.1", "--csv", str(csv)]
    command += ["--param", "apgd_iter=5", "--param", "square_queries=20"]
    assert main(command) == 0
    table = pd.read_csv(csv)
    accuracy = 100 * np.mean(own_classes(model, x, "sigmoid unit") == y)
    assert accuracy == pytest.approx(100 * model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"])
    assert table["Clean (%)"][0] == pytest.approx(accuracy)
    assert table["Worst case (%)"][0] < accuracy / 2


@pytest.mark.parametrize(
    "info, outputs, expected",
    [
        (ModelInfo(2, "probabilities", single_unit=True), [[0.2], [0.5], [0.5001], [0.9]], [0, 0, 1, 1]),
        (ModelInfo(2, "logits", single_unit=True), [[-3.0], [0.0], [1e-4], [2.0]], [0, 0, 1, 1]),
        (ModelInfo(2, "probabilities"), [[0.7, 0.3], [0.4, 0.6]], [0, 1]),
        (ModelInfo(3, "logits"), [[-1.0, 2.0, 0.5], [3.0, -2.0, 4.0]], [1, 2]),
    ],
)
def test_top_classes_of_each_output_kind_eagerly_and_in_a_graph(info, outputs, expected):
    from robustmask.predictions import top_classes

    outputs = tf.constant(outputs, tf.float32)
    np.testing.assert_array_equal(top_classes(outputs, info).numpy(), expected)
    np.testing.assert_array_equal(tf.function(lambda o: top_classes(o, info))(outputs).numpy(), expected)
