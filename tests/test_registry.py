"""The attack registry: built-in names, parameters, errors, register() and entry-point plug-ins."""

from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import robustmask
import robustmask.attacks as attacks
from robustmask.attacks import BIM, FGSM, PGD, registry
from robustmask.errors import AttackError


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry._REGISTRY, "registered", {})


@pytest.mark.parametrize(
    "name, params, cls",
    [
        ("fgsm", {}, FGSM),
        ("fgsm", {"clip": None}, FGSM),
        ("bim", {"steps": 5, "rel_stepsize": 0.3}, BIM),
        ("pgd", {"steps": 7, "restarts": 2, "seed": 1, "targeted": True}, PGD),
        ("PGD", {}, PGD),
    ],
)
def test_get_builds_the_named_attack_with_its_params(name, params, cls):
    attack = attacks.get(name, **params)
    assert type(attack) is cls
    for key, value in params.items():
        assert getattr(attack, key) == value


BUILTINS = {
    "fgsm": "FGSM",
    "bim": "BIM",
    "pgd": "PGD",
    "art-fgsm": "ARTFGSM",
    "art-bim": "ARTBIM",
    "art-pgd": "ARTPGD",
    "mifgsm": "MIFGSM",
    "autopgd": "AutoPGD",
    "art-autopgd": "ARTAutoPGD",
    "jsma": "JSMA",
    "deepfool": "DeepFool",
    "cw-l2": "CarliniL2",
    "cw-linf": "CarliniLInf",
    "square": "SquareAttack",
    "art-square": "ARTSquareAttack",
    "hopskipjump": "HopSkipJump",
    "universal": "UniversalPerturbation",
    "universal-sgd": "SGDUniversalPerturbation",
    "patch": "AdversarialPatch",
}


def test_available_lists_the_builtins():
    names = attacks.available()
    assert set(BUILTINS) <= set(names), sorted(set(BUILTINS) - set(names))
    assert names == sorted(names) and len(names) == len(set(names))
    for name, cls_name in BUILTINS.items():  # each name builds its own class, with no parameters
        attack = attacks.get(name)
        assert isinstance(attack, attacks.Attack) and type(attack).__name__ == cls_name, name
        assert type(attack) is getattr(attacks, cls_name)  # the public name is the registered class


# An arXiv abstract link with a real identifier (YYMM.NNNNN, or the old YYMM.NNNN), e.g. 1412.6572.
ARXIV = re.compile(r"https://arxiv\.org/abs/\d{4}\.\d{4,5}\b")
YEAR = re.compile(r"\b(19|20)\d\d\b")


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_registered_attack_cites_its_paper_and_shows_an_example(name):
    """Each built-in attack's docstring cites its paper (authors' year and an arXiv link) and has an
    ``Example::`` whose construction line really builds that attack."""
    cls = type(attacks.get(name))
    own = cls.__dict__.get("__doc__")  # not one inherited from a base class
    assert own, f"{cls.__name__} has no docstring of its own"
    doc = inspect.cleandoc(own)
    assert ARXIV.search(doc), f"{cls.__name__}'s docstring cites no arXiv paper"
    assert YEAR.search(doc[: ARXIV.search(doc).start()]), f"{cls.__name__}'s citation has no year"
    assert "Example::" in doc, f"{cls.__name__}'s docstring shows no Example::"
    built = _constructions(doc[doc.index("Example::") :], f"robustmask.attacks.{cls.__name__}")
    assert built, f"{cls.__name__}'s example never builds a robustmask.attacks.{cls.__name__}"
    for call in built:  # the example's own constructor calls, run as written
        attack = eval(call, {"robustmask": robustmask, "np": np})  # noqa: S307 (our own docstrings)
        assert type(attack) is cls, call


def _constructions(example: str, qualified: str) -> list[str]:
    """The calls ``qualified(...)`` in the one-line statements of an example, as source text."""
    calls = []
    for line in example.splitlines()[1:]:
        try:
            tree = ast.parse(line.strip())
        except SyntaxError:
            continue
        calls += [
            ast.unparse(node)
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and ast.unparse(node.func) == qualified
        ]
    return calls


def test_unknown_name_lists_available_and_suggests_close_ones():
    with pytest.raises(AttackError) as error:
        attacks.get("pgdd")
    message = str(error.value)
    assert "unknown attack 'pgdd'" in message and "did you mean" in message and "pgd" in message
    assert "available:" in message and "fgsm" in message and "bim" in message
    with pytest.raises(AttackError, match="strings"):
        attacks.get(3)


def test_bad_params_give_a_clear_error():
    with pytest.raises(
        AttackError, match=r"^pgd has no parameter 'stpes' \(did you mean steps\?\); its parameters: steps"
    ):
        attacks.get("pgd", stpes=3)
    with pytest.raises(AttackError, match="steps must be a positive integer"):
        attacks.get("bim", steps=0)
    with pytest.raises(AttackError, match="restarts"):
        attacks.get("pgd", restarts=-1)


def test_register(clean_registry):
    attacks.register("My_BIM", lambda **params: BIM(steps=3, **params))
    assert "my-bim" in attacks.available()
    attack = attacks.get("my-bim", targeted=True)
    assert isinstance(attack, BIM) and attack.steps == 3 and attack.targeted
    with pytest.raises(AttackError, match="not an Attack class"):
        attacks.register("thing", 42)
    attacks.register("not-an-attack", dict)
    with pytest.raises(AttackError, match="not a robustmask Attack"):
        attacks.get("not-an-attack")


PLUGIN = '''
"""A third-party attack: eps times the sign of uniform noise (a gradient-free baseline)."""
import tensorflow as tf

import robustmask


class NoiseAttack(robustmask.GradientAttack):
    needs_gradients = False

    def run(self, model, x, y, eps):
        return x + eps * tf.sign(tf.random.uniform(tf.shape(x), -1.0, 1.0))
'''

CHECK = """
import numpy as np, keras
import robustmask.attacks as attacks
from robustmask.errors import AttackError

names = attacks.available()
assert "noise-attack" in names and "broken-attack" in names and "pgd" in names, names
attack = attacks.get("noise-attack", batch_size=4)
assert type(attack).__name__ == "NoiseAttack" and attack.batch_size == 4
model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
x = np.full((6, 4, 4, 3), 0.5, np.float32)
x_adv = attack(model, x, np.arange(6) % 3, eps=0.1)
assert x_adv.shape == x.shape and np.allclose(np.abs(x_adv - x), 0.1), x_adv
try:
    attacks.get("broken-attack")
except AttackError as error:
    print("BROKEN:", error)
else:
    raise SystemExit("a broken plug-in loaded")
print("PLUGIN OK")
"""


@pytest.fixture
def plugin_site(tmp_path):
    """A directory laid out like site-packages with an installed plug-in distribution.

    An installed package exposes its entry points through ``<name>.dist-info/entry_points.txt`` on
    sys.path; this is what ``pip install`` writes, without needing a build backend or the network.
    """
    site = tmp_path / "site"
    info = site / "rm_noise_plugin-0.1.0.dist-info"
    info.mkdir(parents=True)
    (site / "rm_noise_plugin.py").write_text(PLUGIN)
    (site / "rm_broken_plugin.py").write_text("import rm_dependency_that_is_not_installed\n")
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rm-noise-plugin\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent("""\
        [robustmask.attacks]
        noise-attack = rm_noise_plugin:NoiseAttack
        broken-attack = rm_broken_plugin:BrokenAttack
    """)
    )
    return site


def test_entry_point_plugins_in_a_fresh_process(plugin_site):
    env = {**os.environ, "PYTHONPATH": str(plugin_site), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "PLUGIN OK" in done.stdout
    broken = next(line for line in done.stdout.splitlines() if line.startswith("BROKEN:"))
    assert (
        "broken-attack" in broken and "rm_broken_plugin:BrokenAttack" in broken and "failed to load" in broken
    )
    assert "rm_dependency_that_is_not_installed" in broken


def test_plugins_are_absent_without_their_distribution():
    assert "noise-attack" not in attacks.available()


def test_one_table_names_every_built_in_class_and_its_lazy_imports():
    """registry._BUILTIN is the one table: robustmask.attacks and robustmask.attacks.art export exactly
    its classes (plus the base classes and helpers), each the class the registry builds by name."""
    import robustmask.attacks.art as art

    built_in = {path.partition(":")[2]: name for name, path in registry._BUILTIN.items()}
    art_names = {
        cls for cls, name in built_in.items() if registry._BUILTIN[name].startswith("robustmask.attacks.art.")
    }
    assert set(art.__all__) == art_names | {"ARTAttack"}
    assert set(built_in) <= set(attacks.__all__)
    for cls_name, name in built_in.items():
        assert type(registry.get(name)) is getattr(attacks, cls_name)
        if cls_name in art_names:
            assert getattr(art, cls_name) is getattr(attacks, cls_name)
    with pytest.raises(AttributeError, match="no attribute 'NotAnAttack'"):
        art.NotAnAttack  # noqa: B018
