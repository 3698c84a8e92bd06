"""Defences: adversarial training (the paper's Algorithm 2 and stronger ones) and more."""

from robustmask.defenses.base import Defense
from robustmask.defenses.multi_epsilon import MultiEpsilonAdversarialTrainer

__all__ = ["Defense", "MultiEpsilonAdversarialTrainer"]
