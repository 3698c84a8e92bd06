"""attacks.get: a parameter the attack cannot take is the user's error; a TypeError inside it is a bug."""

from __future__ import annotations

import pytest

import robustmask.attacks as attacks
from robustmask.attacks import BIM, registry
from robustmask.errors import AttackError


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry._REGISTRY, "registered", {})


class BuggyAttack(BIM):
    """Takes its parameters, then trips over its own code."""

    def __init__(self, window: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.window = len(window)  # TypeError: object of type 'int' has no len()


class Needs(BIM):
    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = size


def test_a_type_error_inside_the_constructor_propagates():
    attacks.register("buggy", BuggyAttack)
    with pytest.raises(TypeError, match="has no len"):
        attacks.get("buggy", window=5, steps=2)
    attacks.register("buggy-factory", lambda **params: BuggyAttack(**params))
    with pytest.raises(TypeError, match="has no len"):
        attacks.get("buggy-factory")


def test_names_the_constructor_cannot_take_are_bad_parameters():
    attacks.register("needs", Needs)
    # Unknown to the class and to every base its **kwargs reach.
    with pytest.raises(AttackError, match=r"^needs has no parameter 'stpes'"):
        attacks.get("needs", size=2, stpes=3)
    with pytest.raises(AttackError, match="missing a required argument: 'size'"):
        attacks.get("needs")
    attacks.register("needs-factory", lambda **params: Needs(size=1, **params))
    with pytest.raises(AttackError, match="^needs-factory has no parameter 'stpes'"):
        attacks.get("needs-factory", stpes=3)
    assert attacks.get("needs", size=2, steps=4).steps == 4


def test_value_errors_of_the_attack_itself_keep_their_message():
    with pytest.raises(AttackError, match="steps must be a positive integer"):
        attacks.get("bim", steps=0)
