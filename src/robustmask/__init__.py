"""robustmask: adversarial attacks and defences for face-mask (and any Keras) image classifiers.

The top-level names are imported lazily so that ``import robustmask`` (and the CLI's ``--help``)
does not pay for importing TensorFlow.

    >>> import robustmask
    >>> fgsm = robustmask.attacks.FGSM()
    >>> table = robustmask.Evaluator(fgsm, eps=[0.0, 0.001, 0.002]).evaluate(model, (x, y))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {
    "Attack": ("robustmask.attacks.base", "Attack"),
    "GradientAttack": ("robustmask.attacks.gradient_attack", "GradientAttack"),
    "Defense": ("robustmask.defenses.base", "Defense"),
    "Evaluator": ("robustmask.evaluation.evaluator", "Evaluator"),
    "EvaluationResult": ("robustmask.evaluation.evaluator", "EvaluationResult"),
    "RobustmaskError": ("robustmask.errors", "RobustmaskError"),
}
_SUBMODULES = ("attacks", "defenses", "evaluation", "datasets", "zoo", "errors")

__all__ = sorted([*_LAZY, *_SUBMODULES, "__version__"])

if TYPE_CHECKING:  # pragma: no cover
    from robustmask import attacks, datasets, defenses, errors, evaluation, zoo  # noqa: F401
    from robustmask.attacks.base import Attack  # noqa: F401
    from robustmask.attacks.gradient_attack import GradientAttack  # noqa: F401
    from robustmask.defenses.base import Defense  # noqa: F401
    from robustmask.errors import RobustmaskError  # noqa: F401
    from robustmask.evaluation.evaluator import EvaluationResult, Evaluator  # noqa: F401


def __getattr__(name: str) -> object:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"robustmask.{name}")
    else:
        raise AttributeError(f"module 'robustmask' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return __all__
