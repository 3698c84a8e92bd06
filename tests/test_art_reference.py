"""robustmask's FGSM, BIM, PGD and MI-FGSM (native and ART adapters) against a reference that shares no
robustmask code.

The reference is ART's STOCK ``TensorFlowV2Classifier``, built here straight from the Keras logits model
with Keras' stock ``CategoricalCrossentropy(from_logits=True)``, and ART's stock attack classes
(``FastGradientMethod``, ``BasicIterativeMethod``, ``ProjectedGradientDescent``): no robustmask estimator,
model view or ``log_probabilities`` computes a gradient there. MI-FGSM (ART's NumPy implementation,
which robustmask's adapter forces) is checked against BIM for decay 0 and against an independent
NumPy/TensorFlow momentum loop (Dong et al. 2018) for decay 1.

robustmask attacks the softmax model AND its logits twin (same weights): on the softmax model it must
see through the softmax to the same logits, so both must equal the reference on the logits model.

Ties: a gradient component that is (nearly) zero can take either sign depending on float rounding in
the two loss graphs (Keras' batch-mean cross-entropy here, a per-example softmax cross-entropy in
robustmask). The logits model and a moderate eps make this rare (about 1 value in 7,000 in a 6-step run
here, none for FGSM); where it happens the value differs by at most one step each way. So a few values
(under 0.2%) may differ, by at most two steps; everything else must agree to 1e-6.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from art.attacks.evasion import BasicIterativeMethod, FastGradientMethod, ProjectedGradientDescent
from art.estimators.classification import TensorFlowV2Classifier

from robustmask.attacks import BIM, FGSM, PGD
from robustmask.attacks.art import ARTBIM, ARTFGSM, ARTPGD, MIFGSM

N = 16
TIE_FRACTION = 0.002


@pytest.fixture(scope="module")
def batch(tiny_data):
    x, y = tiny_data
    return x[:N], y[:N]


@pytest.fixture(scope="module")
def stock(tiny_logits_model):
    """ART's stock estimator over the logits model: Keras' own loss, ART's own gradient code."""
    return TensorFlowV2Classifier(
        model=tiny_logits_model,
        nb_classes=3,
        input_shape=tuple(tiny_logits_model.input_shape[1:]),
        loss_object=keras.losses.CategoricalCrossentropy(from_logits=True),
        clip_values=(0.0, 1.0),
    )


@pytest.fixture(params=["softmax", "logits"])
def model(request, tiny_model, tiny_logits_model):
    return tiny_model if request.param == "softmax" else tiny_logits_model


def onehot(y):
    return np.eye(3, dtype=np.float32)[y]


def assert_matches(got, reference, step, what):
    """Equal to 1e-6 but for sign ties (see the module docstring): a few values, at most two steps off."""
    got, reference = np.asarray(got, np.float64), np.asarray(reference, np.float64)
    assert got.shape == reference.shape
    difference = np.abs(got - reference)
    differ = difference > 1e-6
    assert differ.mean() <= TIE_FRACTION, (
        f"{what}: {differ.mean():.2%} of the values differ from the reference"
    )
    assert difference.max() <= 2 * step + 1e-6, (
        f"{what}: a value differs by {difference.max():.4g} (step {step:.4g})"
    )


def test_the_reference_moves_the_images(stock, batch, tiny_logits_model):
    """The stock reference is a working attack (so agreeing with it means something)."""
    x, y = batch
    adv = FastGradientMethod(stock, norm=np.inf, eps=0.05, batch_size=64).generate(x, onehot(y))
    np.testing.assert_allclose(np.abs(adv - x).max(), 0.05, atol=1e-6)
    assert np.mean(np.isclose(np.abs(adv - x), 0.05, atol=1e-6)) > 0.5
    loss = lambda images: tf.nn.softmax_cross_entropy_with_logits(  # noqa: E731
        onehot(y), tiny_logits_model(images, training=False)
    ).numpy()
    assert np.all(loss(adv) > loss(x))


# ---------------------------------------------------------------------------------------------- FGSM
@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_fgsm_native_and_art_equal_stock_art(targeted, model, stock, batch):
    x, y = batch
    labels = (y + 1) % 3 if targeted else y
    for eps in (0.01, 0.05):
        reference = FastGradientMethod(
            stock, norm=np.inf, eps=eps, targeted=targeted, batch_size=64
        ).generate(x, onehot(labels))
        assert_matches(FGSM(targeted=targeted)(model, x, labels, eps=eps), reference, eps, f"FGSM eps={eps}")
        assert_matches(
            ARTFGSM(targeted=targeted)(model, x, labels, eps=eps), reference, eps, f"ARTFGSM eps={eps}"
        )


def test_fgsm_single_and_many_eps_paths_equal_stock_art(tiny_logits_model, stock, batch):
    """`FGSM.run` (one eps, the base class's loop) and `run_many` (one gradient for all) both match."""
    x, y = batch
    fgsm = FGSM()
    epsilons = tf.constant([0.01, 0.03])
    x_t, y_t = tf.constant(x), tf.constant(onehot(y))
    many = fgsm.run_many(tiny_logits_model, x_t, y_t, epsilons).numpy()
    for i, eps in enumerate((0.01, 0.03)):
        reference = FastGradientMethod(stock, norm=np.inf, eps=eps, batch_size=64).generate(x, onehot(y))
        single = fgsm.run(tiny_logits_model, x_t, y_t, tf.constant(eps)).numpy()
        # run/run_many do not clip (the base class does afterwards); the reference clips to [0, 1].
        assert_matches(np.clip(single, 0, 1), reference, eps, f"FGSM.run eps={eps}")
        assert_matches(np.clip(many[i], 0, 1), reference, eps, f"FGSM.run_many eps={eps}")


# ---------------------------------------------------------------------------------------------- BIM / PGD
STEPS = [1, 2, 5]


@pytest.mark.parametrize("steps", STEPS)
def test_bim_native_art_and_mifgsm_without_momentum_equal_stock_art_bim(steps, model, stock, batch):
    x, y = batch
    eps = 0.05
    step = 1.25 * eps / steps
    reference = BasicIterativeMethod(
        stock, eps=eps, eps_step=step, max_iter=steps, batch_size=64, verbose=False
    ).generate(x, onehot(y))
    assert np.abs(reference - x).max() > 0.9 * min(eps, steps * step)  # it moved
    assert_matches(BIM(steps=steps)(model, x, y, eps=eps), reference, step, f"BIM steps={steps}")
    assert_matches(ARTBIM(steps=steps)(model, x, y, eps=eps), reference, step, f"ARTBIM steps={steps}")
    # MI-FGSM with decay 0 keeps no momentum: it is BIM with its step (given here as BIM's).
    mifgsm = MIFGSM(steps=steps, decay=0.0, rel_stepsize=1.25 / steps)
    assert_matches(mifgsm(model, x, y, eps=eps), reference, step, f"MIFGSM(decay=0) steps={steps}")


@pytest.mark.parametrize("steps", STEPS)
def test_pgd_without_random_start_native_and_art_equal_stock_art_pgd(steps, model, stock, batch):
    x, y = batch
    eps = 0.05
    step = 2.5 * eps / steps
    reference = ProjectedGradientDescent(
        stock,
        norm=np.inf,
        eps=eps,
        eps_step=step,
        max_iter=steps,
        num_random_init=0,
        batch_size=64,
        verbose=False,
    ).generate(x, onehot(y))
    native = PGD(steps=steps, random_start=False)(model, x, y, eps=eps)
    assert_matches(native, reference, step, f"PGD steps={steps}")
    art = ARTPGD(steps=steps, random_start=False)(model, x, y, eps=eps)
    assert_matches(art, reference, step, f"ARTPGD steps={steps}")


def test_bim_and_pgd_with_absolute_steps_equal_stock_art(tiny_model, stock, batch):
    x, y = batch
    eps, step, steps = 0.04, 0.006, 4
    reference = ProjectedGradientDescent(
        stock,
        norm=np.inf,
        eps=eps,
        eps_step=step,
        max_iter=steps,
        num_random_init=0,
        batch_size=64,
        verbose=False,
    ).generate(x, onehot(y))
    assert_matches(BIM(steps=steps, abs_stepsize=step)(tiny_model, x, y, eps=eps), reference, step, "BIM abs")
    assert_matches(
        ARTBIM(steps=steps, abs_stepsize=step)(tiny_model, x, y, eps=eps), reference, step, "ARTBIM abs"
    )
    assert_matches(
        PGD(steps=steps, abs_stepsize=step, random_start=False)(tiny_model, x, y, eps=eps),
        reference,
        step,
        "PGD abs",
    )


# ---------------------------------------------------------------------------------------------- MI-FGSM
def momentum_reference(logits_model, x, y, eps, step, steps, decay):
    """Dong et al. (2018), Algorithm 1, in NumPy around a plain GradientTape over the logits model:
    g <- decay * g + grad / ||grad||_1 (per image); x <- clip_[0,1](clip_{x,eps}(x + step * sign(g)))."""
    labels = tf.constant(onehot(y))
    x_adv, velocity = x.astype(np.float32), np.zeros_like(x, np.float32)
    for _ in range(steps):
        x_t = tf.constant(x_adv)
        with tf.GradientTape() as tape:
            tape.watch(x_t)
            loss = tf.nn.softmax_cross_entropy_with_logits(labels, logits_model(x_t, training=False))
        grad = tape.gradient(loss, x_t).numpy()
        l1 = np.abs(grad).reshape(len(x), -1).sum(axis=1).reshape((-1,) + (1,) * (x.ndim - 1))
        velocity = decay * velocity + grad / np.where(l1 > 0, l1, np.inf)
        x_adv = np.clip(np.clip(x_adv + step * np.sign(velocity), x - eps, x + eps), 0.0, 1.0)
    return x_adv


@pytest.mark.parametrize("steps", [1, 3, 6])
def test_mifgsm_equals_an_independent_momentum_loop(steps, model, tiny_logits_model, batch):
    x, y = batch
    eps = 0.05
    step = eps / steps  # MIFGSM's documented default: the paper's alpha = eps / T
    reference = momentum_reference(tiny_logits_model, x, y, eps, step, steps, decay=1.0)
    assert_matches(MIFGSM(steps=steps)(model, x, y, eps=eps), reference, step, f"MIFGSM steps={steps}")
    if steps > 1:  # momentum matters: the loop without it is another attack
        without = momentum_reference(tiny_logits_model, x, y, eps, step, steps, decay=0.0)
        assert np.mean(np.abs(without - reference) > 1e-6) > 0.01
