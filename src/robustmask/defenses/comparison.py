"""Train several defences from one undefended model and compare them under strong attacks.

The table `benchmarks/defences.py`, ``robustmask defend`` and ``robustmask reproduce`` print: per
defence and epsilon, clean accuracy, accuracy under each attack of the suite (FGSM, PGD with a
random start, Square), the worst case over them, and the training time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from robustmask.defenses.base import Defense
from robustmask.evaluation.worst_case import robustness_table, standard_attacks

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from robustmask.attacks.base import Attack

UNDEFENDED = "undefended"


def compare_defences(
    model: keras.Model,
    train_data: Any,
    test_data: Any,
    defences: Mapping[str, Defense],
    epsilons: Sequence[float],
    *,
    attacks: Mapping[str, Attack] | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> tuple[pd.DataFrame, dict[str, keras.Model]]:
    """Train each defence on `train_data` from `model`, evaluate all on `test_data`.

    Returns ``(table, models)``: the DataFrame (columns Defence, Train time (s), Epsilon, Clean (%),
    one per attack, Worst case (%)) with the undefended model's rows first, and name -> model.

    Example::

        table, models = compare_defences(model, (x_train, y_train), (x_test, y_test),
                                         {"pgd-at": PGDAdversarialTrainer(eps=8 / 255)}, [0.009, 8 / 255])
    """
    attacks = standard_attacks() if attacks is None else attacks
    models, times = {UNDEFENDED: model}, {UNDEFENDED: 0.0}
    for name, defence in defences.items():
        log(f"  training {name}: {type(defence).__name__}")
        started = time.perf_counter()
        models[name], _ = defence.fit(model, train_data, **dict(fit_kwargs or {}))
        times[name] = time.perf_counter() - started
    frames = []
    for name, defended in models.items():
        log(f"  attacking {name}")
        table = robustness_table(defended, test_data, attacks, epsilons)
        table.insert(0, "Train time (s)", round(times[name], 1))
        table.insert(0, "Defence", name)
        frames.append(table)
    return pd.concat(frames, ignore_index=True), models


def markdown_table(table: pd.DataFrame) -> str:
    """The comparison as a Markdown table: percentages with one decimal, epsilons as fractions of 255."""
    from robustmask.evaluation.results import markdown_table as markdown

    return markdown(table, percent_digits=1)
