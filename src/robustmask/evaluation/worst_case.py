"""Accuracy under several attacks at once, and the worst case over them per image.

An image counts as robust at an epsilon only if it resists every attack (robust accuracy as
AutoAttack defines it, Croce & Hein 2020, arXiv 2003.01690), so the worst case is never above any
single attack. A gradient-free attack in the suite (Square) catches gradient masking: if it beats
PGD, PGD's number was false assurance (Carlini et al. 2019, arXiv 1902.06705).

Two protocols:

* ``"individual"``: every attack runs on every image the model gets right when clean, so each
  column is that attack's own robust accuracy (what the sanity checks compare).
* ``"cascade"`` (AutoAttack's): each attack runs only on the images every attack before it failed
  to fool, so a suite costs little more than its strongest member; column k is the robust accuracy
  after the first k attacks, and ``table.attrs["gains"]`` says how many images each attack fooled
  that the ones before it did not.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from robustmask._validation import check_choice, check_epsilons, check_images, check_labels
from robustmask.attacks.base import Attack
from robustmask.errors import RobustmaskError
from robustmask.evaluation.sanity import attack_kind
from robustmask.modelinfo import inspect_model

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Images, Labels, Model

WORST_CASE = "Worst case (%)"


def predicted_classes(model: Model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's top class for each image."""
    # Direct calls, not model.predict: the suite predicts on subsets of ever-changing size, and
    # Keras' predict function retraces (and warns) for each new final batch size.
    if len(x) == 0:
        return np.zeros(0, np.int64)
    return np.concatenate(
        [
            np.argmax(np.asarray(model(x[i : i + batch_size], training=False)), axis=1)
            for i in range(0, len(x), batch_size)
        ]
    )


def robustness_table(
    model: Model,
    data: tuple[Images, Labels],
    attacks: Mapping[str, Attack],
    epsilons: Sequence[float],
    *,
    protocol: str = "individual",
) -> pd.DataFrame:
    """One row per epsilon: clean accuracy, accuracy under each attack, and the worst case.

    Images the model gets wrong when clean count as wrong under every attack and are never attacked.

    Args:
        model: a Keras classifier.
        data: ``(x, y)`` arrays, images in [0, 1], integer or one-hot labels.
        attacks: column name -> eps-bounded attack, e.g. ``{"FGSM": FGSM(), "PGD": PGD(seed=0)}``;
            for ``"cascade"``, in the order they run (strongest first is cheapest).
        epsilons: the budgets, in the attacks' norm (they must share one).
        protocol: ``"individual"`` (each attack on every clean-correct image) or ``"cascade"``
            (AutoAttack's: each on the images still robust); see the module docstring.

    The table's ``attrs``: ``protocol``, ``norm``, ``examples``, ``kinds`` (attack name ->
    "single-step", "iterative", "gradient-free"), ``seconds`` (attack name -> time spent, all eps),
    ``gains`` (eps -> attack name -> images it fooled that no earlier attack had; cascade only).

    Example::

        table = robustness_table(model, (x_test, y_test), standard_attacks(), [0.009, 8 / 255])
        table = robustness_table(model, (x_test, y_test), standard_suite(), [8 / 255], protocol="cascade")
    """
    check_choice(protocol, PROTOCOLS, "protocol")
    norm = _check_attacks(attacks)
    epsilons, _ = check_epsilons(epsilons)
    x = check_images(data[0], (0.0, 1.0))
    info = inspect_model(model, None, x)
    y = check_labels(data[1], len(x), info.num_classes)
    clean = predicted_classes(model, x) == y
    seconds = dict.fromkeys(attacks, 0.0)
    rows: list[dict[str, float]] = []
    gains: dict[float, dict[str, int]] = {}
    for eps in epsilons:
        row: dict[str, float] = {"Epsilon": eps, "Clean (%)": 100.0 * clean.mean()}
        robust_everywhere = clean.copy()
        gains[eps] = {}
        for name, attack in attacks.items():
            # Individual: every clean-correct image; cascade: only those no earlier attack fooled.
            targets = clean if protocol == "individual" else robust_everywhere
            started = time.perf_counter()
            robust = _robust_under(attack, model, x, y, targets, eps)
            seconds[name] += time.perf_counter() - started
            gains[eps][name] = int(np.sum(robust_everywhere & ~robust))
            robust_everywhere &= robust
            row[f"{name} (%)"] = 100.0 * (robust if protocol == "individual" else robust_everywhere).mean()
        row[WORST_CASE] = 100.0 * robust_everywhere.mean()
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs.update(
        protocol=protocol,
        norm=norm,
        examples=len(x),
        seconds=seconds,
        kinds={name: attack_kind(attack) for name, attack in attacks.items()},
    )
    if protocol == "cascade":
        table.attrs["gains"] = gains
    return table


PROTOCOLS = ("individual", "cascade")


def _check_attacks(attacks: Mapping[str, Attack]) -> str:
    """The suite's norm label, after checking every attack is eps-bounded and they share one norm."""
    if not attacks:
        raise RobustmaskError(
            "attacks is empty: give at least one, e.g. {'PGD': robustmask.attacks.PGD(seed=0)}"
        )
    for name, attack in attacks.items():
        if not isinstance(attack, Attack) or not attack.eps_bounded:
            raise RobustmaskError(f"attack {name!r} must be an eps-bounded robustmask Attack")
    labels = {attack.norm.label for attack in attacks.values()}
    if len(labels) > 1:
        raise RobustmaskError(
            f"the attacks mix norms ({', '.join(sorted(labels))}): one eps cannot bound them all"
        )
    return labels.pop()


def _robust_under(
    attack: Attack, model: Model, x: np.ndarray, y: np.ndarray, targets: np.ndarray, eps: float
) -> np.ndarray:
    """Per image: still classified correctly after `attack` (only `targets` are attacked; the rest
    keep the value False, as they are already wrong or already fooled)."""
    robust = targets.copy()
    if targets.any():
        adversarial = attack(model, x[targets], y[targets], eps=eps)
        robust[targets] = predicted_classes(model, adversarial) == y[targets]
    return robust


def standard_attacks(
    pgd_steps: int = 20, pgd_restarts: int = 1, square_queries: int = 300, seed: int = 0
) -> dict[str, Attack]:
    """The suite every robustness claim in robustmask is checked with: FGSM, PGD, and Square.

    PGD with a random start (seeded) and `pgd_restarts` restarts, and Square, a gradient-free
    attack that a masked gradient does not stop. Run it with ``protocol="individual"``, so each
    attack's own accuracy can be compared (FGSM above PGD is expected; below it is a warning).
    """
    from robustmask.attacks import FGSM, PGD
    from robustmask.attacks.art.blackbox import SquareAttack

    return {
        "FGSM": FGSM(),
        "PGD": PGD(steps=pgd_steps, restarts=pgd_restarts, seed=seed),
        "Square": SquareAttack(max_iter=square_queries),
    }


def standard_suite(
    *, norm: str | float = "inf", num_classes: int = 3, apgd_iter: int = 100, square_queries: int = 5000
) -> dict[str, Attack]:
    """AutoAttack's standard suite, in its order: APGD-CE, APGD-DLR (3 or more classes), Square.

    Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020, https://arxiv.org/abs/2003.01690: 100 APGD iterations and
    5,000 Square queries. Run it with ``protocol="cascade"``. APGD's random start and Square draw
    from NumPy's global generator (ART's choice): seed it (``keras.utils.set_random_seed``) for a
    repeatable run. DLR needs a third-largest logit, so
    a 2-class model gets APGD-CE and Square only. Square has L-inf and L2 forms; in L1 the suite is
    APGD-CE and APGD-DLR (APGD-L1, through ART).

    Example::

        suite = standard_suite(num_classes=3)
        table = robustness_table(model, (x_test, y_test), suite, [8 / 255], protocol="cascade")
    """
    from robustmask.attacks.art.blackbox import SquareAttack
    from robustmask.attacks.art.gradient import AutoPGD
    from robustmask.attacks.norms import get as get_norm

    norm_name = get_norm(norm).name
    suite: dict[str, Attack] = {"APGD-CE": AutoPGD(loss_type="ce", max_iter=apgd_iter, norm=norm_name)}
    if num_classes >= 3:
        suite["APGD-DLR"] = AutoPGD(loss_type="dlr", max_iter=apgd_iter, norm=norm_name)
    if norm_name != "1":
        suite["Square"] = SquareAttack(max_iter=square_queries, norm=norm_name)
    return suite
