"""One iterative loop: the camera's attack is the attacks' own `run`, through a `FrameView`.

Where the frame's face crops are the classifier's inputs as they are (no margin, input size), a
scene attack must give the crops the plain attack gives: same start, same steps, same loss.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from robustmask.attacks import BIM, FGM, FGSM, PGD, available, get
from robustmask.attacks.gradient_attack import GradientAttack
from robustmask.attacks.model_view import ModelView
from robustmask.camera import FaceBox, FacePipeline, FrameView, SceneAttack, region_mask
from robustmask.errors import AttackError, RobustmaskError

SIZE = 24
# Two faces at the classifier's input size in a 32 x 64 frame (4 px of background around each).
BOXES = [FaceBox(4, 4, SIZE, SIZE, 1.0), FaceBox(36, 4, SIZE, SIZE, 1.0)]


@pytest.fixture(scope="module", params=["softmax", "logits"])
def model(request):
    """An untrained CNN (the comparison needs no accuracy), ending in softmax or in logits."""
    import keras

    keras.utils.set_random_seed(0)
    activation = "softmax" if request.param == "softmax" else None
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Conv2D(6, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation=activation),
        ]
    )


def pipeline_for(model, boxes):
    return FacePipeline(model, lambda frame: list(boxes), margin=0.0)


def crops_of(frame, boxes):
    return np.stack([frame[b.y : b.y + b.h, b.x : b.x + b.w] for b in boxes])


def test_scene_pgd_equals_pgd_on_the_crop(model):
    """One face filling the frame: the random start, every step and the projection are PGD's."""
    frame = np.random.default_rng(0).uniform(size=(SIZE, SIZE, 3)).astype(np.float32)
    boxes = [FaceBox(0, 0, SIZE, SIZE, 1.0)]
    labels = np.array([1])
    for steps in (1, 2, 5):  # step for step
        scene = SceneAttack(PGD(steps=steps, seed=0), eps=0.05, region="faces")
        got = scene.perturb(pipeline_for(model, boxes), frame, boxes, labels)
        expected = PGD(steps=steps, seed=0)(model, crops_of(frame, boxes), labels, eps=0.05)
        np.testing.assert_allclose(got[None], expected, atol=1e-6)
        assert np.abs(got - frame).max() > 0.04  # it moved


@pytest.mark.parametrize(
    "attack",
    [
        FGSM(),
        BIM(steps=3),
        PGD(steps=3, random_start=False),
        PGD(steps=2, rel_stepsize=0.3, random_start=False),
    ],
    ids=["fgsm", "bim", "pgd", "pgd-step"],
)
@pytest.mark.parametrize("region", ["faces", "frame"])
def test_scene_attack_equals_the_attack_on_two_face_crops(model, attack, region):
    frame = np.random.default_rng(1).uniform(size=(32, 64, 3)).astype(np.float32)
    labels = np.array([0, 2])
    got = SceneAttack(attack, eps=0.03, region=region).perturb(
        pipeline_for(model, BOXES), frame, BOXES, labels
    )
    expected = attack(model, crops_of(frame, BOXES), labels, eps=0.03)
    np.testing.assert_allclose(crops_of(got, BOXES), expected, atol=1e-6)
    outside = np.ones(frame.shape[:2], bool)
    for b in BOXES:
        outside[b.y : b.y + b.h, b.x : b.x + b.w] = False
    assert np.all(got[outside] == frame[outside])  # outside the crops no gradient reaches the frame
    assert np.mean(np.abs(crops_of(got, BOXES) - crops_of(frame, BOXES)) > 0.01) > 0.5  # it moved


def test_perturb_on_a_plain_model_equals_the_compiled_attack(model):
    """`GradientAttack.perturb` runs the same `run` as ``attack(model, x, y, eps)``; a mask keeps pixels."""
    import tensorflow as tf

    x = np.random.default_rng(2).uniform(size=(3, SIZE, SIZE, 3)).astype(np.float32)
    labels = np.array([0, 1, 2])
    pgd = PGD(steps=3, seed=0)
    compiled = pgd(model, x, labels, eps=0.03)
    eager = pgd.perturb(model, x, tf.one_hot(labels, 3), 0.03).numpy()
    np.testing.assert_allclose(eager, compiled, atol=1e-6)
    mask = np.zeros((SIZE, SIZE, 1), np.float32)
    mask[5:15, 3:20] = 1.0
    masked = pgd.perturb(model, x, tf.one_hot(labels, 3), 0.03, mask=mask).numpy()
    assert np.all(masked[:, ~mask[..., 0].astype(bool)] == x[:, ~mask[..., 0].astype(bool)])
    assert np.mean(masked[:, 5:15, 3:20] != x[:, 5:15, 3:20]) > 0.9


def test_perturb_takes_numpy_of_any_dtype_and_works_in_float32(model):
    """A float64 frame, integer one-hot labels, a bool or uint8 mask and a NumPy float64 eps (what a
    script hands over) give the float32 attack's pixels, as float32; a loss of the user's own gets
    the float32 one-hot labels `run`'s contract promises (``y * log_probs`` needs them)."""
    import tensorflow as tf

    x = np.random.default_rng(5).uniform(size=(2, SIZE, SIZE, 3)).astype(np.float32)
    y = tf.one_hot([0, 2], 3)
    mask = np.zeros((SIZE, SIZE, 1), np.float32)
    mask[2:20, 4:16] = 1.0
    bim = BIM(steps=2, loss=lambda y_onehot, log_probs: -tf.reduce_sum(y_onehot * log_probs, axis=-1))
    expected = bim.perturb(model, x, y, 0.03, mask=mask).numpy()
    for mask_as in (mask.astype(bool), mask.astype(np.uint8)):
        got = bim.perturb(
            model, x.astype(np.float64), np.eye(3, dtype=np.int64)[[0, 2]], np.float64(0.03), mask_as
        )
        assert got.dtype == tf.float32
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)
    assert np.abs(expected - x).max() > 0.02  # it moved


def test_an_l2_step_under_a_mask_spends_its_whole_budget_inside_the_mask(model):
    """The gradient is zeroed outside the mask before FGM normalises it, so the L2 step of size eps
    lies inside the mask (a gradient normalised over the whole image would leave a shorter step)."""
    import tensorflow as tf

    x = np.random.default_rng(6).uniform(0.3, 0.7, size=(2, SIZE, SIZE, 3)).astype(np.float32)
    mask = np.zeros((SIZE, SIZE, 1), np.float32)
    mask[4:12, 6:18] = 1.0
    delta = FGM(norm=2).perturb(model, x, tf.one_hot([1, 2], 3), 0.5, mask=mask).numpy() - x
    assert np.all(delta[:, mask[..., 0] == 0] == 0)
    np.testing.assert_allclose(np.sqrt((delta**2).sum(axis=(1, 2, 3))), [0.5, 0.5], rtol=1e-4)


class Quantized(ModelView):
    """The classifier sees the frame rounded to 8 bits: no gradient flows back through the rounding."""

    def inputs(self, x):
        import tensorflow as tf

        return tf.round(x * 255.0) / 255.0


def test_a_view_with_no_gradient_path_gives_a_zero_gradient_and_leaves_the_frame(model):
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(7).uniform(size=(2, SIZE, SIZE, 3)).astype(np.float32))
    y = tf.one_hot([0, 1], 3)
    gradient = FGSM().gradient(Quantized(model), x, y)
    assert gradient.shape == x.shape and not np.any(gradient.numpy())
    np.testing.assert_array_equal(FGSM().perturb(Quantized(model), x, y, 0.03).numpy(), x.numpy())


def test_the_loss_gradient_is_compiled_once_for_any_number_of_faces(model):
    frame = np.random.default_rng(3).uniform(size=(32, 64, 3)).astype(np.float32)
    attack = BIM(steps=2)
    scene = SceneAttack(attack, eps=0.02, region="faces")
    for boxes in (BOXES[:1], BOXES, BOXES[::-1]):
        scene.perturb(pipeline_for(model, boxes), frame, boxes, [0] * len(boxes))
    compiled = attack.compiled_gradient(model, (None, SIZE, SIZE, 3), (None, 3))
    assert compiled is BIM(steps=2).compiled_gradient(model, (None, SIZE, SIZE, 3), (None, 3))  # shared
    assert compiled.experimental_get_tracing_count() == 1


def test_the_view_gradient_is_one_tape_through_crops_and_the_modelinfo_loss(model):
    import tensorflow as tf

    from robustmask.modelinfo import cross_entropy, inspect_model, log_probabilities

    frame = tf.constant(np.random.default_rng(4).uniform(size=(1, 40, 64, 3)).astype(np.float32))
    crops = [(0, 0, 30, 34), (20, 6, 64, 40)]  # overlapping, resized down and up
    y = tf.one_hot([2, 0], 3)
    info = inspect_model(model, None, np.zeros((2, SIZE, SIZE, 3), np.float32))
    with tf.GradientTape() as tape:
        tape.watch(frame)
        images = tf.stack([tf.image.resize(frame[0, y0:y1, x0:x1], (SIZE, SIZE)) for x0, y0, x1, y1 in crops])
        loss = tf.reduce_sum(cross_entropy(y, log_probabilities(model(images), info)))
    expected = tape.gradient(loss, frame).numpy()
    got = FGSM().gradient(FrameView(model, crops, (SIZE, SIZE)), frame, y).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
    assert np.abs(expected).max() > 0


def test_every_registered_gradient_attack_is_a_scene_attack_and_no_other():
    accepted = []
    for name in available():
        try:
            attack = get(name)
        except AttackError:  # an optional package missing
            continue
        if isinstance(attack, GradientAttack) and attack.eps_bounded:
            accepted.append(SceneAttack(name).attack.name)
        else:
            with pytest.raises(AttackError, match="native, eps-bounded gradient attack"):
                SceneAttack(name)
    assert {"FGSM", "FGM", "BIM", "PGD"} <= set(accepted)
    assert SceneAttack("fgm", eps=2.0).eps == 2.0  # an L2 budget may exceed 1


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (("cw",), {}, "unknown attack"),  # the registry's and the attack's own refusals, passed on
        (("pgd",), {"eps": 2}, "eps is an L-inf budget"),
        (("pgd",), {"steps": 0}, "steps"),
    ],
)
def test_scene_attack_settings_are_one_line_errors(args, kwargs, message):
    # SceneAttack's own refusals are checked whole in test_scene_attack_refusals_are_whole_sentences.
    with pytest.raises(AttackError, match=message) as error:
        SceneAttack(*args, **kwargs)
    assert "\n" not in str(error.value)


LINF_BUDGET = "eps is an L-inf budget on [0, 1] pixels, in (0, 1]; got "


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (("pgd",), {"region": "face"}, "region must be one of frame, faces, mask, got 'face'"),
        (("pgd",), {"eps": 0}, LINF_BUDGET + "0"),
        (("pgd",), {"eps": 1.0001}, LINF_BUDGET + "1.0001"),
        (("pgd",), {"eps": True}, LINF_BUDGET + "True"),
        (("pgd",), {"eps": "0.1"}, LINF_BUDGET + "'0.1'"),
        ((FGM(),), {"eps": 0.0}, "eps is an L2 budget > 0; got 0.0"),
        (
            ("pgd",),
            {"restarts": 2},
            "a scene attack keeps one frame, not the best restart of each face: give restarts=1",
        ),
        ((FGSM(clip=None),), {}, "frames are [0, 1] images: the attack must clip to (0, 1), not None"),
        (
            (FGSM(clip=(0.0, 255.0)),),
            {},
            "frames are [0, 1] images: the attack must clip to (0, 1), not (0.0, 255.0)",
        ),
        (
            (PGD(),),
            {"steps": 3, "seed": 1},
            "parameters steps, seed go to the attack's constructor, not to SceneAttack",
        ),
        (
            (3,),
            {},
            "a scene attack is a native, eps-bounded gradient attack (a robustmask.GradientAttack: fgsm, fgm, bim, "
            "pgd, ...); 3 is int",
        ),
    ],
)
def test_scene_attack_refusals_are_whole_sentences(args, kwargs, message):
    with pytest.raises(AttackError) as error:
        SceneAttack(*args, **kwargs)
    assert str(error.value) == message


def test_a_scene_attack_is_built_from_a_name_and_its_settings_and_shows_them():
    attack = SceneAttack("bim", eps=1, region="mask", steps=4)  # eps 1: an unbounded patch, the bound itself
    assert attack.eps == 1.0 and isinstance(attack.eps, float) and attack.region == "mask"
    assert repr(attack) == (
        "SceneAttack(BIM(steps=4, rel_stepsize=0.3125, norm='inf', targeted=False), eps=1, region='mask')"
    )
    assert SceneAttack().attack.name == "PGD" and (SceneAttack().eps, SceneAttack().region) == (
        0.008,
        "frame",
    )


def test_attack_detections_attacks_the_labels_it_is_given_and_judges_at_the_frame_index(model):
    """`before` may come from elsewhere (a tracker, an earlier frame): its labels are the ones
    attacked, not the model's answers on this frame; the detections after carry the frame index."""
    frame = np.random.default_rng(1).uniform(size=(32, 64, 3)).astype(np.float32)
    pipeline = pipeline_for(model, BOXES)
    before = pipeline(frame, 3)
    answers = [d.label for d in before]
    other = [(label + 1) % 3 for label in answers]
    relabelled = [dataclasses.replace(d, label=k) for d, k in zip(before, other)]
    scene = SceneAttack(BIM(steps=2), eps=0.05, region="faces")
    result = scene.attack_detections(pipeline, frame, relabelled, 3)
    np.testing.assert_array_equal(result.frame, scene.perturb(pipeline, frame, BOXES, other))
    assert not np.array_equal(result.frame, scene.perturb(pipeline, frame, BOXES, answers))
    assert {d.frame for d in result.after} == {3}
    assert {d.frame for d in scene.attack_detections(pipeline, frame, before).after} == {0}


def test_region_mask_is_float32_ones_where_pixels_may_change_and_refuses_other_regions():
    whole = region_mask((32, 64, 3), BOXES)  # the whole frame unless told
    assert whole.dtype == np.float32 and whole.shape == (32, 64, 1) and np.all(whole == 1)
    faces = region_mask((32, 64, 3), BOXES, "faces")
    assert faces.dtype == np.float32 and faces.sum() == 2 * SIZE * SIZE
    assert region_mask((32, 64, 3), BOXES, "mask").dtype == np.float32
    with pytest.raises(AttackError) as error:
        region_mask((32, 64, 3), BOXES, "face")
    assert str(error.value) == "region must be one of frame, faces, mask, got 'face'"


def test_a_targeted_scene_attack_needs_its_targets_and_moves_towards_them(model):
    frame = np.random.default_rng(2).uniform(size=(32, 64, 3)).astype(np.float32)
    scene = SceneAttack(PGD(steps=3, seed=0, targeted=True), eps=0.05, region="faces")
    with pytest.raises(AttackError) as error:
        scene.perturb(pipeline_for(model, BOXES), frame, BOXES)
    assert str(error.value) == "PGD is targeted: pass the target classes as labels"
    moved = scene.perturb(pipeline_for(model, BOXES), frame, BOXES, [2, 2])
    assert np.abs(moved - frame).max() > 0.04


@pytest.mark.parametrize(
    "labels, message",
    [
        ([5, 0], "labels holds label 5 but the model has 3 classes (labels 0..2)"),
        ([0], "labels has 1 labels for 2 inputs"),
        ([0.5, 1], "labels must be integer class labels or one-hot rows; got non-integer values"),
    ],
)
def test_scene_attack_labels_are_checked_by_name(model, labels, message):
    frame = np.zeros((32, 64, 3), np.float32)
    with pytest.raises(RobustmaskError) as error:
        SceneAttack("pgd", steps=1).perturb(pipeline_for(model, BOXES), frame, BOXES, labels)
    assert str(error.value) == message


def test_the_output_kind_is_read_off_the_crops_for_a_softmax_without_a_softmax_layer():
    import keras

    keras.utils.set_random_seed(0)
    # Probabilities from a Lambda layer: no softmax activation to read, only a sample tells.
    inputs = keras.Input((SIZE, SIZE, 3))
    logits = keras.layers.Dense(3)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Lambda(keras.ops.softmax)(logits))
    frame = np.random.default_rng(3).uniform(size=(SIZE, SIZE, 3)).astype(np.float32)
    boxes, labels = [FaceBox(0, 0, SIZE, SIZE, 1.0)], np.array([1])
    got = SceneAttack(PGD(steps=3, seed=0), eps=0.05, region="faces").perturb(
        pipeline_for(model, boxes), frame, boxes, labels
    )
    expected = PGD(steps=3, seed=0)(model, crops_of(frame, boxes), labels, eps=0.05)
    np.testing.assert_allclose(got[None], expected, atol=1e-6)
