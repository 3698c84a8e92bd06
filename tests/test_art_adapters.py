"""ART adapters: the contract every robustmask attack meets, agreement with the native FGSM, black-box
attacks that never touch gradients, universal perturbations and patches, and bad arguments.

Small on purpose: 12-px images, 8-16 of them, a few iterations per attack.
"""

from __future__ import annotations

import gc
import os
import weakref
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf
from art.attacks import EvasionAttack
from art.attacks import evasion as art_evasion
from art.attacks.evasion.projected_gradient_descent.projected_gradient_descent_numpy import (
    ProjectedGradientDescentNumpy,
)

import robustmask
from robustmask.attacks import FGSM
from robustmask.attacks.art import (
    ARTBIM,
    ARTFGSM,
    ARTPGD,
    MIFGSM,
    JSMA,
    AdversarialPatch,
    ARTAttack,
    ARTAutoPGD,
    CarliniL2,
    CarliniLInf,
    DeepFool,
    HopSkipJump,
    ARTSquareAttack,
    UniversalPerturbation,
)
from robustmask.errors import AttackError

N = 12


def accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))


def linf(a, b):
    return np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).reshape(len(a), -1).max(axis=1)


@pytest.fixture(autouse=True)
def seeded():
    """ART draws its random starts, squares and shuffles from the global NumPy / Python generators."""
    keras.utils.set_random_seed(int(os.environ.get("ROBUSTMASK_TEST_SEED", "0")))


@pytest.fixture(scope="module")
def batch(tiny_data):
    x, y = tiny_data
    return x[:N], y[:N]


# ---------------------------------------------------------------------------------------------- FGSM agreement
@pytest.mark.parametrize("which", ["softmax", "logits"])
def test_art_fgsm_equals_native_fgsm(which, tiny_model, tiny_logits_model, tiny_data):
    """Consistency of the two robustmask FGSMs (they share `log_probabilities`); their agreement with a
    reference that shares no robustmask code (ART's stock estimator) is in test_art_reference.py."""
    model = tiny_model if which == "softmax" else tiny_logits_model
    x, y = tiny_data
    for eps in (0.01, 0.05):
        native = FGSM()(model, x, y, eps=eps)
        art = ARTFGSM()(model, x, y, eps=eps)
        differ = np.abs(native - art) > 1e-6
        assert differ.mean() < 0.01, f"{differ.mean():.4f} of the values differ at eps={eps}"


def test_art_fgsm_multi_eps_and_unclipped(tiny_model, batch):
    x, y = batch
    sweep = ARTFGSM()(tiny_model, x, y, eps=[0.0, 0.02, 0.2])
    assert sweep.shape == (3,) + x.shape
    np.testing.assert_array_equal(sweep[0], x)
    np.testing.assert_allclose(sweep[1], ARTFGSM()(tiny_model, x, y, eps=0.02), atol=1e-7)
    free = ARTFGSM(clip=None)(tiny_model, x, y, eps=0.2)
    assert free.min() < 0.0 or free.max() > 1.0  # not clipped: the paper's exact Algorithm 1
    np.testing.assert_allclose(linf(free, x), 0.2, atol=1e-6)


# ---------------------------------------------------------------------------------------------- contract
BOUNDED = {
    "ARTFGSM": lambda: ARTFGSM(),
    "ARTBIM": lambda: ARTBIM(steps=5),
    "ARTPGD": lambda: ARTPGD(steps=5, restarts=1),
    "MIFGSM": lambda: MIFGSM(steps=5),
    "ARTAutoPGD": lambda: ARTAutoPGD(steps=5),
    "SquareAttack": lambda: ARTSquareAttack(steps=10),
    "UniversalPerturbation": lambda: UniversalPerturbation(attacker="fgsm", epochs=1),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(BOUNDED))
def test_eps_bounded_contract(name, dtype, tiny_model, batch):
    x, y = batch
    x = x.astype(dtype)
    attack = BOUNDED[name]()
    assert attack.eps_bounded and not attack.graph_safe
    eps = 0.1
    adv = attack(tiny_model, x, y, eps=eps)
    assert isinstance(adv, np.ndarray) and adv.shape == x.shape and adv.dtype == dtype
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    assert linf(adv, x).max() <= eps + 1e-6
    assert linf(adv, x).max() > eps / 2  # it did move
    with pytest.raises(AttackError, match="needs eps"):
        attack(tiny_model, x, y)


# ---------------------------------------------------------------------------------------------- what ART receives
# The adapter's `_finish` clips every result onto the eps ball and the valid range, so the final images
# cannot show a wrong eps. These tests look at what ART itself gets and returns: a spy on the ART
# classes' `generate` records the ART attack object's eps, eps_step, max_iter, norm... as ART holds
# them when it runs, the images it was given and the images it returned, before `_finish`.
SPIED = (
    "eps",
    "eps_step",
    "max_iter",
    "norm",
    "decay",
    "num_random_init",
    "nb_random_init",
    "nb_restarts",
    "minimal",
    "targeted",
    "attacker",
    "attacker_params",
)


@pytest.fixture
def art_spy(monkeypatch):
    """spy(*art_classes) -> the list every later `generate` of those classes appends a record to.

    A record is made for instances of exactly that class (a subclass inheriting the spied `generate`
    is not recorded unless spied itself), once per call however often `spy` is called.
    """
    calls: list = []
    spied: set = set()

    def spy(*classes):
        for cls in classes:
            if cls in spied:
                continue
            spied.add(cls)

            def generate(self, x, y=None, _original=cls.generate, _cls=cls, **kwargs):
                given = np.array(x, np.float64)  # a copy, before ART can touch it
                out = _original(self, x, y, **kwargs)
                if type(self) is _cls:
                    params = {k: getattr(self, k) for k in SPIED if hasattr(self, k)}
                    calls.append(
                        SimpleNamespace(
                            cls=_cls,
                            params=params,
                            x=given,
                            out=None if isinstance(out, tuple) else np.array(out, np.float64),
                        )
                    )
                return out

            monkeypatch.setattr(cls, "generate", generate)
        return calls

    return spy


EPS = 0.08  # the fixture images are in [0.1, 0.9]: x +- EPS stays inside [0, 1], ART's range clip is a no-op
INF = np.inf

# adapter -> (the ART class it runs, {ART class: the parameters its docstring promises ART gets for EPS}).
# Per-image attackers inside a universal perturbation and MI-FGSM's NumPy implementation are checked too.
MAPPINGS = {
    "ARTFGSM": (
        lambda: ARTFGSM(),
        art_evasion.FastGradientMethod,
        {art_evasion.FastGradientMethod: dict(eps=EPS, norm=INF, minimal=False, num_random_init=0)},
    ),
    # ART's num_random_init is the number of runs from a random start, 0 for one run from x
    "ARTFGSM-random-start": (
        lambda: ARTFGSM(random_start=True),
        art_evasion.FastGradientMethod,
        {art_evasion.FastGradientMethod: dict(eps=EPS, norm=INF, num_random_init=1)},
    ),
    "ARTBIM": (
        lambda: ARTBIM(steps=4),
        art_evasion.BasicIterativeMethod,
        {
            art_evasion.BasicIterativeMethod: dict(
                eps=EPS, eps_step=1.25 * EPS / 4, max_iter=4, norm=INF, num_random_init=0
            )
        },
    ),
    "ARTBIM-rel": (
        lambda: ARTBIM(steps=4, rel_stepsize=0.5),
        art_evasion.BasicIterativeMethod,
        {art_evasion.BasicIterativeMethod: dict(eps=EPS, eps_step=0.5 * EPS, max_iter=4)},
    ),
    "ARTBIM-abs": (
        lambda: ARTBIM(steps=4, abs_stepsize=0.03),
        art_evasion.BasicIterativeMethod,
        {art_evasion.BasicIterativeMethod: dict(eps=EPS, eps_step=0.03, max_iter=4)},
    ),
    "ARTPGD": (
        lambda: ARTPGD(steps=4, restarts=2),
        art_evasion.ProjectedGradientDescent,
        {
            art_evasion.ProjectedGradientDescent: dict(
                eps=EPS, eps_step=2.5 * EPS / 4, max_iter=4, norm=INF, num_random_init=2, targeted=False
            )
        },
    ),
    "ARTPGD-targeted": (
        lambda: ARTPGD(steps=3, targeted=True),
        art_evasion.ProjectedGradientDescent,
        {
            art_evasion.ProjectedGradientDescent: dict(
                eps=EPS, eps_step=2.5 * EPS / 3, max_iter=3, num_random_init=1, targeted=True
            )
        },
    ),
    "ARTPGD-from-x": (
        lambda: ARTPGD(steps=4, random_start=False),
        art_evasion.ProjectedGradientDescent,
        {art_evasion.ProjectedGradientDescent: dict(eps=EPS, max_iter=4, num_random_init=0)},
    ),
    "MIFGSM": (
        lambda: MIFGSM(steps=4, decay=0.5),
        art_evasion.MomentumIterativeMethod,
        {
            art_evasion.MomentumIterativeMethod: dict(eps=EPS, eps_step=EPS / 4, max_iter=4, norm=INF),
            ProjectedGradientDescentNumpy: dict(
                eps=EPS, eps_step=EPS / 4, max_iter=4, norm=INF, decay=0.5, num_random_init=0
            ),
        },
    ),
    "ARTAutoPGD": (
        lambda: ARTAutoPGD(steps=4, restarts=2),
        art_evasion.AutoProjectedGradientDescent,
        {
            art_evasion.AutoProjectedGradientDescent: dict(
                eps=EPS, eps_step=2 * EPS, max_iter=4, norm=INF, nb_random_init=2
            )
        },
    ),
    "ARTAutoPGD-dlr-rel": (
        lambda: ARTAutoPGD(loss_type="dlr", steps=3, rel_stepsize=0.5),
        art_evasion.AutoProjectedGradientDescent,
        {art_evasion.AutoProjectedGradientDescent: dict(eps=EPS, eps_step=0.5 * EPS, max_iter=3)},
    ),
    "SquareAttack": (
        lambda: ARTSquareAttack(steps=5),
        art_evasion.SquareAttack,
        {art_evasion.SquareAttack: dict(eps=EPS, max_iter=5, norm=INF)},
    ),
    "SquareAttack-restarts": (
        lambda: ARTSquareAttack(steps=5, restarts=2),
        art_evasion.SquareAttack,
        {art_evasion.SquareAttack: dict(eps=EPS, max_iter=5, nb_restarts=2)},
    ),
    "UniversalPerturbation-fgsm": (
        lambda: UniversalPerturbation(attacker="fgsm", epochs=1),
        art_evasion.UniversalPerturbation,
        {
            art_evasion.UniversalPerturbation: dict(eps=EPS, max_iter=1, norm=INF, attacker="fgsm"),
            art_evasion.FastGradientMethod: dict(eps=EPS, norm=INF),
        },
    ),
    "UniversalPerturbation-pgd": (
        lambda: UniversalPerturbation(attacker="pgd", epochs=1),
        art_evasion.UniversalPerturbation,
        {
            art_evasion.UniversalPerturbation: dict(eps=EPS, max_iter=1, norm=INF, attacker="pgd"),
            art_evasion.ProjectedGradientDescent: dict(
                eps=EPS, eps_step=2.5 * EPS / 10, max_iter=10, norm=INF
            ),
        },
    ),
    "ARTAttack-BIM-default-ratio": (
        lambda: ARTAttack("BasicIterativeMethod", max_iter=3),
        art_evasion.BasicIterativeMethod,
        {art_evasion.BasicIterativeMethod: dict(eps=EPS, eps_step=EPS * 0.1 / 0.3, max_iter=3, norm=INF)},
    ),
    "ARTAttack-PGD-abs": (
        lambda: ARTAttack("ProjectedGradientDescent", max_iter=3, num_random_init=0, abs_stepsize=0.03),
        art_evasion.ProjectedGradientDescent,
        {art_evasion.ProjectedGradientDescent: dict(eps=EPS, eps_step=0.03, max_iter=3, num_random_init=0)},
    ),
}


def _same(got, want):
    if isinstance(want, float) and not np.isinf(want):
        return (
            got is not None
            and not isinstance(got, (str, bool))
            and abs(float(got) - want) <= 1e-9 + 1e-6 * want
        )
    return got == want


@pytest.mark.parametrize("name", sorted(MAPPINGS))
def test_art_gets_the_documented_eps_and_step_and_its_own_output_stays_in_the_ball(
    name, art_spy, tiny_model, batch
):
    """eps, eps_step, max_iter and norm as ART holds them when it runs, and ART's own output (before the
    adapter's final clip): inside the eps ball and reaching its surface."""
    make, art_class, expected = MAPPINGS[name]
    x, y = batch
    calls = art_spy(*expected)
    attack = make()
    labels = (y + 1) % 3 if attack.targeted else y
    attack(tiny_model, x, labels, eps=EPS)

    for cls, promised in expected.items():
        seen = [call for call in calls if call.cls is cls]
        assert seen, f"{name}: ART's {cls.__name__} never ran"
        for call in seen:
            for key, want in promised.items():
                assert key in call.params, f"{name}: ART's {cls.__name__} has no {key}"
                assert _same(call.params[key], want), (
                    f"{name}: ART's {cls.__name__} got {key}={call.params[key]!r}, the adapter promises {want!r}"
                )

    # ART's own output, before robustmask's `_finish`: within EPS of the images ART was given, and at EPS
    # somewhere (it reaches the surface of the ball). A wrong eps given to ART shows here.
    for call in (c for c in calls if c.cls is art_class):
        assert call.out.shape == call.x.shape
        assert call.x.min() - EPS >= 0.0 and call.x.max() + EPS <= 1.0  # the range clip cannot hide anything
        moved = linf(call.out, call.x)
        assert moved.max() <= EPS + 1e-6, f"{name}: ART moved an image by {moved.max():.5f} > eps {EPS}"
        # (ARTAutoPGD's momentum steps land just short of the surface: within 2%)
        assert moved.max() >= 0.98 * EPS, (
            f"{name}: ART moved the images by at most {moved.max():.5f} < eps {EPS}"
        )


def test_fgsm_moves_every_value_by_exactly_eps_before_the_final_clip(art_spy, tiny_model, batch):
    """FGSM's one step is eps * sign(gradient): every value with a gradient moves by exactly eps (a wrong
    eps, or eps_step used for the step, would show), with clip=None so that nothing clips anything."""
    x, y = batch
    calls = art_spy(art_evasion.FastGradientMethod)
    for eps in (0.01, 0.04):
        calls.clear()
        ARTFGSM(clip=None)(tiny_model, x, y, eps=eps)
        (call,) = calls
        delta = np.abs(call.out - call.x)
        assert np.all(np.isclose(delta, eps, atol=1e-6) | (delta == 0.0))
        assert np.mean(np.isclose(delta, eps, atol=1e-6)) > 0.5


def test_iterative_steps_are_the_promised_size_before_the_final_clip(art_spy, tiny_model, batch):
    """One iteration of BIM/PGD/MI-FGSM from x (no random start) moves every moved value by exactly
    eps_step: the rule of each adapter's docstring, as ART applies it."""
    x, y = batch
    calls = art_spy(
        art_evasion.BasicIterativeMethod,
        art_evasion.ProjectedGradientDescent,
        art_evasion.MomentumIterativeMethod,
    )
    for make, art_class, step in (
        (
            lambda: ARTBIM(steps=1, rel_stepsize=0.4, clip=None),
            art_evasion.BasicIterativeMethod,
            0.4 * EPS,
        ),
        (lambda: ARTPGD(steps=1, random_start=False, clip=None), art_evasion.ProjectedGradientDescent, EPS),
        (
            lambda: ARTPGD(steps=4, random_start=False, clip=None, rel_stepsize=0.1),
            art_evasion.ProjectedGradientDescent,
            None,
        ),
        (lambda: MIFGSM(steps=1, clip=None), art_evasion.MomentumIterativeMethod, EPS),
        (lambda: MIFGSM(steps=4, clip=None, rel_stepsize=0.15), art_evasion.MomentumIterativeMethod, None),
    ):
        calls.clear()
        attack = make()
        attack(tiny_model, x, y, eps=EPS)
        (call,) = [c for c in calls if c.cls is art_class]
        delta = np.abs(call.out - call.x)
        if step is not None:  # one step (2.5 eps / 1 is clipped to eps for PGD): exactly the step, or nothing
            assert np.all(np.isclose(delta, step, atol=1e-6) | (delta == 0.0)), attack
        else:  # 4 steps of 0.1 eps (0.15 eps): every value is a whole number of steps away, at most 4 (eps)
            step = attack.rel_stepsize * EPS
            steps = delta / step
            assert np.all(np.abs(steps - np.round(steps)) < 1e-3) and steps.max() <= 4 + 1e-3, attack
            assert np.isclose(delta.max(), min(4 * step, EPS), atol=1e-6), attack


class _Overshooting(EvasionAttack):
    """An ART evasion attack that ignores its budget: x + 3 eps * (+-1), outside the ball and the range."""

    attack_params = ["eps"]
    _estimator_requirements = ()

    def __init__(self, estimator, eps: float = 0.3):
        super().__init__(estimator=estimator)
        self.eps = eps

    def generate(self, x, y=None, **kwargs):
        signs = np.where(np.arange(x[0].size).reshape(x.shape[1:]) % 2 == 0, 1.0, -1.0)
        return (x + 3 * self.eps * signs).astype(np.float32)


def test_the_adapter_projects_what_art_returns_onto_the_ball_and_the_range(tiny_model, batch):
    """`_finish`: an ART attack that overshoots is brought back onto the eps ball (to its surface, exactly)
    and into the valid range; with clip=None only the ball applies."""
    x, y = batch
    eps = 0.05
    adv = ARTAttack(_Overshooting)(tiny_model, x, y, eps=eps)
    signs = np.where(np.arange(x[0].size).reshape(x.shape[1:]) % 2 == 0, 1.0, -1.0)
    np.testing.assert_allclose(adv, np.clip(x + eps * signs, 0.0, 1.0), atol=1e-7)
    wide = ARTAttack(_Overshooting, clip=None)(tiny_model, x, y, eps=0.15)
    np.testing.assert_allclose(wide, x + 0.15 * signs, atol=1e-6)
    assert wide.min() < 0.0 or wide.max() > 1.0  # not clipped to [0, 1]: clip=None
    np.testing.assert_allclose(
        ARTAttack(_Overshooting, clip=(0.2, 0.8))(tiny_model, np.clip(x, 0.2, 0.8), y, eps=eps),
        np.clip(np.clip(x, 0.2, 0.8) + eps * signs, 0.2, 0.8),
        atol=1e-7,
    )


MINIMAL = {
    "JSMA": lambda: JSMA(gamma=0.2),
    "DeepFool": lambda: DeepFool(steps=20),
    "CarliniL2": lambda: CarliniL2(binary_search_steps=3, steps=10, initial_const=1.0),
    "HopSkipJump": lambda: HopSkipJump(steps=3, max_eval=100, init_eval=10, init_size=20),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_self_sized_attacks_take_no_eps_and_flip_most_images(name, dtype, tiny_model, batch):
    x, y = batch
    x = x.astype(dtype)
    attack = MINIMAL[name]()
    assert attack.eps_bounded is False
    with pytest.raises(AttackError, match="chooses its own perturbation size"):
        attack(tiny_model, x, y, eps=0.01)
    adv = attack(tiny_model, x, y)
    assert adv.shape == x.shape and adv.dtype == dtype
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    correct = np.argmax(tiny_model.predict(x, verbose=0), 1) == y
    flipped = np.argmax(tiny_model.predict(adv, verbose=0), 1) != y
    assert flipped[correct].mean() >= 0.8, f"{name} flipped only {flipped[correct].mean():.2f}"


def test_carlini_linf_finds_small_linf_perturbations(tiny_model, batch):
    x, y = batch[0][:3], batch[1][:3]
    attack = CarliniLInf(
        steps=10, learning_rate=0.1, initial_const=0.5, largest_const=2.0, decrease_factor=0.5
    )
    assert attack.eps_bounded is False
    adv = attack(tiny_model, x, y)
    assert adv.shape == x.shape and adv.dtype == x.dtype
    assert accuracy(tiny_model, adv, y) < 0.5
    assert linf(adv, x).max() < 0.5


def test_jsma_changes_few_features(tiny_model, batch):
    x, y = batch
    adv = JSMA(theta=1.0, gamma=0.1)(tiny_model, x, y)
    changed = (np.abs(adv - x) > 1e-6).reshape(len(x), -1).mean(axis=1)
    assert changed.max() <= 0.1 + 2.0 / x[0].size  # JSMA changes features in pairs


def test_strong_gradient_attacks_misclassify_most_images(tiny_model, tiny_logits_model, batch):
    x, y = batch
    for model in (tiny_model, tiny_logits_model):
        for attack in (
            ARTBIM(steps=10),
            ARTPGD(steps=10),
            MIFGSM(steps=10),
            ARTAutoPGD(steps=10),
            ARTAutoPGD(loss_type="dlr", steps=10),
        ):
            assert accuracy(tiny_model, attack(model, x, y, eps=0.1), y) <= 0.25, attack


def test_iterative_beats_single_step(tiny_model, tiny_data):
    x, y = tiny_data
    fgsm = accuracy(tiny_model, ARTFGSM()(tiny_model, x, y, eps=0.03), y)
    pgd = accuracy(tiny_model, ARTPGD(steps=10)(tiny_model, x, y, eps=0.03), y)
    assert pgd <= fgsm


@pytest.mark.parametrize(
    "make",
    [
        lambda: ARTPGD(steps=10, targeted=True),
        lambda: ARTBIM(steps=10, targeted=True),
        lambda: MIFGSM(steps=10, targeted=True),
        lambda: ARTAutoPGD(steps=10, targeted=True),
    ],
    ids=["ARTPGD", "ARTBIM", "MIFGSM", "ARTAutoPGD"],
)
def test_targeted_gradient_attacks_reach_the_target(make, tiny_model, batch):
    x, y = batch
    target = (y + 1) % 3
    adv = make()(tiny_model, x, target, eps=0.2)
    reached = np.mean(np.argmax(tiny_model.predict(adv, verbose=0), 1) == target)
    assert reached > 0.6, reached


@pytest.mark.parametrize(
    "make",
    [
        lambda: JSMA(targeted=True, gamma=0.3),
        lambda: CarliniL2(targeted=True, binary_search_steps=3, steps=10, initial_const=1.0),
        lambda: HopSkipJump(targeted=True, steps=3, max_eval=100, init_eval=10, init_size=50),
    ],
    ids=["JSMA", "CarliniL2", "HopSkipJump"],
)
def test_targeted_self_sized_attacks_reach_the_target(make, tiny_model, batch):
    x, y = batch
    target = (y + 1) % 3
    with pytest.raises(AttackError, match="targeted"):
        make()(tiny_model, x)  # targeted needs y
    adv = make()(tiny_model, x, target)
    reached = np.mean(np.argmax(tiny_model.predict(adv, verbose=0), 1) == target)
    assert reached > 1 / 3 + 0.2, reached  # far more often than chance


def test_untargeted_jsma_never_aims_at_the_label(tiny_model, batch):
    x, y = batch
    adv = JSMA(gamma=0.3)(tiny_model, x, y)
    assert np.all(np.argmax(tiny_model.predict(adv, verbose=0), 1) != y)


@pytest.mark.parametrize("cls", [DeepFool, ARTSquareAttack, UniversalPerturbation])
def test_attacks_without_targeted_mode_refuse_it(cls):
    with pytest.raises(AttackError, match="no targeted mode"):
        cls(targeted=True)


def test_deepfool_leaves_misclassified_images_alone(tiny_model, batch):
    x, y = batch
    wrong = (y + 1) % 3
    adv = DeepFool(steps=10)(tiny_model, x, wrong)  # every image is "misclassified" against these labels
    np.testing.assert_array_equal(adv, x)


def test_binary_models(binary_model, binary_data):
    x, y = binary_data[0][:N], binary_data[1][:N]
    assert accuracy(binary_model, x, y) > 0.9
    for attack, eps in (
        (ARTPGD(steps=10), 0.2),
        (ARTSquareAttack(steps=50), 0.3),
        (DeepFool(steps=20), None),
        (JSMA(gamma=0.3), None),
    ):
        adv = attack(binary_model, x, y, eps=eps) if eps else attack(binary_model, x, y)
        assert adv.shape == x.shape
        assert accuracy(binary_model, adv, y) <= 0.5, attack


def test_autopgd_dlr_refuses_two_classes_at_call_time(binary_model, binary_data):
    attack = ARTAutoPGD(loss_type="dlr", steps=2)  # the model is unknown at construction
    with pytest.raises(AttackError, match="at least 3 classes.*loss_type='ce'"):
        attack(binary_model, binary_data[0][:4], binary_data[1][:4], eps=0.1)
    with pytest.raises(AttackError, match="loss_type"):
        ARTAutoPGD(loss_type="hinge")


def test_single_unit_sigmoid_model(binary_data):
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [keras.Input((12, 12, 3)), keras.layers.Flatten(), keras.layers.Dense(1, activation="sigmoid")]
    )
    x, y = binary_data[0][:8], binary_data[1][:8]
    adv = ARTFGSM()(model, x, y, eps=0.05)
    np.testing.assert_allclose(adv, FGSM()(model, x, y, eps=0.05), atol=1e-6)


# ---------------------------------------------------------------------------------------------- black box
@pytest.mark.parametrize(
    "make,eps",
    [
        (lambda: ARTSquareAttack(steps=20), 0.1),
        (lambda: HopSkipJump(steps=3, max_eval=100, init_eval=10), None),
    ],
    ids=["SquareAttack", "HopSkipJump"],
)
@pytest.mark.parametrize("given_labels", [True, False])
def test_black_box_attacks_never_take_gradients_and_count_queries(make, eps, given_labels, probed, batch):
    model, probe = probed
    x, y = batch
    attack = make()
    assert attack.needs_gradients is False
    probe.images.assign(0)
    labels = y if given_labels else None
    adv = attack(model, x, labels, eps=eps) if eps else attack(model, x, labels)
    assert adv.shape == x.shape
    assert probe.gradient_calls == []
    assert attack.queries == int(probe.images.numpy()) >= len(x)
    # queries are per call
    first = attack.queries
    probe.images.assign(0)
    attack(model, x[:2], y[:2], eps=eps) if eps else attack(model, x[:2], y[:2])
    assert attack.queries == int(probe.images.numpy()) < first


def test_gradient_probe_detects_white_box_attacks(probed, batch):
    model, probe = probed
    x, y = batch
    ARTPGD(steps=2)(model, x, y, eps=0.05)
    assert probe.gradient_calls, "the probe must see the gradients a white-box attack takes"
    assert ARTPGD().queries is None and ARTPGD().needs_gradients


# ---------------------------------------------------------------------------------------------- universal, patch
def test_universal_perturbation_is_one_perturbation_that_transfers(tiny_model, tiny_data):
    x, y = tiny_data
    x_fit, y_fit, x_new, y_new = x[:16], y[:16], x[16:48], y[16:48]
    attack = UniversalPerturbation(
        attacker="fgsm", epochs=3, batch_size=5
    )  # one perturbation despite batches
    eps = 0.2
    adv = attack(tiny_model, x_fit, y_fit, eps=eps)
    assert attack.perturbation.shape == x.shape[1:]
    assert np.abs(attack.perturbation).max() <= eps + 1e-6
    np.testing.assert_allclose(adv, attack.apply(x_fit), atol=1e-6)
    assert 0.0 <= attack.fooling_rate <= 1.0
    random_sign = np.sign(np.random.default_rng(0).normal(size=x.shape[1:])).astype(np.float32)
    noisy = np.clip(x_new + eps * random_sign, 0, 1)
    assert accuracy(tiny_model, attack.apply(x_new), y_new) < accuracy(tiny_model, noisy, y_new) - 0.3
    assert attack.apply(x_new.astype(np.float64)).dtype == np.float64


def test_universal_perturbation_apply_needs_a_call_first():
    with pytest.raises(AttackError, match="call the attack"):
        UniversalPerturbation().apply(np.zeros((1, 12, 12, 3), np.float32))
    with pytest.raises(AttackError, match="unknown attacker"):
        UniversalPerturbation(attacker="nope")


def test_patch_default_sits_on_the_mask_region():
    top, left, height, width = AdversarialPatch().box_for((64, 64, 3))
    assert 0.45 * 64 <= top and top + height <= 0.85 * 64  # below the nose, above the chin's end
    assert abs((left + width / 2) - 32) <= 1  # centred
    assert AdversarialPatch(center=(0.25, 0.25), size=(0.5, 0.5)).box_for((12, 12, 3)) == (0, 0, 6, 6)


def test_adversarial_patch_contract(tiny_model, batch):
    x, y = batch
    attack = AdversarialPatch(size=(0.5, 0.5), epochs=30)
    assert attack.eps_bounded is False
    with pytest.raises(AttackError, match="chooses its own perturbation size"):
        attack(tiny_model, x, y, eps=0.1)
    adv = attack(tiny_model, x, y)
    top, left, height, width = attack.box
    assert attack.patch.shape == (height, width, 3)
    assert attack.patch.min() >= 0.0 and attack.patch.max() <= 1.0
    inside = np.zeros(x.shape[1:3], bool)
    inside[top : top + height, left : left + width] = True
    np.testing.assert_array_equal(adv[:, ~inside], x[:, ~inside])
    np.testing.assert_allclose(
        adv[:, inside], np.broadcast_to(attack.patch.reshape(-1, 3), adv[:, inside].shape)
    )
    np.testing.assert_allclose(attack.apply(x), adv)
    assert accuracy(tiny_model, adv, y) < accuracy(tiny_model, x, y)


def test_targeted_patch_pushes_to_the_target(tiny_model, tiny_data):
    x, y = tiny_data[0][:24], tiny_data[1][:24]
    attack = AdversarialPatch(center=(0.5, 0.5), size=(0.5, 0.5), epochs=30, targeted=True)
    adv = attack(tiny_model, x, np.zeros_like(y))
    assert np.mean(np.argmax(tiny_model.predict(adv, verbose=0), 1) == 0) > 0.6
    with pytest.raises(AttackError, match="clip"):
        AdversarialPatch(clip=None)


# ---------------------------------------------------------------------------------------------- generic adapter
def test_generic_adapter_wraps_any_art_attack(tiny_model, batch):
    from art.attacks.evasion import FastGradientMethod

    x, y = batch
    by_class = ARTAttack(FastGradientMethod)(tiny_model, x, y, eps=0.03)
    by_name = ARTAttack("FastGradientMethod")(tiny_model, x, y, eps=0.03)
    np.testing.assert_array_equal(by_class, by_name)
    np.testing.assert_allclose(by_class, ARTFGSM()(tiny_model, x, y, eps=0.03))
    # eps_step follows ART's own default ratio (0.1 / 0.3) unless told
    assert ARTAttack("BasicIterativeMethod", max_iter=3).stepsize(0.03) == pytest.approx(0.01)
    assert ARTAttack("BasicIterativeMethod", abs_stepsize=0.002).stepsize(0.03) == 0.002
    assert ARTBIM(steps=10).stepsize(0.04) == pytest.approx(0.005)
    assert ARTPGD(steps=10).stepsize(0.04) == pytest.approx(0.01)
    # attacks without eps are found out from ART's signature
    deepfool = ARTAttack("DeepFool", max_iter=10)
    assert deepfool.eps_bounded is False and ARTAttack.eps_bounded is True
    assert np.mean(np.argmax(tiny_model.predict(deepfool(tiny_model, x, y), verbose=0), 1) != y) > 0.8
    square = ARTAttack("SquareAttack", max_iter=5)
    assert square.needs_gradients is False and square.eps_bounded
    # ART attacks that read outputs as probabilities get probabilities
    newton = ARTAttack("NewtonFool", max_iter=20)
    assert newton.outputs == "probabilities" and deepfool.outputs == "log_probabilities"
    assert accuracy(tiny_model, newton(tiny_model, x, y), y) <= 0.25
    # ART's own batch_size stays unless given; the named adapters share robustmask's
    assert "batch_size" not in ARTAttack("ZooAttack").art_kwargs(None)
    assert ARTAttack("ZooAttack", batch_size=4).art_kwargs(None)["batch_size"] == 4
    assert JSMA().art_kwargs(None)["batch_size"] == 128


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(eps=0.1), "pass eps when calling"),
        (dict(eps_step=0.1), "rel_stepsize"),
        (dict(max_iterations=3), "no parameter"),
        (dict(norm=3), "norm must be 'inf', 2 or 1"),
        (dict(norm=2, art_attack_class="DeepFool"), "has no norm parameter"),
        (dict(targeted=True, art_attack_class="DeepFool"), "no targeted mode"),
        (dict(art_attack_class="NoSuchAttack"), "no attack called"),
        (dict(art_attack_class=int), "not an ART evasion attack"),
        (dict(loss=lambda y, p: p), "own loss"),
        (dict(rel_stepsize=-1.0), "positive"),
        (dict(outputs="logits"), "outputs must be"),
    ],
)
def test_generic_adapter_rejects_bad_arguments(kwargs, match):
    cls = kwargs.pop("art_attack_class", "FastGradientMethod")
    with pytest.raises(AttackError, match=match):
        ARTAttack(cls, **kwargs)


def test_art_params_are_checked_by_art_at_call_time(tiny_model, batch):
    with pytest.raises(AttackError, match="refused its parameters"):
        ARTAttack("ProjectedGradientDescent", max_iter=-1)(tiny_model, *batch, eps=0.1)


def test_not_graph_safe(tiny_model, batch):
    x, y = batch
    attack = ARTFGSM()

    @tf.function
    def step(x, y):
        return attack.generate(tiny_model, x, y, [0.01])

    # (tf.function re-raises errors from inside a traced function as its own StagingError)
    with pytest.raises(Exception, match="AttackError: ARTFGSM is an ART attack.*not graph-safe"):
        step(tf.constant(x), tf.one_hot(y, 3))
    with pytest.raises(AttackError, match="not graph-safe"):
        tf.function(step.python_function, autograph=False)(tf.constant(x), tf.one_hot(y, 3))
    eager = attack.generate(tiny_model, tf.constant(x), tf.one_hot(y, 3), [0.01, 0.02])
    assert eager.shape == (2,) + x.shape and eager.dtype == tf.float32


def test_estimators_are_cached_weakly(batch):
    from robustmask.attacks.art import estimator

    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [keras.Input((12, 12, 3)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")]
    )
    x, y = batch
    attack = ARTBIM(steps=2)
    attack(model, x, y, eps=0.01)
    attack(model, x, y, eps=0.02)
    assert len(estimator._CACHE[model]) == 1  # one estimator, reused
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None, "the estimator cache must not keep models alive"


def test_lazy_names_and_registry():
    assert robustmask.attacks.ARTPGD is ARTPGD
    assert robustmask.attacks.ARTAttack is ARTAttack
    assert isinstance(robustmask.attacks.get("jsma", gamma=0.1), JSMA)
    assert isinstance(robustmask.attacks.get("hopskipjump"), HopSkipJump)
    for cls in (
        ARTFGSM,
        ARTBIM,
        ARTPGD,
        MIFGSM,
        ARTAutoPGD,
        JSMA,
        DeepFool,
        CarliniL2,
        CarliniLInf,
        ARTSquareAttack,
        HopSkipJump,
        UniversalPerturbation,
        AdversarialPatch,
    ):
        assert cls.graph_safe is False
        assert "arxiv.org/abs/" in cls.__doc__ and "Example::" in cls.__doc__


def test_importing_art_closes_no_stream_of_an_existing_log_handler():
    """ART's import runs logging.config.dictConfig, which closes every existing handler; absl's handler
    (made when TensorFlow is imported) then closes its stream unless it is the current sys.stderr, as
    under a test runner's capture. robustmask imports ART without that."""
    import subprocess
    import sys

    code = (
        "import io, sys; first = io.StringIO(); sys.stderr = first; import tensorflow; "
        "sys.stderr = io.StringIO(); from robustmask.attacks.art import adapter; import art; "
        "print(first.closed)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split()[-1] == "False"
