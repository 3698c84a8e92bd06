"""FGSM (Algorithm 1) against independent computations, its invariants, and bad input."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import robustmask
from robustmask.attacks import BIM, FGSM, GradientAttack
from robustmask.errors import AttackError, DataError, ModelError


@pytest.fixture(scope="module")
def linear_model():
    """softmax(W x + b) on flattened 4x4x3 images: its input gradient has a closed form."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")]
    )
    return model


def closed_form_gradient(model, x, y):
    """d CE / d x = W (p - onehot(y)) of the linear model, per flattened image, in NumPy (float64)."""
    w, b = (np.asarray(v, np.float64) for v in model.layers[-1].get_weights())
    flat = x.reshape(len(x), -1).astype(np.float64)
    z = flat @ w + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return (p - np.eye(3)[y]) @ w.T


def closed_form_fgsm(model, x, y, eps, clip=True):
    """x + eps * sign(d CE / d x), in NumPy."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    adv = flat + eps * np.sign(closed_form_gradient(model, x, y))
    if clip:
        adv = np.clip(adv, 0, 1)
    return adv.reshape(x.shape)


def test_fgsm_equals_closed_form_on_a_linear_model(linear_model):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (20, 4, 4, 3)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    adv = FGSM()(linear_model, x, y, eps=0.05)
    np.testing.assert_allclose(adv, closed_form_fgsm(linear_model, x, y, 0.05), atol=1e-6)


def test_run_the_single_eps_path_equals_closed_form(linear_model):
    """`FGSM.run` (one eps: what the base class's generic eps loop calls; `run_many` is FGSM's own
    shortcut) against the closed form. `run` itself neither projects nor clips (the base class does)."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (12, 4, 4, 3)).astype(np.float32)
    y = rng.integers(0, 3, 12)
    x_t, y_t = tf.constant(x), tf.one_hot(y, 3)
    fgsm = FGSM()
    for eps in (0.0, 0.01, 0.3):
        out = fgsm.run(linear_model, x_t, y_t, tf.constant(eps, tf.float32))
        assert isinstance(out, tf.Tensor) and out.shape == x.shape
        np.testing.assert_allclose(
            out.numpy(), closed_form_fgsm(linear_model, x, y, eps, clip=False), atol=1e-6
        )
    # run leaves [0, 1] at eps 0.3 here (no clipping of its own)
    assert out.numpy().min() < 0.0 or out.numpy().max() > 1.0
    # compiled, as the base class runs it
    compiled = tf.function(lambda x, y, eps: fgsm.run(linear_model, x, y, eps))
    np.testing.assert_allclose(
        compiled(x_t, y_t, tf.constant(0.05)).numpy(),
        closed_form_fgsm(linear_model, x, y, 0.05, clip=False),
        atol=1e-6,
    )


def test_fgm_steps_along_the_normalised_gradient_and_passes_its_settings_on(linear_model):
    """FGM (L2): ``x + eps * g / ||g||_2`` per image against the closed-form gradient, through `run`
    (what the base class's eps loop and `perturb` call) and through the call. ``clip=None`` reaches the
    base class (the images leave [0, 1]); a custom ``loss`` and ``targeted`` reach it too: the negated
    cross-entropy, or the targeted attack, step the other way."""
    from robustmask.attacks import FGM

    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, (10, 4, 4, 3)).astype(np.float32)
    y = rng.integers(0, 3, 10)
    flat = x.reshape(len(x), -1).astype(np.float64)
    gradient = closed_form_gradient(linear_model, x, y)
    unit = gradient / np.linalg.norm(gradient, axis=1, keepdims=True)
    eps = 2.0
    up, down = ((flat + sign * eps * unit).reshape(x.shape) for sign in (1, -1))

    ran = FGM(clip=None).run(linear_model, tf.constant(x), tf.one_hot(y, 3), tf.constant(eps))
    np.testing.assert_allclose(ran.numpy(), up, atol=1e-5)
    called = FGM(clip=None)(linear_model, x, y, eps=eps)
    np.testing.assert_allclose(called, up, atol=1e-5)
    assert called.min() < 0.0 or called.max() > 1.0
    np.testing.assert_allclose(FGM()(linear_model, x, y, eps=eps), np.clip(up, 0, 1), atol=1e-5)

    negated = FGM(clip=None, loss=lambda onehot, log_probs: tf.reduce_sum(onehot * log_probs, -1))
    np.testing.assert_allclose(negated(linear_model, x, y, eps=eps), down, atol=1e-5)
    np.testing.assert_allclose(FGM(clip=None, targeted=True)(linear_model, x, y, eps=eps), down, atol=1e-5)


class _LoopingFGSM(FGSM):
    """FGSM without its `run_many` shortcut: the base class loops over the epsilons calling `run`."""

    run_many = GradientAttack.run_many


def test_run_through_the_base_class_eps_loop(linear_model, tiny_model, tiny_logits_model, tiny_data):
    """The whole public path over `FGSM.run` (eps loop, projection, clipping, batching) against the closed
    form on the linear model and an independent tape over the logits twin on the CNN."""
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (10, 4, 4, 3)).astype(np.float32)
    y = rng.integers(0, 3, 10)
    epsilons = [0.0, 0.02, 0.3]
    swept = _LoopingFGSM(batch_size=4)(linear_model, x, y, eps=epsilons)
    for i, eps in enumerate(epsilons):
        np.testing.assert_allclose(swept[i], closed_form_fgsm(linear_model, x, y, eps), atol=1e-6)
    np.testing.assert_allclose(
        _LoopingFGSM(clip=None)(linear_model, x, y, eps=0.3),
        closed_form_fgsm(linear_model, x, y, 0.3, clip=False),
        atol=1e-6,
    )

    images, labels = tiny_data[0][:24], tiny_data[1][:24]
    x_t = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        loss = tf.nn.softmax_cross_entropy_with_logits(tf.one_hot(labels, 3), tiny_logits_model(x_t))
    sign = np.sign(tape.gradient(loss, x_t).numpy())
    for eps in (0.01, 0.05):
        single = _LoopingFGSM()(tiny_model, images, labels, eps=eps)
        assert np.mean(np.abs(single - np.clip(images + eps * sign, 0, 1)) > 1e-6) < 1e-3
        np.testing.assert_allclose(single, FGSM()(tiny_model, images, labels, eps=eps), atol=1e-6)


def test_fgsm_equals_gradient_tape_reference_on_logits(tiny_model, tiny_logits_model, tiny_data):
    """The softmax model, attacked, equals an independent tape over the logits twin."""
    x, y = tiny_data
    x_t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        loss = tf.nn.softmax_cross_entropy_with_logits(tf.one_hot(y, 3), tiny_logits_model(x_t))
    reference = np.clip(x + 0.03 * np.sign(tape.gradient(loss, x_t).numpy()), 0, 1)
    for model in (tiny_model, tiny_logits_model):
        adv = FGSM()(model, x, y, eps=0.03)
        assert np.mean(np.abs(adv - reference) > 1e-6) < 1e-3


def test_confident_softmax_keeps_its_gradient(tiny_model, tiny_data):
    """Where p(true) > 1 - 1e-7, a loss on clipped probabilities has zero gradient; FGSM must not."""
    big = keras.models.clone_model(tiny_model)
    weights = tiny_model.get_weights()
    # Logit gaps of ~28: p(true) rounds to 1 in float32, the other classes stay ~1e-12 (representable).
    weights[-2], weights[-1] = weights[-2] * 4.0, weights[-1] * 4.0
    big.set_weights(weights)
    x, y = tiny_data
    p = big.predict(x, verbose=0)
    assert np.mean(p[np.arange(len(y)), y] > 1 - 1e-7) > 0.5
    adv = FGSM()(big, x, y, eps=0.01)
    moved = np.abs(adv - x).reshape(len(x), -1).max(axis=1)
    assert np.all(moved > 0.005)


def test_multi_eps_equals_separate_calls(tiny_model, tiny_data):
    x, y = tiny_data
    epsilons = [0.0, 0.001, 0.01, 0.1]
    sweep = FGSM()(tiny_model, x, y, eps=epsilons)
    assert sweep.shape == (4,) + x.shape
    for i, eps in enumerate(epsilons):
        np.testing.assert_array_equal(sweep[i], FGSM()(tiny_model, x, y, eps=eps))
    np.testing.assert_array_equal(sweep[0], x)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(eps=st.floats(0.0, 0.5), seed=st.integers(0, 2**16), dtype=st.sampled_from([np.float32, np.float64]))
def test_invariants_linf_range_shape_dtype(tiny_model, eps, seed, dtype):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (5, 12, 12, 3)).astype(dtype)
    adv = FGSM()(tiny_model, x, rng.integers(0, 3, 5), eps=eps)
    assert adv.shape == x.shape and adv.dtype == x.dtype
    assert np.abs(adv.astype(np.float64) - x).max() <= eps + 1e-6
    assert adv.min() >= 0.0 and adv.max() <= 1.0


def test_clip_none_is_the_papers_exact_algorithm(linear_model):
    x = np.full((4, 4, 4, 3), 0.999, np.float32)
    x[:, :2] = 0.001
    y = np.array([0, 1, 2, 0])
    adv = FGSM(clip=None)(linear_model, x, y, eps=0.01)
    np.testing.assert_allclose(adv, closed_form_fgsm(linear_model, x, y, 0.01, clip=False), atol=1e-6)
    assert adv.max() > 1.0 or adv.min() < 0.0  # it really leaves [0, 1]


def test_labels_one_hot_equal_integer_and_none_uses_predictions(tiny_model, tiny_data):
    x, y = tiny_data
    fgsm = FGSM()
    np.testing.assert_array_equal(
        fgsm(tiny_model, x, np.eye(3)[y], eps=0.02), fgsm(tiny_model, x, y, eps=0.02)
    )
    predicted = np.argmax(tiny_model.predict(x, verbose=0), axis=1)
    np.testing.assert_array_equal(
        fgsm(tiny_model, x, None, eps=0.02), fgsm(tiny_model, x, predicted, eps=0.02)
    )


def test_from_logits_override_and_detection(tiny_model, tiny_logits_model, tiny_data):
    x, y = tiny_data
    info = robustmask.modelinfo.inspect_model(tiny_logits_model)
    assert info.output == "logits" and info.num_classes == 3
    assert robustmask.modelinfo.inspect_model(tiny_model).output == "probabilities"
    # The override is honoured: declared logits are put through log-softmax once more.
    x_t, y_t = tf.constant(x[:8]), tf.one_hot(y[:8], 3)
    p = tiny_model.predict(x[:8], verbose=0).astype(np.float64)
    detected = FGSM().objective(tiny_model, x_t, y_t).numpy()
    declared = FGSM(from_logits=True).objective(tiny_model, x_t, y_t).numpy()
    np.testing.assert_allclose(detected, -np.log(p[np.arange(8), y[:8]]), rtol=1e-4, atol=1e-6)
    log_softmax_of_p = p - np.log(np.exp(p).sum(1, keepdims=True))
    np.testing.assert_allclose(declared, -log_softmax_of_p[np.arange(8), y[:8]], rtol=1e-5)


def test_two_class_and_single_sigmoid_models(binary_model, binary_data):
    x, y = binary_data
    adv = FGSM()(binary_model, x, y, eps=0.2)
    accuracy = np.mean(np.argmax(binary_model.predict(adv, verbose=0), 1) == y)
    assert accuracy < np.mean(np.argmax(binary_model.predict(x, verbose=0), 1) == y)
    # A one-unit sigmoid model is a 2-class model: labels 0/1, class 1 scored by the unit.
    sigmoid = keras.Sequential(
        [keras.Input((12, 12, 3)), keras.layers.Flatten(), keras.layers.Dense(1, activation="sigmoid")]
    )
    info = robustmask.modelinfo.inspect_model(sigmoid)
    assert info.single_unit and info.num_classes == 2
    w, b = (np.asarray(v, np.float64) for v in sigmoid.get_weights())
    p = 1 / (1 + np.exp(-(x.reshape(len(x), -1) @ w + b)))[:, 0]
    # d CE / d x = (p - y) w for a sigmoid unit.
    expected = np.clip(x + 0.01 * np.sign((p - y)[:, None] * w[:, 0][None]).reshape(x.shape), 0, 1)
    np.testing.assert_allclose(FGSM()(sigmoid, x, y, eps=0.01), expected, atol=1e-6)


def test_any_input_size_the_model_accepts():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    for size in (16, 24):
        x = np.random.default_rng(size).uniform(0, 1, (3, size, size, 3)).astype(np.float32)
        assert FGSM()(model, x, [0, 1, 2], eps=0.01).shape == x.shape


def test_batching_does_not_change_the_result(tiny_model, tiny_data):
    x, y = tiny_data
    np.testing.assert_array_equal(
        FGSM(batch_size=7)(tiny_model, x, y, eps=0.02), FGSM()(tiny_model, x, y, eps=0.02)
    )


def test_attack_does_not_modify_its_inputs(tiny_model, tiny_data):
    x, y = tiny_data
    x_copy, y_copy = x.copy(), y.copy()
    FGSM()(tiny_model, x, y, eps=0.1)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(y, y_copy)


def test_fgsm_lowers_accuracy(tiny_model, tiny_data):
    x, y = tiny_data
    adv = FGSM()(tiny_model, x, y, eps=0.15)
    assert np.mean(np.argmax(tiny_model.predict(adv, verbose=0), 1) == y) < 0.7


@pytest.mark.parametrize(
    "eps, message",
    [
        (-0.1, "eps must be >= 0"),
        (float("nan"), "eps must be finite"),
        (float("inf"), "eps must be finite"),
        ([], "empty"),
        ("big", "eps must be"),
        (None, "needs eps"),
    ],
)
def test_bad_eps(tiny_model, tiny_data, eps, message):
    with pytest.raises(AttackError, match=message):
        FGSM()(tiny_model, tiny_data[0][:2], tiny_data[1][:2], eps=eps)


def test_bad_inputs(tiny_model, tiny_data):
    x, y = tiny_data[0][:4].copy(), tiny_data[1][:4]
    fgsm = FGSM()
    with pytest.raises(DataError, match=r"outside the valid range .*divide by 255"):
        fgsm(tiny_model, x * 255, y, eps=0.1)
    nan = x.copy()
    nan[2, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN/inf values \\(first in example 2\\)"):
        fgsm(tiny_model, nan, y, eps=0.1)
    with pytest.raises(DataError, match="label 3 but the model has 3 classes"):
        fgsm(tiny_model, x, [0, 1, 2, 3], eps=0.1)
    with pytest.raises(DataError, match="one-hot with 2 columns but the model has 3 classes"):
        fgsm(tiny_model, x, np.eye(2)[[0, 1, 0, 1]], eps=0.1)
    with pytest.raises(DataError, match="3 labels for 4 inputs"):
        fgsm(tiny_model, x, y[:3], eps=0.1)
    with pytest.raises(DataError, match=r"inputs of shape \(8, 8, 3\) but the model takes \(12, 12, 3\)"):
        fgsm(tiny_model, x[:, :8, :8], y, eps=0.1)
    with pytest.raises(DataError, match="numeric array"):
        fgsm(tiny_model, np.array([["a"]]), y, eps=0.1)
    with pytest.raises(AttackError, match="clip must be"):
        FGSM(clip=(1, 0))
    with pytest.raises(AttackError, match="loss must be None.* or a callable"):
        FGSM(loss="mse")
    with pytest.raises(ModelError, match="expected a Keras model"):
        fgsm("not a model", x, y, eps=0.1)
    with pytest.raises(AttackError, match="targeted: pass the target classes"):
        FGSM(targeted=True)(tiny_model, x, None, eps=0.1)


def test_targeted_fgsm_moves_towards_the_target(tiny_model, tiny_data):
    x, y = tiny_data
    target = (y + 1) % 3
    adv = FGSM(targeted=True)(tiny_model, x, target, eps=0.15)
    p_before = tiny_model.predict(x, verbose=0)[np.arange(len(y)), target]
    p_after = tiny_model.predict(adv, verbose=0)[np.arange(len(y)), target]
    assert np.mean(p_after > p_before) > 0.9


def test_generate_runs_inside_a_tf_function(tiny_model, tiny_data):
    x, y = tiny_data
    fgsm = FGSM()

    @tf.function
    def inside(x, y):
        return fgsm.generate(tiny_model, x, tf.one_hot(y, 3), [0.01, 0.02])

    out = inside(tf.constant(x), tf.constant(y))
    np.testing.assert_allclose(out.numpy(), fgsm(tiny_model, x, y, eps=[0.01, 0.02]), atol=1e-7)


def test_generate_takes_numpy_of_any_dtype_and_returns_float32(tiny_model, tiny_data):
    """Eagerly, `generate` converts a float64 batch, integer one-hot labels and float64 epsilons to the
    float32 its compiled function is traced for: the same adversarial batch as float32 inputs give."""
    x, y = tiny_data[0][:6], tiny_data[1][:6]
    bim = BIM(steps=2)
    expected = bim.generate(tiny_model, x.astype(np.float32), tf.one_hot(y, 3), [0.02, 0.05]).numpy()
    got = bim.generate(tiny_model, x.astype(np.float64), np.eye(3, dtype=np.int64)[y], np.array([0.02, 0.05]))
    assert got.dtype == tf.float32 and got.shape == (2, *x.shape)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)
    assert np.abs(expected[1] - x).max() > 0.04  # it moved
