"""Adapters over IBM's Adversarial Robustness Toolbox (ART).

https://github.com/Trusted-AI/adversarial-robustness-toolbox

Importing a name from here imports ART (slow), so ``robustmask.attacks`` imports each adapter module
only when one of its names is first used: ``robustmask.attacks.ARTPGD`` or
``robustmask.attacks.get("art-pgd")``.

* `adapter`: `ARTAttack`, the generic adapter (any ART evasion attack).
* `estimator`: the ART estimator built from a Keras model (cached per model, held weakly).
* `gradient`: ARTFGSM, ARTBIM, ARTPGD, MIFGSM, AutoPGD (eps-bounded, white-box).
* `minimal`: JSMA, DeepFool, CarliniL2, CarliniLInf (choose their own perturbation size: no eps).
* `blackbox`: SquareAttack (eps-bounded), HopSkipJump (no eps): predictions only, ``attack.queries``.
* `universal`: UniversalPerturbation (one perturbation for all images, ``attack.apply``).
* `patch`: AdversarialPatch (a patch on the mask region, ``attack.apply``).
"""

import importlib
import warnings
from typing import Any

# ART warns on import that PyTorch is missing (only its PyTorch certification tools need it);
# robustmask uses ART's TensorFlow side, so the warning says nothing to our users. Only that message.
warnings.filterwarnings("ignore", message="PyTorch not found", category=UserWarning)

def _modules() -> dict[str, str]:
    """Public name -> module here, read from the registry's one table of built-in attacks."""
    from robustmask.attacks.registry import _BUILTIN

    prefix = __name__ + "."
    table = {"ARTAttack": "adapter"}
    for path in _BUILTIN.values():
        module, _, name = path.partition(":")
        if module.startswith(prefix):
            table[name] = module[len(prefix):]
    return table


_MODULES = _modules()

__all__ = sorted(_MODULES)


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        value = getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
