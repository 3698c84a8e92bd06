"""Threat models beyond L-inf: the norms, L2/L1 attacks native and through ART, the Evaluator and the CLI.

The norms are checked against NumPy (np.linalg.norm, and an L1 projection found by bisection rather
than by sorting); the L2 Evaluator table against a hand computation on a linear model.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import robustmask
from robustmask.attacks import BIM, FGM, FGSM, PGD, norms
from robustmask.errors import AttackError

rng = np.random.default_rng(0)
DELTA = rng.normal(0, 0.3, size=(6, 5, 5, 3)).astype(np.float32)
ORDERS = {"inf": np.inf, "2": 2, "1": 1}


def numpy_sizes(delta, order):
    return np.linalg.norm(np.asarray(delta, np.float64).reshape(len(delta), -1), ord=order, axis=1)


def l1_projection_by_bisection(v, eps):
    """Euclidean projection onto the L1 ball: soft-threshold at the theta where the sum is eps."""
    flat = np.abs(v.astype(np.float64).ravel())
    if flat.sum() <= eps:
        return v.astype(np.float64)
    low, high = 0.0, flat.max()
    for _ in range(200):
        theta = (low + high) / 2
        low, high = (theta, high) if np.maximum(flat - theta, 0).sum() > eps else (low, theta)
    return np.sign(v) * np.maximum(np.abs(v) - theta, 0)


# ---------------------------------------------------------------------------------------------- the norms
@pytest.mark.parametrize("name", ["inf", "2", "1"])
def test_sizes_equal_numpy(name):
    np.testing.assert_allclose(
        norms.get(name).size(tf.constant(DELTA)).numpy(), numpy_sizes(DELTA, ORDERS[name]), rtol=1e-5
    )


@pytest.mark.parametrize("name", ["inf", "2", "1"])
@pytest.mark.parametrize("eps", [0.5, [0.1, 0.2, 0.5, 1.0, 2.0, 1000.0]])
def test_projection_lands_in_the_ball_and_keeps_what_is_inside(name, eps):
    norm = norms.get(name)
    projected = norm.project(tf.constant(DELTA), tf.constant(eps, tf.float32)).numpy()
    bound = np.broadcast_to(np.asarray(eps, np.float64), (len(DELTA),))
    sizes = numpy_sizes(projected, ORDERS[name])
    assert np.all(sizes <= bound * (1 + 1e-5))
    inside = numpy_sizes(DELTA, ORDERS[name]) <= bound
    np.testing.assert_allclose(projected[inside], DELTA[inside], rtol=1e-6)
    outside = ~inside
    np.testing.assert_allclose(sizes[outside], bound[outside], rtol=1e-4)  # onto the sphere, not beyond


def test_projections_are_the_closest_points():
    eps = 1.5
    l2 = norms.get(2).project(tf.constant(DELTA), eps).numpy()
    for d, p in zip(DELTA, l2):
        np.testing.assert_allclose(p, d * eps / np.linalg.norm(d), rtol=1e-5)
    l1 = norms.get(1).project(tf.constant(DELTA), eps).numpy()
    for d, p in zip(DELTA, l1):
        np.testing.assert_allclose(p, l1_projection_by_bisection(d, eps), atol=1e-5)


def test_steps_have_unit_size_and_follow_the_gradient():
    g = tf.constant(DELTA)
    np.testing.assert_array_equal(norms.get("inf").step(g).numpy(), np.sign(DELTA))
    l2 = norms.get(2).step(g).numpy()
    np.testing.assert_allclose(numpy_sizes(l2, 2), 1.0, rtol=1e-5)
    np.testing.assert_allclose(l2[0], DELTA[0] / np.linalg.norm(DELTA[0]), rtol=1e-5)
    # SLIDE: the sign of the top 100 - percentile % of |g|, each 1/k, so the L1 size is 1.
    l1 = norms.L1(l1_percentile=90).step(g).numpy().reshape(len(DELTA), -1)
    k = int(np.ceil(0.1 * DELTA[0].size))
    for row, grad in zip(l1, DELTA.reshape(len(DELTA), -1)):
        chosen = np.flatnonzero(row)
        assert len(chosen) == k and set(chosen) == set(np.argsort(-np.abs(grad))[:k])
        np.testing.assert_allclose(row[chosen], np.sign(grad[chosen]) / k, rtol=1e-6)


@pytest.mark.parametrize("name", ["inf", "2", "1"])
def test_a_zero_gradient_gives_a_zero_step(name):
    step = norms.get(name).step(tf.zeros((2, 4, 4, 3))).numpy()
    assert np.all(step == 0) and np.all(np.isfinite(step))


@pytest.mark.parametrize("name", ["inf", "2", "1"])
def test_random_starts_are_in_the_ball_reproducible_and_spread(name):
    norm = norms.get(name)
    shape = tf.constant([200, 4, 4, 3])
    seed = tf.constant([3, 0], tf.int64)
    sample = norm.random(shape, 0.5, seed).numpy()
    assert np.all(numpy_sizes(sample, ORDERS[name]) <= 0.5 * (1 + 1e-5))
    np.testing.assert_array_equal(sample, norm.random(shape, 0.5, seed).numpy())
    assert not np.array_equal(sample, norm.random(shape, 0.5, tf.constant([3, 1], tf.int64)).numpy())
    # Uniform in a 48-dimensional ball: most of the volume is near the surface.
    assert np.median(numpy_sizes(sample, ORDERS[name])) > 0.4
    assert abs(float(np.mean(sample))) < 0.01  # no direction preferred


@pytest.mark.parametrize("name", ["inf", "2", "1"])
@pytest.mark.parametrize("seeded", [True, False], ids=["seeded", "fresh"])
@pytest.mark.parametrize("shape", [(20_000, 2), (20_000, 3, 1)], ids=["2-d", "3-d"])
def test_random_starts_are_uniform_in_the_ball(name, seeded, shape):
    # Uniform in a d-dimensional ball of any norm: the share inside the ball of radius r * eps is r^d
    # (its volume), whatever the norm; and no coordinate leans to one sign. Low d makes the radius law
    # visible (in 48 dimensions nearly every draw is near the surface).
    norm, eps = norms.get(name), 0.5
    seed = tf.constant([5, 0], tf.int64) if seeded else None
    sample = norm.random(tf.constant(shape), eps, seed).numpy()
    assert sample.shape == shape
    sizes = numpy_sizes(sample, ORDERS[name])
    dims = int(np.prod(shape[1:]))
    assert np.all(sizes <= eps * (1 + 1e-5))
    for r in (0.5, 0.8):
        assert abs(np.mean(sizes <= r * eps) - r**dims) < 0.015, (r, np.mean(sizes <= r * eps))
    positive = np.mean(sample.reshape(len(sample), -1) > 0, axis=0)
    np.testing.assert_allclose(positive, 0.5, atol=0.015)
    if not seeded:  # fresh noise: another draw differs
        assert not np.array_equal(sample, norm.random(tf.constant(shape), eps, seed).numpy())


@pytest.mark.parametrize("eps", [8 / 255, [0.0, 0.01, 0.03, 0.1, 0.5, 1.0]], ids=["scalar", "per-image"])
def test_linf_clips_the_images_themselves_to_the_box_around_x(eps):
    # x + clip(x_adv - x) can land one float32 ulp outside [x - eps, x + eps]; clipping x_adv itself
    # cannot: the result equals NumPy's clip of x_adv to that box, bit for bit.
    x = rng.uniform(0, 1, size=(6, 5, 5, 3)).astype(np.float32)
    x_adv = (x + rng.normal(0, 0.2, size=x.shape)).astype(np.float32)
    e = np.reshape(np.asarray(eps, np.float32), (-1, 1, 1, 1))
    clipped = norms.LInf().clip_to_ball(tf.constant(x_adv), tf.constant(x), tf.constant(eps, tf.float32))
    np.testing.assert_array_equal(clipped.numpy(), np.clip(x_adv, x - e, x + e))


def test_an_l1_projection_keeps_each_image_inside_its_ball_even_when_the_batch_sums_beyond_it():
    delta = np.zeros((2, 4), np.float32)
    delta[:, :3] = [[0.3, -0.2, 0.1], [-0.1, 0.2, 0.3]]  # each of L1 size 0.6, the batch 1.2
    projected = norms.get(1).project(tf.constant(delta), 1.0).numpy()
    np.testing.assert_array_equal(projected, delta)


def test_slide_moves_at_least_one_coordinate_and_never_a_zero_one():
    # l1_percentile 99 of 10 coordinates: ceil(0.1) = 1 coordinate, the largest, by its whole sign.
    g = tf.constant([[0.1, -0.9, 0.3, 0.2, 0.05, 0.6, -0.4, 0.7, 0.0, 0.8]])
    np.testing.assert_array_equal(norms.L1(99).step(g).numpy(), [[0, -1, 0, 0, 0, 0, 0, 0, 0, 0]])
    # Every coordinate above percentile 0, but a zero gradient gives no direction: not moved, and
    # the step's L1 size is still 1.
    g = tf.constant([[3.0, 0.0, 0.0, 1.0, 0.0, -2.0]])
    np.testing.assert_allclose(norms.L1(0).step(g).numpy(), [[1 / 3, 0, 0, 1 / 3, 0, -1 / 3]], rtol=1e-6)


@pytest.mark.parametrize("good", [0, 0.0, 0.5, 50, 99.99])
def test_l1_percentile_in_0_to_100_is_kept(good):
    assert norms.L1(good).l1_percentile == float(good)


@pytest.mark.parametrize("bad", [True, False, -0.5, 100, 100.0, 100.5, 150, "99", None])
def test_l1_percentile_outside_0_to_100_is_a_one_line_error(bad):
    with pytest.raises(AttackError) as error:
        norms.L1(bad)
    assert str(error.value) == f"l1_percentile must be a number in [0, 100), got {bad!r}"


@pytest.mark.parametrize(
    "given,expected",
    [
        ("inf", "inf"),
        (np.inf, "inf"),
        ("Linf", "inf"),
        (2, "2"),
        ("l2", "2"),
        (2.0, "2"),
        (1, "1"),
        ("L1", "1"),
    ],
)
def test_names_of_a_norm(given, expected):
    assert norms.get(given).name == expected


@pytest.mark.parametrize("bad", [0, 3, -np.inf, "l3", True, None, [2]])
def test_unknown_norms_are_one_line_errors(bad):
    with pytest.raises(AttackError, match="norm must be 'inf', 2 or 1") as error:
        FGSM(norm=bad)
    assert len(str(error.value).splitlines()) == 1


# ---------------------------------------------------------------------------------------------- attacks
def test_fgm_is_the_normalised_gradient_step(tiny_model, tiny_data):
    x, y = tiny_data[0][:8], tiny_data[1][:8]
    x_t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        loss = keras.losses.sparse_categorical_crossentropy(y, tiny_model(x_t))
    g = tape.gradient(loss, x_t).numpy().reshape(len(x), -1)
    expected = x + 0.7 * (g / np.linalg.norm(g, axis=1, keepdims=True)).reshape(x.shape)
    np.testing.assert_allclose(FGM(clip=None)(tiny_model, x, y, eps=0.7), expected, atol=2e-4)


def test_l2_pgd_holds_its_budget_and_beats_l2_fgm(face_model, face_data):
    _, (x, y) = face_data
    eps = [0.25, 0.5]
    pgd = PGD(steps=20, norm=2, restarts=2, seed=0)(face_model, x, y, eps=eps)
    fgm = FGM()(face_model, x, y, eps=eps)
    for i, e in enumerate(eps):
        assert numpy_sizes(pgd[i] - x, 2).max() <= e * (1 + 1e-5)
        assert pgd[i].min() >= 0 and pgd[i].max() <= 1
    accuracy = lambda images: np.mean(np.argmax(face_model.predict(images, verbose=0), 1) == y)  # noqa: E731
    clean = accuracy(x)
    for i in range(len(eps)):
        assert accuracy(pgd[i]) < accuracy(fgm[i]) - 0.05, "L2 PGD is no stronger than one L2 step"
    assert accuracy(pgd[-1]) < clean - 0.2


def test_l1_attacks_hold_their_budget(face_model, face_data):
    _, (x, y) = face_data
    for attack in (FGM(norm=1), BIM(steps=5, norm=1), PGD(steps=5, norm=1, seed=0)):
        adversarial = attack(face_model, x[:12], y[:12], eps=3.0)
        assert numpy_sizes(adversarial - x[:12], 1).max() <= 3.0 * (1 + 1e-5), attack


def test_art_gets_the_norm_and_l2_pgd_equals_native(tiny_model, tiny_data):
    x, y = tiny_data[0][:16], tiny_data[1][:16]
    art_pgd = robustmask.attacks.ARTPGD(steps=5, random_start=False, norm=2)
    assert art_pgd.art_kwargs(0.5)["norm"] == 2
    native = PGD(steps=5, random_start=False, norm=2)
    np.testing.assert_allclose(
        art_pgd(tiny_model, x, y, eps=0.5), native(tiny_model, x, y, eps=0.5), atol=1e-4
    )


def test_nan_from_art_is_reported_and_never_returned(tiny_model, tiny_data, monkeypatch):
    x, y = tiny_data[0][:4], tiny_data[1][:4]
    square = robustmask.attacks.ARTSquareAttack(steps=5, norm=2)

    def broken(model, info, images, labels, eps):
        out = images.copy()
        out[1] = np.nan
        return out

    monkeypatch.setattr(square, "run_art", broken)
    with pytest.warns(RuntimeWarning, match="returned NaN/inf for 1 of 4 images"):
        adversarial = square(tiny_model, x, y, eps=0.5)
    np.testing.assert_array_equal(adversarial[1], x[1])


def test_art_attacks_without_a_norm_parameter_refuse_another_norm():
    with pytest.raises(AttackError, match="works in L-inf only"):
        robustmask.attacks.ARTBIM(norm=2)  # ART's BasicIterativeMethod is L-inf only
    assert robustmask.attacks.CarliniL2().norm.name == "2"
    with pytest.raises(AttackError, match="works in L2 only"):
        robustmask.attacks.DeepFool(norm="inf")


def test_run_style_subclass_of_the_interface_is_told_what_to_subclass():
    with pytest.raises(TypeError, match="subclass robustmask.GradientAttack"):

        class Old(robustmask.Attack):  # noqa: F841
            def run(self, model, x, y, eps):
                return x


# ---------------------------------------------------------------------------------------------- evaluation
def linear_model(num_classes=3, size=4, seed=0):
    """Logits = W x + b on flattened 4x4x3 images: every gradient has a closed form."""
    r = np.random.default_rng(seed)
    model = keras.Sequential(
        [keras.Input((size, size, 3)), keras.layers.Flatten(), keras.layers.Dense(num_classes)]
    )
    model.layers[-1].set_weights(
        [
            r.normal(0, 1, (size * size * 3, num_classes)).astype(np.float32),
            r.normal(0, 0.1, num_classes).astype(np.float32),
        ]
    )
    return model


def test_an_l2_evaluator_table_equals_a_hand_computation():
    model = linear_model()
    w, b = model.layers[-1].get_weights()
    r = np.random.default_rng(1)
    x = r.uniform(0.3, 0.7, (40, 4, 4, 3)).astype(np.float32)
    y = r.integers(0, 3, 40)
    epsilons = [0.1, 0.4]
    table = robustmask.Evaluator(FGM(clip=None, from_logits=True), epsilons).evaluate(model, (x, y))

    def softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)

    flat = x.reshape(len(x), -1).astype(np.float64)
    onehot = np.eye(3)[y]
    gradient = (softmax(flat @ w + b) - onehot) @ w.T  # d CE / d x for logits W x + b
    step = gradient / np.linalg.norm(gradient, axis=1, keepdims=True)
    rows = []
    for eps in [0.0] + epsilons:
        p = softmax((flat + eps * step) @ w + b)
        rows.append((100.0 * np.mean(p.argmax(1) == y), float(np.mean(-np.log(p[np.arange(len(y)), y])))))
    np.testing.assert_allclose(table["Accuracy (%)"], [a for a, _ in rows], atol=1e-9)
    np.testing.assert_allclose(table["Loss"], [loss for _, loss in rows], rtol=1e-4)
    assert table.attrs["norm"] == "L2"
    assert list(robustmask.evaluation.named_norm(table).columns)[0] == "Epsilon (L2)"
    assert rows[-1][0] < rows[0][0]  # the budget is large enough to matter: the check could fail


def test_the_evaluator_measures_self_sized_attacks_in_their_norm(tiny_model, tiny_data):
    x, y = tiny_data[0][:10], tiny_data[1][:10]
    attack = robustmask.attacks.DeepFool(steps=5)
    result = robustmask.Evaluator(attack).evaluate(tiny_model, (x, y), details=True)
    assert result.table.attrs["norm"] == "L2"
    assert result.table["Epsilon"].iloc[1] == pytest.approx(
        result.perturbation["L2 (mean)"].iloc[1], rel=1e-6
    )


def test_cli_evaluate_in_l2_names_the_norm(tmp_path, tiny_model, tiny_data, capsys):
    from robustmask.cli.main import main

    path = tmp_path / "model.keras"
    tiny_model.save(path)
    data = tmp_path / "data"
    for label in range(3):
        (data / str(label)).mkdir(parents=True)
        for i, image in enumerate(tiny_data[0][tiny_data[1] == label][:4]):
            keras.utils.save_img(data / str(label) / f"{i}.png", image)
    csv = tmp_path / "table.csv"
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(path),
                "--data",
                str(data),
                "--attack",
                "pgd",
                "--norm",
                "2",
                "--param",
                "steps=5",
                "--eps",
                "0.5",
                "1.0",
                "--csv",
                str(csv),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "PGD (L2)" in out and "Epsilon (L2)" in out
    assert csv.read_text().splitlines()[0].startswith("Epsilon (L2),Accuracy (%),Loss")
    assert main(["evaluate", "--model", str(path), "--data", str(data), "--norm", "2"]) != 0
    assert "--norm 2: give --eps" in capsys.readouterr().err
