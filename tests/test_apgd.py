"""The native Auto-PGD (robustmask.attacks.AutoPGD) against an independent run of AutoAttack's loop.

The reference below is AutoAttack's ``APGDAttack.perturb``/``attack_single_run`` (L-inf) written
again in NumPy for a small tanh network, whose loss gradients are written out by hand; the native
attack must fool the same images and, on the images it cannot fool, end at the same points.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from robustmask.attacks import AutoPGD
from robustmask.attacks.apgd_run import Run, checkpoints
from robustmask.errors import AttackError

SHAPE = (6, 6, 3)
CLASSES = 3
HIDDEN = 16


# ---------------------------------------------------------------------------------------------- reference
def _forward(x, weights):
    """The reference model: a tanh layer, then logits (z, and what the gradient needs)."""
    w1, b1, w2, b2 = weights
    hidden = np.tanh(x.reshape(len(x), -1) @ w1 + b1)
    return hidden @ w2 + b2, hidden


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _backward(x, weights, hidden, dz):
    w1, _, w2, _ = weights
    return (((dz @ w2.T) * (1 - hidden**2)) @ w1.T).reshape(x.shape)


def _ce_and_grad(x, y, weights):
    z, hidden = _forward(x, weights)
    logp = _log_softmax(z)
    loss = -logp[np.arange(len(y)), y]
    dz = np.exp(logp)
    dz[np.arange(len(y)), y] -= 1
    return z, loss, _backward(x, weights, hidden, dz)


def _dlr_and_grad(x, y, weights):
    z, hidden = _forward(x, weights)
    n = np.arange(len(y))
    order = np.argsort(-z, axis=1)
    other = np.where(order[:, 0] == y, order[:, 1], order[:, 0])
    gap = z[n, order[:, 0]] - z[n, order[:, 2]] + 1e-12
    margin = z[n, y] - z[n, other]
    loss = -margin / gap
    dz = np.zeros_like(z)
    dz[n, y] -= 1 / gap
    dz[n, other] += 1 / gap
    dz[n, order[:, 0]] += margin / gap**2
    dz[n, order[:, 2]] -= margin / gap**2
    return z, loss, _backward(x, weights, hidden, dz)


def _reference_single_run(x, y, eps, steps, loss_and_grad, rng):
    """AutoAttack's attack_single_run, L-inf: (x_best, acc, loss_best, x_best_adv)."""
    t = 2 * rng.random(x.shape, dtype=np.float32) - 1
    x_adv = np.clip(x + eps * t / np.abs(t.reshape(len(t), -1)).max(1).reshape(-1, 1, 1, 1), 0, 1)
    x_best, x_best_adv = x_adv.copy(), x_adv.copy()
    loss_steps = np.zeros((steps, len(x)), np.float32)
    z, loss, grad = loss_and_grad(x_adv, y)
    grad_best = grad.copy()
    acc = z.argmax(1) == y
    loss_best = loss.copy()
    step_size = np.full((len(x), 1, 1, 1), 2 * eps, np.float32)
    x_adv_old = x_adv.copy()
    k, n_iter_min, size_decr = max(int(0.22 * steps), 1), max(int(0.06 * steps), 1), max(int(0.03 * steps), 1)
    counter3 = 0
    loss_best_last_check, reduced_last_check = loss_best.copy(), np.ones(len(x), bool)
    for i in range(steps):
        grad2 = x_adv - x_adv_old
        x_adv_old = x_adv.copy()
        a = 0.75 if i > 0 else 1.0
        x_adv_1 = np.clip(np.clip(x_adv + step_size * np.sign(grad), x - eps, x + eps), 0, 1)
        x_adv = np.clip(np.clip(x_adv + (x_adv_1 - x_adv) * a + grad2 * (1 - a), x - eps, x + eps), 0, 1)
        z, loss, grad = loss_and_grad(x_adv, y)
        pred = z.argmax(1) == y
        acc = acc & pred
        x_best_adv[~pred] = x_adv[~pred]
        loss_steps[i] = loss
        better = loss > loss_best
        x_best[better], grad_best[better], loss_best[better] = x_adv[better], grad[better], loss[better]
        counter3 += 1
        if counter3 == k:
            rises = sum((loss_steps[i - c] > loss_steps[i - c - 1]).astype(int) for c in range(k))
            fl = (rises <= k * 0.75) | (~reduced_last_check & (loss_best_last_check >= loss_best))
            reduced_last_check, loss_best_last_check = fl.copy(), loss_best.copy()
            step_size[fl] /= 2
            x_adv[fl], grad[fl] = x_best[fl], grad_best[fl]
            k = max(k - size_decr, n_iter_min)
            counter3 = 0
    return x_best, acc, loss_best, x_best_adv


def _reference(x, y, eps, steps, restarts, loss_and_grad, rng):
    """AutoAttack's perturb: restarts on the images still correctly classified. AutoAttack returns x
    for an image no restart fooled; the native attack returns its highest-loss point, kept here too."""
    acc = loss_and_grad(x, y)[0].argmax(1) == y
    best, best_loss = x.copy(), np.full(len(x), -np.inf, np.float32)
    for _ in range(restarts):
        todo = np.flatnonzero(acc)
        if todo.size == 0:
            break
        x_best, acc_run, loss_run, x_best_adv = _reference_single_run(
            x[todo], y[todo], eps, steps, loss_and_grad, rng
        )
        best[todo[~acc_run]] = x_best_adv[~acc_run]
        higher = acc_run & (loss_run > best_loss[todo])
        best[todo[higher]], best_loss[todo[higher]] = x_best[higher], loss_run[higher]
        acc[todo[~acc_run]] = False
    return best, acc


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def mlp():
    """A small tanh network: curved enough that the steps after the first matter."""
    rng = np.random.default_rng(3)
    features = int(np.prod(SHAPE))
    weights = [
        rng.normal(0, 1.0, (features, HIDDEN)).astype(np.float32),
        rng.normal(0, 0.5, HIDDEN).astype(np.float32),
        rng.normal(0, 1.0, (HIDDEN, CLASSES)).astype(np.float32),
        rng.normal(0, 0.1, CLASSES).astype(np.float32),
    ]
    model = keras.Sequential(
        [
            keras.Input(SHAPE),
            keras.layers.Flatten(),
            keras.layers.Dense(HIDDEN, activation="tanh"),
            keras.layers.Dense(CLASSES, activation="softmax"),
        ]
    )
    model.layers[1].set_weights(weights[:2])
    model.layers[2].set_weights(weights[2:])
    x = rng.random((40, *SHAPE), dtype=np.float32)
    y = _forward(x, weights)[0].argmax(1)  # every image correctly classified at first
    return model, weights, x, y


def _native_evaluate(attack, model):
    return attack._functions(model, tf.TensorShape((None, *SHAPE)), tf.TensorShape((None, CLASSES)))[0]


@pytest.mark.parametrize("loss_type", ["ce", "dlr"])
def test_the_loss_and_its_gradient_are_the_papers_formulas(mlp, loss_type):
    model, weights, x, y = mlp
    x = np.clip(x + np.random.default_rng(0).uniform(-0.2, 0.2, x.shape).astype(np.float32), 0, 1)
    loss, grad, standing = _native_evaluate(AutoPGD(loss_type), model)(tf.constant(x), tf.one_hot(y, CLASSES))
    z, expected_loss, expected_grad = (_dlr_and_grad if loss_type == "dlr" else _ce_and_grad)(x, y, weights)
    np.testing.assert_allclose(loss.numpy(), expected_loss, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        grad.numpy(), expected_grad, rtol=1e-3, atol=1e-5 * np.abs(expected_grad).max()
    )
    np.testing.assert_array_equal(standing.numpy(), z.argmax(1) == y)
    assert 0 < standing.numpy().sum() < len(x)  # both kinds of image are in the case


@pytest.mark.parametrize(
    ("loss_type", "restarts", "eps"), [("ce", 1, 0.03), ("dlr", 1, 0.03), ("ce", 3, 0.02), ("dlr", 2, 0.05)]
)
def test_matches_autoattacks_loop_image_for_image(mlp, loss_type, restarts, eps):
    # The loop is the reference's own; the loss and gradient come from the native attack's compiled
    # function (checked against the formulas above), so float rounding cannot split the two searches.
    model, weights, x, y = mlp
    attack = AutoPGD(loss_type, steps=30, restarts=restarts, seed=7)
    evaluate = _native_evaluate(attack, model)

    def oracle(x_, y_):
        loss, grad, _ = evaluate(tf.constant(x_), tf.one_hot(y_, CLASSES))
        return _forward(x_, weights)[0], loss.numpy(), grad.numpy()

    expected, standing = _reference(x, y, eps, 30, restarts, oracle, np.random.default_rng(7))
    assert 0 < standing.sum() < len(x)  # the case tells fooled and unfooled images apart
    got = attack(model, x, y, eps=eps)
    fooled = model.predict(got, verbose=0).argmax(1) != y
    np.testing.assert_array_equal(fooled, ~standing)
    np.testing.assert_array_equal(got[standing], expected[standing])


def test_restarts_go_on_while_a_single_image_stands(mlp):
    model, weights, x, y = mlp
    attack = AutoPGD("ce", steps=10, restarts=3, seed=5)
    evaluate = _native_evaluate(attack, model)

    def oracle(x_, y_):
        loss, grad, _ = evaluate(tf.constant(x_), tf.one_hot(y_, CLASSES))
        return _forward(x_, weights)[0], loss.numpy(), grad.numpy()

    for i in range(len(x)):  # the first image that survives all three restarts alone
        expected, standing = _reference(
            x[i : i + 1], y[i : i + 1], 0.02, 10, 3, oracle, np.random.default_rng(5)
        )
        if standing[0]:
            break
    else:
        pytest.fail("no image survives: make the case harder")
    np.testing.assert_array_equal(attack(model, x[i : i + 1], y[i : i + 1], eps=0.02), expected)


def test_checkpoints_are_autoattacks():
    for steps in (1, 10, 30, 100, 250):
        k, n_min, decr = max(int(0.22 * steps), 1), max(int(0.06 * steps), 1), max(int(0.03 * steps), 1)
        expected, counter = {}, 0
        for i in range(steps):
            counter += 1
            if counter == k:
                expected[i] = k
                k, counter = max(k - decr, n_min), 0
        assert checkpoints(steps) == expected
    assert list(checkpoints(100)) == [21, 40, 56, 69, 79, 86, 92, 98]


# ---------------------------------------------------------------------------------------------- bookkeeping
class _Scripted:
    """A 'model' whose verdicts follow a script: image 0 is fooled at step 3 (call 4) only, image 1 never."""

    def __init__(self):
        self.calls, self.batches = 0, []

    def evaluate(self, x, y):
        loss = tf.reduce_sum(x, axis=[1, 2, 3])
        n = int(x.shape[0])  # call 0 is the start; step i is call i + 1
        self.batches.append(n)
        standing = tf.constant([self.calls != 4, True] if n == 2 else [True] * n)
        self.calls += 1
        return loss, tf.ones_like(x), standing

    def step(self, x, y, x_adv, x_previous, grad, step_size, momentum, eps):
        x_next = tf.clip_by_value(x_adv + step_size * tf.sign(grad), x - eps, x + eps)
        return (x_next, *self.evaluate(x_next, y))


def test_an_image_fooled_mid_run_counts_as_fooled_with_the_iterate_that_fooled_it():
    # ART's APGD keeps only the last iterate: image 0 would count as robust there.
    scripted = _Scripted()
    x = tf.zeros((2, 2, 2, 1))
    run = Run(scripted.evaluate, scripted.step, x, tf.zeros((2, 3)), x, 0.5)
    result, fooled, _ = run.search(10)
    np.testing.assert_array_equal(fooled, [True, False])
    # Steps of 2 eps from 0, clipped to the ball: step 3's iterate is at +eps everywhere.
    np.testing.assert_allclose(result[0], np.full((2, 2, 1), 0.5))
    assert scripted.batches == [2] * 5 + [1] * 6  # image 0 left the batch; image 1 took every step


class _ScriptedLosses:
    """A 'model' whose losses follow a table (one row per call, one column per image), never fooled;
    it notes the step sizes each step is taken with."""

    def __init__(self, rows):
        self.rows, self.calls, self.step_sizes = rows, 0, []

    def evaluate(self, x, y):
        loss = tf.constant(self.rows[min(self.calls, len(self.rows) - 1)], tf.float32)
        self.calls += 1
        return loss, tf.ones_like(x), tf.ones(int(x.shape[0]), tf.bool)

    def step(self, x, y, x_adv, x_previous, grad, step_size, momentum, eps):
        self.step_sizes.append(step_size.numpy().reshape(-1))
        return (x_adv, *self.evaluate(x_adv, y))


def test_the_first_check_halves_as_autoattack_does():
    # 10 steps: the first check comes after step 1 and counts the rises of steps 0 and 1. Image 0's
    # loss fell from its start (10 -> 1) and rose (-> 2); step 0 counts as a rise because AutoAttack
    # compares it with its history's unwritten last row (0). Two rises of two: kept, and a first check
    # does not halve for "no improvement on the start". Image 1 rose twice from its start (-10 -> -5
    # -> -4), but -5 is below that 0: one rise of two (<= 0.75): halved.
    x = tf.zeros((2, 2, 2, 1))
    scripted = _ScriptedLosses([[10.0, -10.0], [1.0, -5.0], [2.0, -4.0]])
    Run(scripted.evaluate, scripted.step, x, tf.zeros((2, 3)), x, 0.25).search(10)
    np.testing.assert_array_equal(scripted.step_sizes[1], [0.5, 0.5])  # before the check
    np.testing.assert_array_equal(scripted.step_sizes[2], [0.5, 0.25])
    # The next check (after step 2, span 1): image 0 did not rise (2 -> 2) and has not beaten its start
    # since a check that kept its step: halved; image 1, halved last time, did not rise either: halved.
    np.testing.assert_array_equal(scripted.step_sizes[3], [0.25, 0.125])


# ---------------------------------------------------------------------------------------------- invariants
@pytest.fixture(scope="module")
def small_cnn():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(CLASSES, activation="softmax"),
        ]
    )
    x = np.random.default_rng(0).random((20, 8, 8, 3), dtype=np.float32)
    return model, x, model.predict(x, verbose=0).argmax(1)


@pytest.mark.parametrize("loss_type", ["ce", "dlr"])
def test_budget_range_shape_and_dtype_hold_at_every_eps(small_cnn, loss_type):
    model, x, y = small_cnn
    epsilons = [0.0, 0.01, 0.1]
    out = AutoPGD(loss_type, steps=8, seed=1)(model, x, y, eps=epsilons)
    assert out.shape == (3, *x.shape) and out.dtype == x.dtype
    for eps, x_adv in zip(epsilons, out):
        assert np.abs(x_adv - x).max() <= eps + 1e-6
        assert x_adv.min() >= 0 and x_adv.max() <= 1
    np.testing.assert_array_equal(out[0], x)


def test_a_larger_budget_fools_at_least_as_many_and_the_seed_repeats(small_cnn):
    model, x, y = small_cnn
    attack = AutoPGD(steps=20, seed=4)
    first, again = attack(model, x, y, eps=[0.02, 0.3]), attack(model, x, y, eps=[0.02, 0.3])
    np.testing.assert_array_equal(first, again)
    fooled = [(model.predict(xe, verbose=0).argmax(1) != y).sum() for xe in first]
    assert fooled[1] >= fooled[0] and fooled[1] > 0


def test_every_eps_attacks_every_image_however_the_smaller_ones_went(small_cnn):
    model, x, y = small_cnn
    small, large = AutoPGD(steps=10, seed=0)(model, x, y, eps=[0.03, 0.5])
    fooled_small = model.predict(small, verbose=0).argmax(1) != y
    assert 0 < fooled_small.sum() < len(x)
    assert (model.predict(large, verbose=0).argmax(1) != y).all()


def test_images_already_misclassified_come_back_unchanged(small_cnn):
    model, x, y = small_cnn
    wrong = (y + 1) % CLASSES
    labels = np.where(np.arange(len(y)) % 2 == 0, y, wrong)  # every other image is already "fooled"
    out = AutoPGD(steps=5, seed=0)(model, x, labels, eps=0.2)
    np.testing.assert_array_equal(out[1::2], x[1::2])
    assert not np.array_equal(out[0::2], x[0::2])


def test_inputs_of_any_rank():
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(3)]
    )
    x = np.random.default_rng(2).random((12, 5), dtype=np.float32)
    y = model.predict(x, verbose=0).argmax(1)
    x_adv = AutoPGD("dlr", steps=10, seed=0)(model, x, y, eps=0.3)
    assert x_adv.shape == x.shape and np.abs(x_adv - x).max() <= 0.3 + 1e-6
    assert (model.predict(x_adv, verbose=0).argmax(1) != y).any()


def test_targeted_reaches_the_targets(small_cnn):
    model, x, y = small_cnn
    targets = (y + 1) % CLASSES
    x_adv = AutoPGD(steps=30, seed=0, targeted=True)(model, x, targets, eps=0.5)
    reached = model.predict(x_adv, verbose=0).argmax(1) == targets
    assert reached.mean() > 0.8


def test_inference_mode_dropout_changes_nothing(small_cnn):
    model, x, y = small_cnn
    with_dropout = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Dropout(0.9), model])
    np.testing.assert_array_equal(
        AutoPGD(steps=5, seed=2)(with_dropout, x, y, eps=0.05),
        AutoPGD(steps=5, seed=2)(model, x, y, eps=0.05),
    )


def test_one_trace_per_function_however_the_batch_shrinks(small_cnn):
    model, x, y = small_cnn
    attack = AutoPGD(steps=10, seed=0)
    attack(model, x, y, eps=0.2)
    attack(model, x[:7], y[:7], eps=0.3)
    evaluate, step = attack._functions(model, tf.TensorShape((None, 8, 8, 3)), tf.TensorShape((None, 3)))
    assert evaluate.experimental_get_tracing_count() == 1
    assert step.experimental_get_tracing_count() == 1


def test_a_one_unit_sigmoid_model_takes_ce_and_refuses_dlr():
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(1, activation="sigmoid")]
    )
    x = np.random.default_rng(1).random((16, 4, 4, 1), dtype=np.float32)
    y = (model.predict(x, verbose=0)[:, 0] > 0.5).astype(int)
    x_adv = AutoPGD(steps=20, restarts=2, seed=0)(model, x, y, eps=1.0)  # all fall in the first run
    assert ((model.predict(x_adv, verbose=0)[:, 0] > 0.5).astype(int) != y).all()
    with pytest.raises(AttackError, match="at least 3 classes"):
        AutoPGD("dlr", steps=2)(model, x, y, eps=0.1)


def test_defaults_are_autoattacks():
    attack = AutoPGD()
    assert (attack.loss_type, attack.steps, attack.restarts, attack.seed) == ("ce", 100, 1, None)


def test_an_unseeded_attack_draws_from_numpys_generator(small_cnn):
    model, x, y = small_cnn
    runs = []
    for _ in range(2):
        np.random.seed(3)
        runs.append(AutoPGD(steps=3)(model, x, y, eps=0.05))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], AutoPGD(steps=3)(model, x, y, eps=0.05))


def test_a_hidden_gradient_leaves_the_random_start_where_it_is(small_cnn):
    # Zeros, not None, where the input does not reach the loss: no crash, and no move (a zero
    # gradient has sign 0, even a -0.0 one), so the images stay exactly at their random start.
    model, x, y = small_cnn
    hidden = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Lambda(tf.stop_gradient), model])
    out = AutoPGD(steps=5, seed=0)(hidden, x, y, eps=0.05)
    t = 2 * np.random.default_rng(0).random(x.shape, dtype=np.float32) - 1  # AutoAttack's start, seed 0
    start = np.clip(x + 0.05 * t / np.abs(t.reshape(len(t), -1)).max(1).reshape(-1, 1, 1, 1), 0, 1)
    np.testing.assert_allclose(out, start, atol=1e-6)


def test_a_model_of_any_image_size(small_cnn):
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(CLASSES),
        ]
    )
    attack = AutoPGD(steps=3, seed=0)
    for shape in ((8, 8, 3), (12, 8, 3), (12, 10, 3)):
        x = np.random.default_rng(0).random((4, *shape), dtype=np.float32)
        assert attack(model, x, model.predict(x, verbose=0).argmax(1), eps=0.1).shape == x.shape


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"norm": 2}, r"use robustmask\.attacks\.ARTAutoPGD\(norm=2\) \(registry name 'art-autopgd'\)$"),
        ({"loss_type": "hinge"}, r"^AutoPGD: loss_type must be 'ce' or 'dlr', got 'hinge'$"),
        (
            {"loss_type": "dlr", "targeted": True},
            r"^AutoPGD\(loss_type='dlr'\) is untargeted \(AutoAttack's targeted DLR needs the true labels as "
            r"well as the targets\); use loss_type='ce' for a targeted attack$",
        ),
        ({"steps": 0}, r"^steps "),
        ({"restarts": 0}, r"^restarts "),
        ({"seed": -1}, "seed"),
    ],
)
def test_refusals_name_the_problem(kwargs, message):
    with pytest.raises(AttackError, match=message):
        AutoPGD(**kwargs)
