"""One contract for every attack the registry can build, native or ART, and for a user's own subclass.

For each name in `robustmask.attacks.available()` (small settings, a tiny model): the result keeps the
input's shape and dtype and stays in the clip range; an eps-bounded attack stays inside the eps ball of
its norm (L-inf, L2 or L1) for every eps of a list, and a list of epsilons gives one result per eps; an attack that sizes its own
perturbation refuses an eps; bad input is refused with a one-line error before any work.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import robustmask.attacks as attacks
from robustmask.errors import RobustmaskError

# Few iterations: the contract is about what comes back, not how strong it is.
FAST = {
    "art-bim": {"steps": 3},
    "art-pgd": {"steps": 3},
    "autopgd": {"steps": 3, "seed": 0},
    "art-autopgd": {"steps": 3},
    "bim": {"steps": 3},
    "mifgsm": {"steps": 3},
    "pgd": {"steps": 3, "seed": 0},
    "cw-l2": {"steps": 3, "binary_search_steps": 2},
    "cw-linf": {"steps": 3},
    "deepfool": {"steps": 5},
    "hopskipjump": {"steps": 2, "max_eval": 40, "init_eval": 10, "init_size": 10},
    "patch": {"epochs": 3},
    "square": {"steps": 20, "seed": 0},
    "art-square": {"steps": 20},
    "universal": {"epochs": 2},
    "universal-sgd": {"epochs": 2},
}
EPSILONS = [0.01, 0.05]
NAMES = [name for name in attacks.available() if name in attacks.registry._BUILTIN]


def custom_rfgsm():
    """The attack of examples/custom_attack_subclass.py, as a user writes it."""
    path = Path(__file__).resolve().parents[1] / "examples" / "custom_attack_subclass.py"
    spec = importlib.util.spec_from_file_location("custom_attack_subclass", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RFGSM()


def with_saturated_pixels(x):
    """Images with rows of pure black and pure white, where any step outward leaves [0, 1]."""
    x = x.copy()
    x[:, :2] = 0.0
    x[:, -2:] = 1.0
    return x


def build(name, **params):
    return (
        custom_rfgsm() if name == "custom (examples/)" else attacks.get(name, **FAST.get(name, {}), **params)
    )


def sizes(adversarial, x, norm):
    """Per-image perturbation norms, computed in NumPy (independent of robustmask.attacks.norms)."""
    delta = (adversarial.astype(np.float64) - x.astype(np.float64)).reshape(len(x), -1)
    return np.linalg.norm(delta, ord=norm.order, axis=1)


def test_every_built_in_attack_is_in_the_contract():
    assert set(NAMES) == set(attacks.registry._BUILTIN)  # available() lists every built-in


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES + ["custom (examples/)"])
def test_shape_dtype_range_and_budget(name, dtype, tiny_model, tiny_data):
    x, y = with_saturated_pixels(tiny_data[0][:6]).astype(dtype), tiny_data[1][:6]
    check_contract(name, build(name), x, y, tiny_model, EPSILONS)


# Every attack that takes a norm, in the norms it has (Square and AutoPGD: L-inf natively, the others
# through ART).
NORMED = [
    (name, norm)
    for name in ("fgsm", "fgm", "bim", "pgd", "art-fgsm", "art-pgd", "art-autopgd")
    for norm in ("2", "1")
] + [("art-square", "2"), ("fgm", "inf")]


@pytest.mark.parametrize("name,norm", NORMED)
def test_shape_range_and_budget_in_other_norms(name, norm, tiny_model, tiny_data):
    x, y = with_saturated_pixels(tiny_data[0][:6]), tiny_data[1][:6]
    attack = build(name, norm=norm)
    assert attack.norm == attacks.norms.get(norm)
    # L2 and L1 budgets in input units: about 1 and 5 pixel values' worth of change at full scale.
    check_contract(name, attack, x, y, tiny_model, {"2": [0.5, 1.0], "1": [2.0, 5.0], "inf": EPSILONS}[norm])


def check_contract(name, attack, x, y, model, epsilons):
    dtype = x.dtype
    if attack.eps_bounded:
        result = attack(model, x, y, eps=epsilons)
        assert result.shape == (len(epsilons),) + x.shape and result.dtype == dtype
        for eps, adversarial in zip(epsilons, result):
            assert sizes(adversarial, x, attack.norm).max() <= eps * (1 + 1e-5) + 1e-6, (
                f"{name} left the eps ball"
            )
        single = attack(model, x, y, eps=epsilons[0])
        assert single.shape == x.shape and single.dtype == dtype
        assert sizes(single, x, attack.norm).max() <= epsilons[0] * (1 + 1e-5) + 1e-6
    else:
        result = attack(model, x, y)
        assert result.shape == x.shape and result.dtype == dtype
        with pytest.raises(RobustmaskError, match="takes no eps") as error:
            attack(model, x, y, eps=0.1)
        assert len(str(error.value).splitlines()) == 1
    assert np.all(result >= 0) and np.all(result <= 1), f"{name} left the clip range"
    assert np.all(np.isfinite(result))


# The deterministic ones (PGD's random start is seeded); the others draw at random per call.
@pytest.mark.parametrize("name", ["fgsm", "bim", "pgd", "art-fgsm", "art-bim", "mifgsm"])
def test_a_list_of_epsilons_equals_separate_calls(name, tiny_model, tiny_data):
    x, y = tiny_data[0][:6], tiny_data[1][:6]
    together = build(name)(tiny_model, x, y, eps=EPSILONS)
    for eps, adversarial in zip(EPSILONS, together):
        np.testing.assert_allclose(adversarial, build(name)(tiny_model, x, y, eps=eps), atol=1e-6)


@pytest.mark.parametrize("name", NAMES + ["custom (examples/)"])
def test_bad_input_is_a_one_line_error_before_any_work(name, tiny_model, tiny_data):
    x, y = tiny_data[0][:4].copy(), tiny_data[1][:4]
    attack = build(name)
    eps = {"eps": 0.05} if attack.eps_bounded else {}
    nan = x.copy()
    nan[1, 0, 0, 0] = np.nan
    for images, labels, message in [
        (nan, y, "NaN/inf"),
        (x * 255, y, "outside the valid range"),
        (x, y[:3], "3 labels for 4 inputs"),
        (x, [0, 1, 2, 3], "label 3"),
    ]:
        with pytest.raises(RobustmaskError, match=message) as error:
            attack(tiny_model, images, labels, **eps)
        assert len(str(error.value).splitlines()) == 1, f"{name}: {error.value}"


@pytest.mark.parametrize("name", NAMES + ["custom (examples/)"])
def test_needs_gradients_tells_the_truth(name, probed, tiny_data):
    """A black-box attack never takes a gradient of the model; a white-box one does."""
    model, probe = probed
    x, y = tiny_data[0][:4], tiny_data[1][:4]
    attack = build(name)
    attack(model, x, y, eps=0.05) if attack.eps_bounded else attack(model, x, y)
    if attack.needs_gradients:
        assert probe.gradient_calls, f"{name} says it needs gradients but took none"
    else:
        assert probe.gradient_calls == [], f"{name} is black-box but took a gradient"
