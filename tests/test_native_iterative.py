"""BIM and PGD: the L-inf contract, equivalences, strength against FGSM, targeted mode, restarts."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from robustmask.attacks import BIM, FGSM, PGD
from robustmask.errors import AttackError

STRONG = 0.1  # FGSM leaves ~15% accuracy on the fixture model here; iterative attacks ~0%


def accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))


def losses(model, x, y):
    p = model.predict(x, verbose=0).astype(np.float64)
    return -np.log(np.maximum(p[np.arange(len(y)), y], 1e-30))


def logit_losses(logits_model, x, y):
    """Cross-entropy from the logits in float64: no saturation, unlike ``losses``."""
    z = logits_model.predict(x, verbose=0).astype(np.float64)
    z -= z.max(1, keepdims=True)
    return np.log(np.exp(z).sum(1)) - z[np.arange(len(y)), y]


ATTACKS = [pytest.param(lambda: BIM(), id="bim"), pytest.param(lambda: PGD(steps=10, seed=0), id="pgd")]


@pytest.mark.parametrize("make", ATTACKS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linf_ball_clip_range_shape_and_dtype(make, dtype, tiny_model, tiny_data):
    x, y = tiny_data
    x = x[:48].astype(dtype)
    x_adv = make()(tiny_model, x, y[:48], eps=0.05)
    assert x_adv.shape == x.shape and x_adv.dtype == dtype
    assert np.abs(x_adv - x).max() <= 0.05 + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert np.abs(x_adv - x).max() > 0.04  # it did move


@pytest.mark.parametrize("make", ATTACKS)
def test_eps_sweep_equals_separate_calls(make, tiny_model, tiny_data):
    x, y = tiny_data[0][:32], tiny_data[1][:32]
    epsilons = [0.0, 0.03, 0.1]
    sweep = make()(tiny_model, x, y, eps=epsilons)
    assert sweep.shape == (3,) + x.shape
    for i, eps in enumerate(epsilons):
        np.testing.assert_allclose(sweep[i], make()(tiny_model, x, y, eps=eps), atol=1e-6)
    np.testing.assert_array_equal(sweep[0], x)  # eps 0 leaves the images alone


def test_bim_one_full_step_is_fgsm(tiny_model, tiny_data):
    x, y = tiny_data
    bim = BIM(steps=1, rel_stepsize=1.0)
    for eps in (0.02, 0.1):
        np.testing.assert_array_equal(bim(tiny_model, x, y, eps=eps), FGSM()(tiny_model, x, y, eps=eps))
    np.testing.assert_array_equal(
        BIM(steps=1, abs_stepsize=0.02)(tiny_model, x, y, eps=0.02), FGSM()(tiny_model, x, y, eps=0.02)
    )


@pytest.mark.parametrize("attack", [BIM(), PGD(steps=20, seed=0)], ids=["bim", "pgd"])
def test_at_least_as_strong_as_fgsm(attack, tiny_model, tiny_data):
    x, y = tiny_data
    fgsm_accuracy = accuracy(tiny_model, FGSM()(tiny_model, x, y, eps=STRONG), y)
    assert fgsm_accuracy < 0.5
    assert accuracy(tiny_model, attack(tiny_model, x, y, eps=STRONG), y) <= fgsm_accuracy


@pytest.mark.parametrize("cls", [BIM, PGD])
def test_targeted_reaches_targets_more_often_than_chance(cls, tiny_model, tiny_data):
    x, y = tiny_data
    targets = (y + 1) % 3
    kwargs = {"seed": 0, "steps": 20} if cls is PGD else {}
    x_adv = cls(targeted=True, **kwargs)(tiny_model, x, targets, eps=0.15)
    reached = np.mean(np.argmax(tiny_model.predict(x_adv, verbose=0), axis=1) == targets)
    assert reached > 0.6, reached  # chance is 1/3; clean the model predicts the target for none


def test_pgd_restarts_never_weaker(tiny_model, tiny_data):
    x, y = tiny_data
    eps = 0.07
    one = PGD(steps=10, seed=3)(tiny_model, x, y, eps=eps)
    many = PGD(steps=10, seed=3, restarts=4)(tiny_model, x, y, eps=eps)
    assert np.abs(many - x).max() <= eps + 1e-6
    assert not np.array_equal(many, one)
    fooled_one = np.argmax(tiny_model.predict(one, verbose=0), 1) != y
    fooled_many = np.argmax(tiny_model.predict(many, verbose=0), 1) != y
    assert np.all(fooled_many >= fooled_one)
    same = fooled_many == fooled_one
    assert np.all(losses(tiny_model, many, y)[same] >= losses(tiny_model, one, y)[same] - 1e-4)


@pytest.mark.parametrize(
    "targeted, dropout, eps",
    [(False, False, 0.07), (False, True, 0.07), (True, False, 0.1)],
    ids=["untargeted", "dropout-after-softmax", "targeted"],
)
def test_restart_r_starts_from_draw_r_and_the_best_restart_is_kept_per_image(
    tiny_model, tiny_logits_model, tiny_data, targeted, dropout, eps
):
    """Independently of `run`'s loop: restart r is `iterate` from `start(x, eps, r)`; with one restart
    PGD returns restart 0; with two, per image, a restart that succeeds (fools the model; targeted:
    reaches the target) over one that does not, else the one with the larger objective (the loss;
    targeted: minus the target's loss), judged in inference mode (a Dropout after the softmax, active
    in training mode, must not change the choice). At these eps the data holds every case."""
    import keras

    x, y = tiny_data
    labels = (y + 1) % 3 if targeted else y
    model = keras.Sequential([tiny_model, keras.layers.Dropout(0.9)]) if dropout else tiny_model
    x_t, onehot = tf.constant(x), tf.one_hot(labels, 3)
    pgd = PGD(steps=1, seed=5, restarts=2, targeted=targeted)
    runs = [pgd.iterate(model, pgd.start(x_t, eps, r), x_t, onehot, eps).numpy() for r in (0, 1)]
    one = PGD(steps=1, seed=5, targeted=targeted)
    np.testing.assert_allclose(one(model, x, labels, eps=eps), runs[0], atol=1e-6)

    reached = [np.argmax(tiny_model.predict(run, verbose=0), 1) == labels for run in runs]
    success = reached if targeted else [~hit for hit in reached]
    cases = [success[0] & ~success[1], success[1] & ~success[0], success[0] & success[1]]
    assert all(case.sum() > 0 for case in cases), [int(case.sum()) for case in cases]
    objective = [(-1 if targeted else 1) * logit_losses(tiny_logits_model, run, labels) for run in runs]
    second = (success[1] & ~success[0]) | ((success[1] == success[0]) & (objective[1] > objective[0]))
    expected = np.where(second[:, None, None, None], runs[1], runs[0])
    # a near tie in the loss (float32 in the attack, float64 here) may go either way
    gap = np.abs(objective[1] - objective[0])
    decided = (success[0] != success[1]) | (gap > 1e-5 * np.abs(objective[0]) + 1e-6)
    assert decided.mean() > 0.9 and 0 < second[decided].sum() < decided.sum()
    np.testing.assert_allclose(pgd(model, x, labels, eps=eps)[decided], expected[decided], atol=1e-6)


def test_pgd_seed_reproducible_and_unseeded_random(tiny_model, tiny_data):
    x, y = tiny_data[0][:24], tiny_data[1][:24]
    np.testing.assert_array_equal(
        PGD(steps=3, seed=7)(tiny_model, x, y, eps=0.05), PGD(steps=3, seed=7)(tiny_model, x, y, eps=0.05)
    )
    unseeded = PGD(steps=1, rel_stepsize=1e-3)
    assert not np.array_equal(unseeded(tiny_model, x, y, eps=0.05), unseeded(tiny_model, x, y, eps=0.05))


def test_logits_model_gives_the_same_attack(tiny_model, tiny_logits_model, tiny_data):
    x, y = tiny_data
    on_softmax = BIM()(tiny_model, x, y, eps=STRONG)
    on_logits = BIM()(tiny_logits_model, x, y, eps=STRONG)
    assert np.mean(np.isclose(on_softmax, on_logits, atol=1e-6)) > 0.99
    assert accuracy(tiny_model, PGD(steps=10, seed=0)(tiny_logits_model, x, y, eps=STRONG), y) < 0.2


@pytest.mark.parametrize("cls", [BIM, PGD])
def test_two_class_model(cls, binary_model, binary_data):
    x, y = binary_data
    assert accuracy(binary_model, x, y) > 0.9
    x_adv = cls(steps=10)(binary_model, x, y, eps=0.2)
    assert np.abs(x_adv - x).max() <= 0.2 + 1e-6
    assert accuracy(binary_model, x_adv, y) < 0.5


def test_batches_larger_than_batch_size(tiny_model, tiny_data):
    x, y = tiny_data  # 120 images
    whole = BIM(steps=4)(tiny_model, x, y, eps=0.05)
    np.testing.assert_allclose(BIM(steps=4, batch_size=32)(tiny_model, x, y, eps=0.05), whole, atol=1e-6)
    sweep = PGD(steps=4, seed=0, batch_size=32)(tiny_model, x, y, eps=[0.02, 0.05])
    assert sweep.shape == (2,) + x.shape
    assert np.abs(sweep[1] - x).max() <= 0.05 + 1e-6 and np.abs(sweep[0] - x).max() <= 0.02 + 1e-6


def test_graph_is_not_unrolled_and_generate_is_graph_safe(tiny_model, tiny_data):
    x, y = tiny_data[0][:8], tf.one_hot(tiny_data[1][:8], 3)

    def compiled(attack):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 12, 12, 3]),
                tf.TensorSpec([None, 3]),
                tf.TensorSpec([None]),
            ]
        )
        def step(x, y, epsilons):  # an unknown number of epsilons, as in a user's train_step
            return attack.generate(tiny_model, x, y, epsilons)

        return step

    big, small = compiled(PGD(steps=40, restarts=2, seed=0)), compiled(PGD(steps=2, restarts=2, seed=0))
    size = lambda f: len(f.get_concrete_function().graph.as_graph_def().node)  # noqa: E731
    assert size(big) == size(small)  # the steps (and restarts, and epsilons) are loops, not copies
    out = big(x, y, tf.constant([0.01, 0.02, 0.03]))
    assert out.shape == (3, 8, 12, 12, 3)
    assert np.abs(out.numpy() - x[None]).max() <= 0.03 + 1e-6


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: BIM(steps=0), "steps must be a positive integer, got 0"),
        (lambda: BIM(steps=2.5), "steps must be a positive integer, got 2.5"),
        (lambda: PGD(steps=0), "steps must be a positive integer, got 0"),
        (lambda: BIM(rel_stepsize=-0.1), "rel_stepsize must be a positive number or None, got -0.1"),
        (lambda: PGD(abs_stepsize=float("nan")), "abs_stepsize must be a positive number or None, got nan"),
        (lambda: PGD(restarts=0), "restarts must be a positive integer, got 0"),
        (
            lambda: PGD(restarts=3, random_start=False),
            "restarts > 1 needs random_start=True: without it every restart is the same",
        ),
        (lambda: PGD(seed=-1), "seed must be None or a non-negative integer, got -1"),
        (lambda: PGD(seed=True), "seed must be None or a non-negative integer, got True"),
        (lambda: PGD(seed=2**63), f"seed must be None or a non-negative integer, got {2**63}"),
        (
            lambda: PGD(restarts=2, random_start=False),
            "restarts > 1 needs random_start=True: without it every restart is the same",
        ),
    ],
)
def test_bad_arguments(make, message):
    """Each refusal is one line that names the setting and the value (the whole message is checked)."""
    with pytest.raises(AttackError) as error:
        make()
    assert str(error.value) == message


def test_default_step_sizes():
    assert BIM().rel_stepsize == pytest.approx(1.25 / 10)
    assert PGD().rel_stepsize == pytest.approx(2.5 / 40) and PGD().steps == 40 and PGD().random_start
    assert PGD().restarts == 1 and PGD().seed is None and BIM().steps == 10 and BIM().abs_stepsize is None
    assert PGD(steps=7, rel_stepsize=0.25).rel_stepsize == 0.25


def test_one_step_of_an_absolute_or_relative_size_is_fgsm_of_that_size(tiny_model, tiny_data):
    """One BIM step inside a larger ball is FGSM (tested against closed forms) at the step's size: the
    absolute size whatever eps is, the relative one times eps. PGD without a random start is BIM;
    the largest seed is accepted."""
    x, y = tiny_data[0][:30], tiny_data[1][:30]
    fgsm = FGSM()(tiny_model, x, y, eps=0.01)
    np.testing.assert_allclose(BIM(steps=1, abs_stepsize=0.01)(tiny_model, x, y, eps=0.05), fgsm, atol=1e-6)
    np.testing.assert_allclose(BIM(steps=1, rel_stepsize=0.2)(tiny_model, x, y, eps=0.05), fgsm, atol=1e-6)
    no_start = PGD(steps=3, random_start=False, seed=2**63 - 1)(tiny_model, x, y, eps=0.05)
    np.testing.assert_allclose(
        no_start, BIM(steps=3, rel_stepsize=2.5 / 3)(tiny_model, x, y, eps=0.05), atol=1e-6
    )


def test_repr_shows_the_step_size_in_use_and_every_setting():
    """The repr (in logs and reports) names the step size the attack uses: the absolute one when given,
    which overrides the relative one, else the relative one (1.25 / steps for BIM, 2.5 / steps for PGD)."""
    assert repr(BIM(steps=4)) == "BIM(steps=4, rel_stepsize=0.3125, norm='inf', targeted=False)"
    assert repr(BIM(abs_stepsize=0.004, rel_stepsize=0.5, targeted=True)) == (
        "BIM(steps=10, abs_stepsize=0.004, norm='inf', targeted=True)"
    )
    assert repr(PGD(steps=5, restarts=2, seed=1, norm=2)) == (
        "PGD(steps=5, rel_stepsize=0.5, random_start=True, restarts=2, seed=1, norm='2', targeted=False)"
    )
