"""Accuracy under several attacks at once, and the worst case over them per image.

An image counts as robust at an epsilon only if it resists every attack (robust accuracy as
AutoAttack defines it, Croce & Hein 2020, arXiv 2003.01690), so the worst case is never above any
single attack. A gradient-free attack in the suite (Square) catches gradient masking: if it beats
PGD, PGD's number was false assurance (Carlini et al. 2019, arXiv 1902.06705).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from robustmask._validation import check_epsilons, check_images, check_labels
from robustmask.attacks.base import Attack
from robustmask.errors import RobustmaskError
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
    return np.concatenate([np.argmax(np.asarray(model(x[i : i + batch_size], training=False)), axis=1)
                           for i in range(0, len(x), batch_size)])


def robustness_table(model: Model, data: tuple[Images, Labels], attacks: Mapping[str, Attack],
                     epsilons: Sequence[float]) -> pd.DataFrame:
    """One row per epsilon: clean accuracy, accuracy under each attack, and the worst case.

    Each attack runs on the images the model classifies correctly when clean (the others count as
    wrong under every attack), so every column is that attack's own robust accuracy.

    Args:
        model: a Keras classifier.
        data: ``(x, y)`` arrays, images in [0, 1], integer or one-hot labels.
        attacks: column name -> eps-bounded attack, e.g. ``{"FGSM": FGSM(), "PGD": PGD(seed=0)}``.
        epsilons: the budgets.

    Example::

        table = robustness_table(model, (x_test, y_test), standard_attacks(), [0.009, 8 / 255])
    """
    if not attacks:
        raise RobustmaskError("attacks is empty: give at least one, e.g. {'PGD': robustmask.attacks.PGD(seed=0)}")
    for name, attack in attacks.items():
        if not isinstance(attack, Attack) or not attack.eps_bounded:
            raise RobustmaskError(f"attack {name!r} must be an eps-bounded robustmask Attack")
    epsilons, _ = check_epsilons(epsilons)
    x = check_images(data[0], (0.0, 1.0))
    info = inspect_model(model, None, x)
    y = check_labels(data[1], len(x), info.num_classes)
    clean = predicted_classes(model, x) == y
    rows = []
    for eps in epsilons:
        row = {"Epsilon": eps, "Clean (%)": 100.0 * clean.mean()}
        robust_everywhere = clean.copy()
        for name, attack in attacks.items():
            robust = clean.copy()
            if clean.any():
                adversarial = attack(model, x[clean], y[clean], eps=eps)
                robust[clean] = predicted_classes(model, adversarial) == y[clean]
            row[f"{name} (%)"] = 100.0 * robust.mean()
            robust_everywhere &= robust
        row[WORST_CASE] = 100.0 * robust_everywhere.mean()
        rows.append(row)
    return pd.DataFrame(rows)


def standard_attacks(pgd_steps: int = 20, pgd_restarts: int = 1, square_queries: int = 300,
                     seed: int = 0) -> dict[str, Attack]:
    """The suite every robustness claim in robustmask is checked with: FGSM, PGD, and Square.

    PGD with a random start (seeded) and `pgd_restarts` restarts, and Square, a gradient-free
    attack that a masked gradient does not stop.
    """
    from robustmask.attacks import FGSM, PGD
    from robustmask.attacks.art.blackbox import SquareAttack

    return {"FGSM": FGSM(), "PGD": PGD(steps=pgd_steps, restarts=pgd_restarts, seed=seed),
            "Square": SquareAttack(max_iter=square_queries)}
