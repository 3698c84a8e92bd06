"""Adapters over IBM's Adversarial Robustness Toolbox (ART).

https://github.com/Trusted-AI/adversarial-robustness-toolbox

Importing a name from here imports ART (slow), so ``robustmask.attacks`` imports each adapter module
only when one of its names is first used: ``robustmask.attacks.ARTPGD`` or
``robustmask.attacks.get("art-pgd")``.

* `adapter`: `ARTAttack`, the generic adapter (any ART evasion attack, one batch at a time).
* `whole_set`: `WholeSetAttack`, the base of adapters that learn from all the images of a call.
* `estimator`: the ART estimator built from a Keras model (cached per model, held weakly).
* `queries`: the query-counting black box that black-box attacks get.
* `parameters`: ART's attack classes, their parameters and robustmask's names for them.
* `gradient`: ARTFGSM, ARTBIM, ARTPGD (the native FGSM, BIM, PGD as ART runs them).
* `adaptive`: MIFGSM, ARTAutoPGD (eps-bounded, white-box, adapting their steps).
* `minimal`: JSMA, DeepFool (choose their own perturbation size: no eps); it re-exports `carlini`'s.
* `carlini`: CarliniL2, CarliniLInf (Carlini & Wagner; no eps either).
* `blackbox`: ARTSquareAttack (eps-bounded), HopSkipJump (no eps): predictions only, ``attack.queries``.
* `universal`: UniversalPerturbation (one perturbation for all images, ``attack.apply``).
* `patch`: AdversarialPatch (a patch on the mask region, ``attack.apply``).

Names
-----
An adapter carries the ``ART`` prefix exactly when robustmask has a native attack of the same name:
``ARTFGSM``, ``ARTBIM``, ``ARTPGD``, ``ARTAutoPGD`` and ``ARTSquareAttack`` are ART's runs of the
native `FGSM`, `BIM`, `PGD`, `AutoPGD` and `SquareAttack` (and the generic ``ARTAttack`` stands to the
native base `Attack` as they do); ``MIFGSM``, ``DeepFool``, ``HopSkipJump``... have no native namesake and no prefix. A prefixed adapter is
registered as ``"art-"`` plus its namesake's registry name (``art-pgd`` for ``pgd``), an unprefixed
one never starts with ``"art-"``. So the prefix says "there is a native one: this is ART's", and a
native attack added under an adapter's name renames the adapter (``ART`` + the name, ``art-`` + the
registry name); tests/test_vocabulary.py holds every adapter to this. The adapters' parameters take
the native names too (``steps``, ``restarts``, ``rel_stepsize``, ``epochs``): see `parameters`.
"""

from robustmask._lazy import lazy_attributes
import warnings

# ART warns on import that PyTorch is missing (only its PyTorch certification tools need it);
# robustmask uses ART's TensorFlow side, so the warning says nothing to our users. Only that message.
warnings.filterwarnings("ignore", message="PyTorch not found", category=UserWarning)


def _import_art_keeping_log_handlers() -> None:
    """Import ART without its side effects on logging.

    ART's import calls ``logging.config.dictConfig``, which closes every logging handler that exists.
    absl's handler (made when TensorFlow is imported) then closes its stream unless it is the current
    sys.stderr, as it is not under a test runner's capture: the runner's own output file goes. ART's
    configuration only gives its own "art" logger a NullHandler; that is done here instead.
    """
    import logging
    import logging.config
    import sys

    if "art" in sys.modules:
        return
    configure = logging.config.dictConfig
    logging.config.dictConfig = lambda config: logging.getLogger("art").addHandler(logging.NullHandler())
    try:
        import art  # noqa: F401
    finally:
        logging.config.dictConfig = configure


_import_art_keeping_log_handlers()


def _modules() -> dict[str, str]:
    """Public name -> module here, read from the registry's one table of built-in attacks."""
    from robustmask.attacks.registry import _BUILTIN

    prefix = __name__ + "."
    table = {"ARTAttack": "adapter"}
    for path in _BUILTIN.values():
        module, _, name = path.partition(":")
        if module.startswith(prefix):
            table[name] = module[len(prefix) :]
    return table


_MODULES = _modules()

__all__ = sorted(_MODULES)


__getattr__ = lazy_attributes(__name__, {name: f".{module}" for name, module in _MODULES.items()})
