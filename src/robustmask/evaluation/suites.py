"""The attacks robustmask judges robustness with: the standard attacks and AutoAttack's suite.

`standard_attacks` (FGSM, PGD with a random start, and the gradient-free Square) run individually;
`standard_suite` (APGD-CE, APGD-DLR, Square: Croce & Hein 2020) runs as a cascade. Both go to
`robustmask.evaluation.worst_case.robustness_table`, which takes the worst case per image over
every attack; ``robustmask evaluate --suite``, ``defend`` and ``reproduce`` use them.

Example::

    both = [AttackSet(standard_attacks()), AttackSet(standard_suite(), "cascade", label="suite")]
    table = robustness_table(model, (x_test, y_test), both, [8 / 255])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from robustmask.attacks.base import Attack

__all__ = ["standard_attacks", "standard_suite"]


def standard_attacks(
    pgd_steps: int = 20, pgd_restarts: int = 1, square_queries: int = 300, seed: int = 0
) -> dict[str, Attack]:
    """The suite every robustness claim in robustmask is checked with: FGSM, PGD, and Square.

    PGD with a random start (seeded) and `pgd_restarts` restarts, and Square (robustmask's native
    L-inf one, seeded too), a gradient-free attack that a masked gradient does not stop. Run it with ``protocol="individual"``, so each
    attack's own accuracy can be compared (FGSM above PGD is expected; below it is a warning).
    """
    from robustmask.attacks import FGSM, PGD
    from robustmask.attacks.square import SquareAttack

    return {
        "FGSM": FGSM(),
        "PGD": PGD(steps=pgd_steps, restarts=pgd_restarts, seed=seed),
        "Square": SquareAttack(steps=square_queries, seed=seed),
    }


def standard_suite(
    *, norm: str | float = "inf", num_classes: int = 3, apgd_iter: int = 100, square_queries: int = 5000
) -> dict[str, Attack]:
    """AutoAttack's standard suite, in its order: APGD-CE, APGD-DLR (3 or more classes), Square.

    Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020, https://arxiv.org/abs/2003.01690: 100 APGD iterations and
    5,000 Square queries. Run it with ``protocol="cascade"``. In L-inf every attack is robustmask's
    native one (`AutoPGD`, `SquareAttack`), seeded with 0 as AutoAttack seeds its own, so a shard of
    the images gets the results the whole set gives them. DLR needs a third-largest logit, so a
    2-class model gets APGD-CE and Square only. In L2 APGD and Square are ART's (`ARTAutoPGD`,
    `ARTSquareAttack`; their random starts draw from NumPy's global generator: seed it with
    ``keras.utils.set_random_seed``); in L1 the suite is ART's APGD-CE and APGD-DLR.

    Example::

        suite = standard_suite(num_classes=3)
        table = robustness_table(model, (x_test, y_test), suite, [8 / 255], protocol="cascade")
    """
    from robustmask.attacks.norms import get as get_norm

    norm_name = get_norm(norm).name
    if norm_name == "inf":
        from robustmask.attacks.apgd import AutoPGD
        from robustmask.attacks.square import SquareAttack

        suite: dict[str, Attack] = {"APGD-CE": AutoPGD("ce", steps=apgd_iter, seed=0)}
        if num_classes >= 3:
            suite["APGD-DLR"] = AutoPGD("dlr", steps=apgd_iter, seed=0)
        suite["Square"] = SquareAttack(steps=square_queries, seed=0)
        return suite
    from robustmask.attacks.art.adaptive import ARTAutoPGD
    from robustmask.attacks.art.blackbox import ARTSquareAttack

    suite = {"APGD-CE": ARTAutoPGD(loss_type="ce", steps=apgd_iter, norm=norm_name)}
    if num_classes >= 3:
        suite["APGD-DLR"] = ARTAutoPGD(loss_type="dlr", steps=apgd_iter, norm=norm_name)
    if norm_name == "2":
        suite["Square"] = ARTSquareAttack(steps=square_queries, norm=norm_name)
    return suite
