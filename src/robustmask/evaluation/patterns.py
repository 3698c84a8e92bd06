"""A learnt universal perturbation and mask patch against random ones: what ``robustmask universal`` measures.

`learn_and_compare` learns a universal perturbation (Shafahi et al. 2020, `SGDUniversalPerturbation`)
and an adversarial patch on the mask region (Brown et al. 2017, `AdversarialPatch`) on one set of
faces, then measures the fooling rate of each (`robustmask.evaluation.transfer.transfer_table`) on
every set, next to random sign noise of the same L-inf size and a uniformly random patch in the
same place: a learnt pattern counts by what it adds over a random one of the same size.

Example::

    sets = {"train": (x_train, y_train), "unseen faces": (x_test, y_test)}
    learnt = learn_and_compare(model, x_train, sets, eps=0.05, target=1, class_names=CLASS_NAMES)
    print(learnt.table)         # Attack, Set, n, ..., Fooling rate (%), ...
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from robustmask.errors import RobustmaskError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from robustmask._types import Model

__all__ = ["LearntPatterns", "learn_and_compare"]


@dataclass(frozen=True)
class LearntPatterns:
    """The learnt patterns and their fooling rates.

    Attributes:
        perturbation: the universal perturbation, (H, W, C) in [-eps, eps].
        patch: the patch, (h, w, C) in [0, 1].
        table: one row per (pattern, set): an ``Attack`` column, then `transfer_table`'s.
    """

    perturbation: np.ndarray
    patch: np.ndarray
    table: pd.DataFrame


def learn_and_compare(
    model: Model,
    x: np.ndarray,
    sets: Mapping[str, Any],
    *,
    eps: float,
    epochs: int = 10,
    patch_epochs: int = 50,
    jitter: int = 1,
    target: int | None = None,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
) -> LearntPatterns:
    """Learn both patterns on `x` and tabulate their fooling rates on `sets`, beside random ones.

    Args:
        model: the Keras classifier.
        x: the faces the patterns learn from (labels: the model's own predictions).
        sets: name -> ``(x, y)`` or unlabelled images, as `transfer_table` takes them.
        eps: the universal perturbation's L-inf size (and the random noise's).
        epochs: passes of the universal perturbation over `x`.
        patch_epochs: optimisation passes of the patch.
        jitter: the patch's random shift in pixels while it learns.
        target: the class the patch pushes faces to, or None (any other class).
        class_names: names of the classes, for the target in the table (default: its index).
        seed: the universal perturbation's and the random patterns' seed (ART's patch draws from
            NumPy's global generator: seed that too, ``keras.utils.set_random_seed``).
    """
    import pandas as pd

    from robustmask.attacks.art.patch import AdversarialPatch
    from robustmask.attacks.universal import SGDUniversalPerturbation
    from robustmask.evaluation.transfer import transfer_table

    uap = SGDUniversalPerturbation(epochs=epochs, seed=seed)
    uap(model, x, eps=eps)  # labels: the model's own predictions (what a fooling rate counts)
    rng = np.random.default_rng(seed)
    noise = rng.choice(np.array([-eps, eps], np.float32), size=x.shape[1:])
    patch = AdversarialPatch(epochs=patch_epochs, jitter=jitter, targeted=target is not None)
    patch(model, x, None if target is None else np.full(len(x), target))
    if uap.perturbation is None or patch.patch is None:  # pragma: no cover - both set by a call
        raise RobustmaskError("the universal perturbation or the patch was not learnt")
    random_patch = copy.copy(patch)
    random_patch.patch = rng.uniform(0.0, 1.0, patch.patch.shape).astype(np.float32)

    aim = "" if target is None else f" (target {class_names[target] if class_names else target})"
    rows = []
    for name, attack, aimed in (
        (f"universal (L-inf {eps:g})", uap, None),
        (f"random noise (L-inf {eps:g})", noise, None),
        (f"mask patch{aim}", patch, target),
        ("random patch", random_patch, target),
    ):
        table = transfer_table(attack, model, sets, target=aimed)
        table.insert(0, "Attack", name)
        rows.append(table)
    return LearntPatterns(uap.perturbation, patch.patch, pd.concat(rows, ignore_index=True))
