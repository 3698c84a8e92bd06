"""Defences: one adversarial-training core with presets (the paper's Algorithm 2 and stronger ones),
input transforms, an adversarial-input detector and defensive distillation (the paper's future work)."""

from robustmask.defenses.adversarial_training import AdversarialTrainer
from robustmask.defenses.base import Defense
from robustmask.defenses.checkpoints import run_history
from robustmask.defenses.detector import AdversarialDetector, DetectionRates, DetectorAwarePGD
from robustmask.defenses.distillation import DefensiveDistillation
from robustmask.defenses.fast_training import FastAdversarialTrainer
from robustmask.defenses.guard import RobustAccuracyGuard
from robustmask.defenses.multi_epsilon import MultiEpsilonAdversarialTrainer
from robustmask.defenses.pgd_training import PGDAdversarialTrainer
from robustmask.defenses.randomized import RandomResizePad, eot_model
from robustmask.defenses.registry import available, describe, get, register
from robustmask.defenses.trades import TRADESTrainer
from robustmask.defenses.validation import RobustValidation
from robustmask.defenses.transforms import (
    FeatureSqueezing,
    InputTransform,
    InputTransformDefense,
    JPEGCompression,
    SpatialSmoothing,
)

__all__ = [
    "AdversarialDetector",
    "AdversarialTrainer",
    "DefensiveDistillation",
    "Defense",
    "DetectionRates",
    "DetectorAwarePGD",
    "FastAdversarialTrainer",
    "FeatureSqueezing",
    "InputTransform",
    "InputTransformDefense",
    "JPEGCompression",
    "MultiEpsilonAdversarialTrainer",
    "PGDAdversarialTrainer",
    "RandomResizePad",
    "RobustAccuracyGuard",
    "RobustValidation",
    "SpatialSmoothing",
    "TRADESTrainer",
    "available",
    "describe",
    "get",
    "eot_model",
    "register",
    "run_history",
]
