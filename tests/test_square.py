"""The native Square Attack against an independent NumPy run of AutoAttack's L-inf loop, and its invariants."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from robustmask.attacks import PGD, SquareAttack
from robustmask.errors import AttackError

HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def linear_model(shape=(8, 8, 3), classes=3, seed=0):
    """Logits = flatten(x) @ w + b: a model whose margins NumPy computes on its own."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(classes)])
    w, b = model.layers[-1].get_weights()
    model.layers[-1].set_weights([w * 3.0, np.zeros_like(b)])
    return model


def autoattack_side(p_init, i, steps, h, w):
    """AutoAttack's p_selection (schedule rescaled to the run) and square side, capped at h - 1."""
    progress = int(i / steps * 10000)
    p = p_init / 2 ** sum(progress > t for t in HALVINGS)
    return min(max(round(math.sqrt(p * h * w)), 1), min(h, w) - 1)


def reference_square(model, x, labels, eps, steps, p_init, seed, restarts=1, targeted=False):
    """AutoAttack's square.py (L-inf, margin loss) in NumPy, drawing from the generator in the same order:
    the stripes of a run, then per step the square's corner (row, column) and its signs."""
    w, b = (v.astype(np.float64) for v in model.layers[-1].get_weights())
    n, h, wd, c = x.shape
    rng = np.random.default_rng(seed)

    def margin(images, lab):
        logits = images.reshape(len(images), -1).astype(np.float64) @ w + b
        label = logits[np.arange(len(lab)), lab]
        logits[np.arange(len(lab)), lab] = -np.inf
        other = logits.max(1)
        return other - label if targeted else label - other

    queries = 0
    best, best_margin = x.copy(), np.full(n, np.inf)
    for _ in range(restarts):
        todo = np.flatnonzero(best_margin > 0)
        if todo.size == 0:
            break
        xs, ys = x[todo], labels[todo]
        stripes = rng.choice(np.float32([-eps, eps]), size=(len(xs), 1, wd, c))
        run = np.clip(xs + stripes, 0, 1)
        m = margin(run, ys)
        queries += len(xs)
        for i in range(steps):
            idx = np.flatnonzero(m > 0)
            if idx.size == 0:
                break
            s = autoattack_side(p_init, i, steps, h, wd)
            vh, vw = rng.integers(0, h - s), rng.integers(0, wd - s)
            delta = np.zeros((h, wd, c), np.float32)
            delta[vh : vh + s, vw : vw + s] = 2 * eps * rng.choice([-1.0, 1.0], c)
            new = np.clip(np.clip(run[idx] + delta, xs[idx] - eps, xs[idx] + eps), 0, 1)
            new_m = margin(new, ys[idx])
            queries += idx.size
            better = new_m < m[idx]
            run[idx[better]], m[idx[better]] = new[better], new_m[better]
        improved = m < best_margin[todo]
        best[todo[improved]], best_margin[todo[improved]] = run[improved], m[improved]
    return best, queries


@pytest.fixture(scope="module")
def linear():
    model = linear_model()
    x = np.random.default_rng(1).uniform(0.2, 0.8, (10, 8, 8, 3)).astype(np.float32)
    labels = np.argmax(model.predict(x, verbose=0), 1)
    return model, x, labels


@pytest.mark.parametrize("restarts,targeted", [(1, False), (3, False), (2, True)])
def test_matches_autoattacks_loop_image_for_image_and_query_for_query(linear, restarts, targeted):
    model, x, labels = linear
    y = (labels + 1) % 3 if targeted else labels
    eps, steps = 0.15, 60
    square = SquareAttack(steps=steps, p_init=0.3, restarts=restarts, seed=7, targeted=targeted)
    got = square(model, x, y, eps=eps)
    expected, queries = reference_square(
        model, x, y, eps, steps, 0.3, seed=7, restarts=restarts, targeted=targeted
    )
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert square.queries == queries
    fooled = np.argmax(model.predict(got, verbose=0), 1)
    assert 0 < np.mean(fooled == y if targeted else fooled != y) < 1  # the run was neither empty nor trivial


def test_the_squares_shrink_on_autoattacks_schedule_and_never_fill_the_image():
    square = SquareAttack(steps=5000)
    sides = [square._square_side(i, 96, 96) for i in (0, 5, 6, 25, 26, 100, 101, 4000, 4999)]
    assert sides == [autoattack_side(0.8, i, 5000, 96, 96) for i in (0, 5, 6, 25, 26, 100, 101, 4000, 4999)]
    assert sides[:3] == [86, 86, 61] and sides[-1] == 4  # 0.8 of 96x96 first; p_init / 512 at the end
    assert SquareAttack(p_init=1.0)._square_side(0, 8, 8) == 7  # a whole-image square leaves no room
    assert SquareAttack(p_init=1.0)._square_side(0, 2, 2) == 1


def test_one_trace_per_function_however_the_batch_shrinks_and_a_new_image_size_gets_its_own(linear):
    model, x, labels = linear
    square = SquareAttack(steps=60, seed=0)
    square(model, x, labels, eps=0.15)  # images fall one by one: the active batch takes many sizes
    margin_of, step = square._functions(model, tf.TensorShape(x.shape), tf.TensorShape((len(x), 3)))
    assert margin_of.experimental_get_tracing_count() == 1 and step.experimental_get_tracing_count() == 1
    keras.utils.set_random_seed(0)
    any_size = keras.Sequential(
        [keras.Input((None, None, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)]
    )
    for shape in ((4, 8, 12, 3), (4, 12, 12, 3)):  # differ in height only
        images = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
        out = square(any_size, images, [0, 1, 2, 0], eps=0.05)
        assert out.shape == shape and np.abs(out - images).max() <= 0.05 + 1e-6


def test_budget_range_shape_and_dtype_for_every_eps(tiny_model, tiny_data):
    x = tiny_data[0][:8].astype(np.float64)
    x[0, :2] = 0.0
    x[1, :2] = 1.0  # saturated pixels: the clip must hold on both sides
    epsilons = [0.01, 0.1]
    out = SquareAttack(steps=30, seed=0)(tiny_model, x, tiny_data[1][:8], eps=epsilons)
    assert out.shape == (2, *x.shape) and out.dtype == np.float64
    for eps, adv in zip(epsilons, out):
        assert np.abs(adv - x).max() <= eps + 1e-6
        assert adv.min() >= 0.0 and adv.max() <= 1.0
        assert np.abs(adv - x).max() > eps / 2  # it moved


def test_an_unbreakable_batch_spends_the_whole_budget_and_the_same_seed_repeats(linear):
    model, x, labels = linear
    square = SquareAttack(steps=25, restarts=2, seed=3)
    out = square(model, x, labels, eps=1e-5)
    assert np.array_equal(np.argmax(model.predict(out, verbose=0), 1), labels)
    assert square.queries == 2 * len(x) * (1 + 25)  # every image, every step, both runs
    np.testing.assert_array_equal(out, SquareAttack(steps=25, restarts=2, seed=3)(model, x, labels, eps=1e-5))
    np.random.seed(5)
    a = SquareAttack(steps=25)(model, x, labels, eps=0.03)
    np.random.seed(5)
    np.testing.assert_array_equal(a, SquareAttack(steps=25)(model, x, labels, eps=0.03))


def test_restarts_run_on_what_is_left_even_one_image_and_stop_when_nothing_is(linear):
    model, x, labels = linear
    one = SquareAttack(steps=4, restarts=3, seed=0)
    one(model, x[:1], labels[:1], eps=1e-5)
    assert one.queries == 3 * (1 + 4)  # a batch of one image gets its three runs
    square = SquareAttack(steps=200, restarts=3, seed=0)
    out = square(model, x, labels, eps=0.5)  # eps 0.5 fools every image in the first run
    assert not np.any(np.argmax(model.predict(out, verbose=0), 1) == labels)
    single = SquareAttack(steps=200, seed=0)
    np.testing.assert_array_equal(out, single(model, x, labels, eps=0.5))
    assert square.queries == single.queries  # the later runs had nothing to attack


def test_queries_count_every_batch_of_a_call_and_the_labels_it_asked_for(linear):
    model, x, labels = linear
    square = SquareAttack(steps=5, seed=0, batch_size=4)  # three batches: 4, 4, 2
    square(model, x, labels, eps=1e-5)
    assert square.queries == len(x) * (1 + 5)
    square(model, x, eps=1e-5)  # a new call starts from 0; the predicted labels cost one query an image
    assert square.queries == len(x) * (1 + 5) + len(x)


def test_fools_a_model_whose_gradient_is_hidden_where_pgd_cannot(tiny_model, tiny_data):
    x, y = tiny_data[0][:24], tiny_data[1][:24]
    hidden = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Lambda(tf.stop_gradient), tiny_model])
    eps = 0.15

    def accuracy(images):
        return np.mean(np.argmax(hidden.predict(images, verbose=0), 1) == y)

    assert accuracy(x) > 0.9
    pgd = accuracy(PGD(steps=10, random_start=False)(hidden, x, y, eps=eps))
    square = accuracy(SquareAttack(steps=300, seed=0)(hidden, x, y, eps=eps))
    assert pgd > 0.9 and square < pgd - 0.3, (pgd, square)


def test_single_unit_sigmoid_models(binary_data):
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [keras.Input((12, 12, 3)), keras.layers.Flatten(), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile("adam", "binary_crossentropy")
    x, y = binary_data[0][:16], binary_data[1][:16]
    model.fit(x, y, epochs=30, verbose=0)
    clean = np.mean((model.predict(x, verbose=0)[:, 0] > 0.5) == y)
    adv = SquareAttack(steps=100, seed=0)(model, x, y, eps=0.1)
    assert np.mean((model.predict(adv, verbose=0)[:, 0] > 0.5) == y) < clean - 0.3


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (
            {"norm": 2},
            r"L-inf attack.*; for L2 use robustmask\.attacks\.ARTSquareAttack\(norm=2\) \(registry name 'art-square'\)$",
        ),
        ({"p_init": 1.5}, r"p_init is a fraction"),
        ({"p_init": 0}, r"p_init must be a positive number"),
        ({"steps": 0}, r"steps must be a positive integer"),
        ({"restarts": 0}, r"^restarts must be a positive integer"),
        ({"seed": True}, r"seed must be None or a non-negative integer"),
    ],
)
def test_bad_settings_are_one_line_errors(kwargs, match):
    with pytest.raises(AttackError, match=match):
        SquareAttack(**kwargs)


def test_defaults_are_autoattacks():
    square = SquareAttack()
    assert (square.steps, square.p_init, square.restarts, square.seed) == (5000, 0.8, 1, None)
    assert square.queries == 0  # no call yet
    assert SquareAttack(p_init=1.0).p_init == 1.0  # a whole-image first square is allowed


def test_it_attacks_the_model_in_inference_mode(linear):
    """Dropout in front of the same weights changes nothing in inference: nor may it change the attack."""
    model, x, labels = linear
    dropped = keras.Sequential(
        [keras.Input(x.shape[1:]), keras.layers.Flatten(), keras.layers.Dropout(0.9), keras.layers.Dense(3)]
    )
    dropped.layers[-1].set_weights(model.layers[-1].get_weights())
    np.testing.assert_array_equal(
        SquareAttack(steps=40, seed=1)(dropped, x, labels, eps=0.15),
        SquareAttack(steps=40, seed=1)(model, x, labels, eps=0.15),
    )


@pytest.mark.parametrize("shape", [(4, 2, 2, 3), (4, 8, 8, 1), (4, 8, 2, 3)])
def test_any_image_of_two_by_two_pixels_or_more_and_any_channels(shape):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape[1:]), keras.layers.Flatten(), keras.layers.Dense(3)])
    x = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
    out = SquareAttack(steps=10, seed=0)(model, x, [0, 1, 2, 0], eps=0.1)
    assert out.shape == shape and np.abs(out - x).max() <= 0.1 + 1e-6


def test_inputs_that_are_not_images_are_refused_in_one_line():
    keras.utils.set_random_seed(0)
    flat = keras.Sequential([keras.Input((12,)), keras.layers.Dense(3)])
    x = np.random.default_rng(0).uniform(size=(4, 12)).astype(np.float32)
    with pytest.raises(AttackError, match=r"needs images \(batch, height, width, channels\).*\(4, 12\)"):
        SquareAttack(steps=2)(flat, x, [0, 1, 2, 0], eps=0.1)
    row = keras.Sequential([keras.Input((1, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(3)])
    with pytest.raises(AttackError, match=r"at least 2x2, got inputs of shape \(4, 1, 8, 3\)$"):
        SquareAttack(steps=2)(row, np.zeros((4, 1, 8, 3), np.float32), [0, 1, 2, 0], eps=0.1)
