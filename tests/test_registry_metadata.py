"""What the registries say each attack and defence is: metadata, describe(), the CLI listing, attack_kind."""

from __future__ import annotations

import dataclasses

import pytest
import tensorflow as tf

import robustmask.attacks as attacks
import robustmask.defenses as defenses
from robustmask.attacks import FGSM, PGD, AttackInfo, GradientAttack, registry
from robustmask.cli.main import main
from robustmask.errors import AttackError
from robustmask.evaluation.sanity import attack_kind


@pytest.fixture(autouse=True)
def clean_registries(monkeypatch):
    monkeypatch.setattr(registry._REGISTRY, "registered", {})
    monkeypatch.setattr(defenses.registry._REGISTRY, "registered", {})


# name: (kind, norm, steps) as registered, and attack_kind of the attack built with no parameters
# (the table attack_kind gave when it guessed single-step attacks from their class names).
EXPECTED = {
    "fgsm": ("gradient", "inf", "single-step", "single-step"),
    "fgm": ("gradient", "2", "single-step", "single-step"),
    "bim": ("gradient", "inf", "iterative", "iterative"),
    "pgd": ("gradient", "inf", "iterative", "iterative"),
    "art-fgsm": ("gradient", "inf", "single-step", "single-step"),
    "art-bim": ("gradient", "inf", "iterative", "iterative"),
    "art-pgd": ("gradient", "inf", "iterative", "iterative"),
    "mifgsm": ("gradient", "inf", "iterative", "iterative"),
    "autopgd": ("gradient", "inf", "iterative", "iterative"),
    "art-autopgd": ("gradient", "inf", "iterative", "iterative"),
    "jsma": ("self-sized", "inf", "iterative", "self-sized"),
    "deepfool": ("self-sized", "2", "iterative", "self-sized"),
    "cw-l2": ("self-sized", "2", "iterative", "self-sized"),
    "cw-linf": ("self-sized", "inf", "iterative", "self-sized"),
    "square": ("gradient-free", "inf", "iterative", "gradient-free"),
    "art-square": ("gradient-free", "inf", "iterative", "gradient-free"),
    "hopskipjump": ("gradient-free", "inf", "iterative", "gradient-free"),
    "universal": ("universal", "inf", "iterative", "iterative"),
    "universal-sgd": ("universal", "inf", "iterative", "iterative"),
    "patch": ("patch", "inf", "iterative", "self-sized"),
}


def test_the_table_covers_every_built_in():
    assert set(EXPECTED) == set(registry._BUILTIN)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_built_in_describes_itself_and_keeps_its_attack_kind(name):
    kind, norm, steps, sanity_kind = EXPECTED[name]
    assert attacks.describe(name) == AttackInfo(kind, norm, steps, name=name)
    attack = attacks.get(name)
    assert attack_kind(attack) == sanity_kind
    derived = registry.info_of(attack)  # what a plug-in without metadata would get
    assert (derived.norm, derived.steps) == (norm, steps)
    assert derived.kind == (kind if kind not in ("universal", "patch") else derived.kind)


def test_one_step_and_a_renamed_fgsm_are_single_step():
    class Renamed(FGSM):
        """FGSM under another name."""

    assert attack_kind(Renamed()) == "single-step"
    assert attack_kind(PGD(steps=1)) == "single-step"
    assert attack_kind(PGD(steps=2)) == "iterative"
    assert attack_kind(attacks.get("art-pgd", steps=1)) == "single-step"
    from robustmask.attacks.art import ARTAttack

    assert attack_kind(ARTAttack("FastGradientMethod")) == "single-step"
    assert attack_kind(ARTAttack("ProjectedGradientDescent")) == "iterative"


class Noise(GradientAttack):
    """Noise of size eps in the sign of uniform noise: a gradient-free baseline."""

    needs_gradients = False

    def run(self, model, x, y, eps):
        return x + eps * tf.sign(tf.random.uniform(tf.shape(x), -1.0, 1.0))


def test_adding_an_attack_is_one_registration_with_its_metadata(capsys):
    info = AttackInfo("gradient-free", "inf", "iterative")
    attacks.register("my_noise", Noise, info)
    assert "my-noise" in attacks.available()
    assert attacks.describe("my-noise") == dataclasses.replace(info, name="my-noise")
    assert attacks.catalogue()["my-noise"].kind == "gradient-free"
    assert isinstance(attacks.get("my-noise"), Noise)
    assert main(["attacks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = lines.index(next(line for line in lines if line.startswith("my-noise ")))
    assert "gradient-free baseline" in lines[at]
    assert "kind: gradient-free, norm: inf, iterative" in lines[at + 2]
    pgd = lines.index(next(line for line in lines if line.startswith("pgd ")))
    assert "kind: gradient, norm: inf, iterative" in lines[pgd + 2]


def test_an_attack_without_metadata_gets_it_from_its_attributes():
    attacks.register("noise-2", lambda **params: Noise(norm=2, **params))
    assert attacks.describe("noise-2") == AttackInfo("gradient-free", "2", "iterative", name="noise-2")

    class OneStep(PGD):
        """PGD with one step and a required parameter."""

        def __init__(self, size, **kwargs):
            super().__init__(steps=1, **kwargs)

    attacks.register("one-step", OneStep)  # cannot be built without `size`: its class decides
    assert attacks.describe("one-step") == AttackInfo("gradient", "inf", "iterative", name="one-step")
    attacks.register("fgsm-like", type("FgsmLike", (FGSM,), {}))
    assert attacks.describe("fgsm-like").steps == "single-step"


def test_bad_metadata_is_refused():
    with pytest.raises(AttackError, match="kind must be one of"):
        AttackInfo("magic", "inf", "iterative")
    with pytest.raises(AttackError, match="steps must be one of"):
        AttackInfo("gradient", "inf", "many")
    with pytest.raises(AttackError, match="must be an AttackInfo"):
        attacks.register("x", Noise, {"kind": "gradient"})  # type: ignore[arg-type]
    with pytest.raises(AttackError, match="unknown attack"):
        attacks.describe("nope")


def test_defences_carry_a_description_and_the_cli_lists_them(capsys):
    for name in ("multi-eps", "pgd-at", "fast-at", "trades", "distillation"):
        assert len(defenses.describe(name)) > 20 and "\n" not in defenses.describe(name)
    assert "TRADES" in defenses.describe("trades")

    class Mine(defenses.PGDAdversarialTrainer):
        """My own preset, described by its docstring."""

    defenses.register("mine", Mine)
    assert defenses.describe("mine") == "My own preset, described by its docstring."
    defenses.register("mine-2", Mine, "a second preset")
    assert defenses.describe("mine-2") == "a second preset"
    with pytest.raises(SystemExit):
        main(["defend", "--help"])
    help_text = "".join(capsys.readouterr().out.split())  # argparse wraps lines, even inside a name
    for name in defenses.available():
        assert name in help_text
