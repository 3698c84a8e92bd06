"""Train several defences from one undefended model and compare them under strong attacks.

The table `benchmarks/defences.py`, ``robustmask defend`` and ``robustmask reproduce`` print: per
defence and epsilon, clean accuracy, accuracy under each attack (FGSM, PGD with a random start,
Square, each on every clean-correct image), under AutoAttack's standard suite when one is given
(a cascade: Croce & Hein 2020, https://arxiv.org/abs/2003.01690), ONE worst case per image over
every attack that ran on that model, and the training time.

Example::

    table, models = compare_defenses(model, (x_train, y_train), (x_test, y_test),
                                     {"pgd-at": PGDAdversarialTrainer(eps=8 / 255)}, [8 / 255],
                                     suite=standard_suite())
    comparison_warnings(table)      # e.g. suite-stronger: PGD-20 overestimates robustness: ...
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from robustmask._deprecation import renamed_keywords, renamed_parameters, warn_renamed
from robustmask.defenses.base import Defense
from robustmask.evaluation.accuracy_section import accuracy_curves as accuracy_curves  # its home; kept here
from robustmask.evaluation.attack_sets import AttackSet
from robustmask.evaluation.worst_case import robustness_table, standard_attacks

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from robustmask.attacks.base import Attack
    from robustmask.evaluation.sanity import SanityWarning

UNDEFENDED = "undefended"
#: What a comparison table's attrs keep per model (the rest is shared by every model).
_PER_MODEL = ("robust", "seconds", "gains")


@renamed_parameters({"epsilons": "eps"})
def compare_defenses(
    model: keras.Model,
    train_data: Any,
    test_data: Any,
    defenses: Mapping[str, Defense],
    eps: float | Sequence[float],
    *,
    attacks: Mapping[str, Attack] | Sequence[AttackSet] | None = None,
    suite: Mapping[str, Attack] | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = print,
    progress: bool = False,
) -> tuple[pd.DataFrame, dict[str, keras.Model]]:
    """Train each defence on `train_data` from `model`, evaluate all on `test_data`.

    `eps`: the budgets every model is attacked at (one or several; the old name ``epsilons`` still
    works and warns). `attacks` run individually (default: `standard_attacks`), then `suite` (e.g.
    `standard_suite`) as a cascade; a suite attack whose name is taken is renamed "<name> (suite)".
    `progress` shows a bar (stderr, a terminal only) per training and per model attacked.

    Returns ``(table, models)``: the DataFrame (columns Defense, Train time (s), Epsilon, Clean (%),
    one per attack, Worst case (%)) with the undefended model's rows first, and name -> model. The
    table's attrs are those of `robustness_table` (kinds, protocols, attacks, ...), with the per-image
    masks, seconds and gains by model under ``attrs["models"][name]``.

    Example::

        table, models = compare_defenses(model, (x_train, y_train), (x_test, y_test),
                                         {"pgd-at": PGDAdversarialTrainer(eps=8 / 255)}, [0.009, 8 / 255])
    """
    sets = attack_sets(attacks, suite)
    models, times = {UNDEFENDED: model}, {UNDEFENDED: 0.0}
    for name, defense in defenses.items():
        log(f"  training {name}: {type(defense).__name__}")
        started = time.perf_counter()
        kwargs = _with_progress(defense, dict(fit_kwargs or {}), f"training {name}", progress)
        models[name], _ = defense.fit(model, train_data, **kwargs)
        times[name] = time.perf_counter() - started
    frames = []
    for name, defended in models.items():
        log(f"  attacking {name}")
        frames.append(model_rows(name, defended, times[name], test_data, sets, eps, progress=progress))
    return combine_rows(frames), models


def model_rows(
    name: str,
    model: keras.Model,
    train_seconds: float,
    test_data: Any,
    sets: Sequence[AttackSet],
    eps: float | Sequence[float],
    *,
    progress: bool = False,
) -> pd.DataFrame:
    """One model's rows of a comparison: its `robustness_table` with Defense and Train time (s) first.

    Example::

        rows = model_rows("pgd-at", defended, 275.9, (x_test, y_test), attack_sets(None), [8 / 255])
    """
    table = robustness_table(model, test_data, sets, eps, progress=progress, description=f"attacking {name}")
    table.insert(0, "Train time (s)", round(train_seconds, 1))
    table.insert(0, "Defense", name)
    return table


def combine_rows(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """One comparison table from `model_rows` frames (of one run's attacks, test images and eps).

    Example::

        table = combine_rows([model_rows("undefended", ...), model_rows("pgd-at", ...)])
    """
    combined = pd.concat(frames, ignore_index=True)
    combined.attrs = {key: value for key, value in frames[0].attrs.items() if key not in _PER_MODEL}
    combined.attrs["models"] = {
        str(frame["Defense"].iloc[0]): {key: frame.attrs[key] for key in _PER_MODEL if key in frame.attrs}
        for frame in frames
    }
    return combined


def compare_defences(*args: Any, **kwargs: Any) -> tuple[pd.DataFrame, dict[str, keras.Model]]:
    """Deprecated: `compare_defenses` (same arguments)."""
    warn_renamed("compare_defences", "robustmask.defenses.comparison.compare_defenses")
    return compare_defenses(*args, **renamed_keywords(kwargs, {"defences": "defenses"}, "compare_defences"))


def attack_sets(
    attacks: Mapping[str, Attack] | Sequence[AttackSet] | None, suite: Mapping[str, Attack] | None = None
) -> list[AttackSet]:
    """The attack sets of a comparison: `attacks` individually (default `standard_attacks`), then
    `suite` as a cascade labelled "suite"."""
    attacks = standard_attacks() if attacks is None else attacks
    sets = [AttackSet(attacks)] if isinstance(attacks, Mapping) else list(attacks)
    return sets + ([AttackSet(suite, "cascade", label="suite")] if suite else [])


def _with_progress(
    defense: Defense, kwargs: dict[str, Any], description: str, progress: bool
) -> dict[str, Any]:
    """`kwargs` plus an epoch bar, for a defence whose fit takes Keras callbacks and says its epochs."""
    epochs = kwargs.get("epochs", getattr(defense, "epochs", None))
    takes_callbacks = "callbacks" in inspect.signature(defense.fit).parameters
    if not progress or not takes_callbacks or not isinstance(epochs, int):
        return kwargs
    from robustmask._progress import EpochProgress

    return {**kwargs, "callbacks": [*kwargs.get("callbacks", []), EpochProgress(epochs, description)]}


def model_tables(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """A comparison split per model: name -> its `robustness_table` (Epsilon first, attrs restored)."""
    per_model = table.attrs.get("models", {})
    shared = {key: value for key, value in table.attrs.items() if key != "models"}
    tables = {}
    for name, rows in table.groupby("Defense", sort=False):
        frame = rows.drop(columns=["Defense", "Train time (s)"]).reset_index(drop=True)
        frame.attrs = {**shared, **per_model.get(name, {})}
        tables[str(name)] = frame
    return tables


def comparison_warnings(table: pd.DataFrame, num_classes: int | None = None) -> list[SanityWarning]:
    """`suite_warnings` on each model of a comparison, each message opening with the model's name."""
    from robustmask.evaluation.sanity import SanityWarning
    from robustmask.evaluation.sanity_suite import suite_warnings

    found = []
    for name, frame in model_tables(table).items():
        for warning in suite_warnings(frame, num_classes):
            message = str(warning)[len(warning.check) + 2 :]
            found.append(
                SanityWarning(warning.check, f"{name}: {message}", {**warning.evidence, "model": name})
            )
    return found


def markdown_table(table: pd.DataFrame) -> str:
    """The comparison as a Markdown table: percentages with one decimal, epsilons as fractions of 255."""
    from robustmask.evaluation.results import markdown_table as markdown

    return markdown(table, percent_digits=1)
