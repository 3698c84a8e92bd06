"""Sanity checks across several attacks at the same eps (Carlini et al. 2019, "On Evaluating
Adversarial Robustness", https://arxiv.org/abs/1902.06705, sec. 5): a weaker attack must not look
stronger, and a stronger one must not be hidden behind a weaker one's number.

* ``iterative-weaker``: an iterative attack leaves more accuracy than a single-step one.
* ``gradient-free-stronger``: a gradient-free attack beats every gradient attack (individually
  measured), or gains too many images after them in a cascade: the gradients are masked.
* ``suite-stronger``: PGD (any iterative attack run on its own) leaves more than `SUITE_GAP` points
  more accuracy than AutoAttack's suite (Croce & Hein 2020, https://arxiv.org/abs/2003.01690) at
  the same eps: PGD overestimates robustness, and only the worst case over every attack counts.

The cascade's checks (``suite-stronger`` and the cascade form of ``gradient-free-stronger``) are
defined in `robustmask.evaluation.sanity_cascade` and importable from here too. `suite_warnings`
runs them all on a `robustness_table`, reading its ``attrs``. Example::

    from robustmask.evaluation.sanity_suite import suite_warnings

    for warning in suite_warnings(robustness_table(model, data, sets, [8 / 255]), num_classes=3):
        print(warning.check, warning)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from robustmask.evaluation.labels import eps_column
from robustmask.evaluation.sanity import (
    _GRADIENT,
    SanityWarning,
    _examples,
    _noise,
    check_no_convergence,
    check_non_monotonic,
)
from robustmask.evaluation.sanity_cascade import SUITE_GAP, check_suite_stronger, gradient_free_gains

__all__ = [
    "SUITE_GAP",
    "check_gradient_free_stronger",
    "check_iterative_weaker",
    "check_suite_stronger",
    "gradient_free_gains",
    "suite_warnings",
]


def _accuracies(
    table: pd.DataFrame, kinds: Mapping[str, str], wanted: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Attack name -> its accuracy column, for the attacks of the wanted kinds that have a column."""
    return {
        name: table[f"{name} (%)"].to_numpy(dtype=float)
        for name, kind in kinds.items()
        if kind in wanted and f"{name} (%)" in table.columns
    }


def _largest_gap(
    eps: np.ndarray, above: Mapping[str, np.ndarray], below: Mapping[str, np.ndarray], noise: float
) -> tuple[int, str, str] | None:
    """(row, name above, name below) of the largest ``above - below`` beyond noise at an eps > 0, or None."""
    rows = np.flatnonzero(eps > 0).tolist()
    gaps = [(above[a][i] - below[b][i], i, a, b) for a in above for b in below for i in rows]
    largest = max((gap for gap in gaps if gap[0] > noise), default=None, key=lambda gap: gap[0])
    return None if largest is None else largest[1:]


def check_iterative_weaker(
    table: pd.DataFrame, kinds: Mapping[str, str], examples: int | None = None
) -> SanityWarning | None:
    """``iterative-weaker``: an iterative attack leaves higher accuracy than a single-step one at the same eps.

    Args:
        table: one row per eps: an ``Epsilon`` column and one ``"<name> (%)"`` accuracy column per
            attack, each attack run on its own (`robustness_table` with ``protocol="individual"``;
            a cascade's cumulative columns cannot be compared this way).
        kinds: attack name -> `attack_kind` ("single-step", "iterative", ...); other kinds are ignored.
        examples: images per accuracy (default ``table.attrs["examples"]``), for the noise allowance.

    Returns the warning for the largest excess over all eps > 0 and pairs, or None. An iterative
    attack with the same budget should do at least as well as one step (Carlini et al. 2019,
    sec. 5.4); when it does not, it is misconfigured or follows a masked gradient.
    """
    n = _examples(table, examples)
    noise = _noise(n)
    eps = table[eps_column(table)].to_numpy(dtype=float)
    single, iterative = _accuracies(table, kinds, ("single-step",)), _accuracies(table, kinds, ("iterative",))
    found = _largest_gap(eps, iterative, single, noise)
    if found is None:
        return None
    i, it_name, ss_name = found
    return SanityWarning(
        "iterative-weaker",
        (
            f"iterative {it_name} leaves {iterative[it_name][i]:.2f}% accuracy at eps {eps[i]:g}, more than single-step "
            f"{ss_name} ({single[ss_name][i]:.2f}%) by over the {noise:.2f}-point sampling noise; an iterative attack "
            f"with the same budget should do at least as well as one step, so {it_name} is misconfigured or follows a "
            "masked gradient: check its step size, raise its steps and restarts, and add a gradient-free attack"
        ),
        {
            "epsilon": float(eps[i]),
            "iterative": it_name,
            "iterative_accuracy": float(iterative[it_name][i]),
            "single_step": ss_name,
            "single_step_accuracy": float(single[ss_name][i]),
            "noise": noise,
            "examples": n,
        },
    )


def check_gradient_free_stronger(
    table: pd.DataFrame, kinds: Mapping[str, str], examples: int | None = None
) -> SanityWarning | None:
    """``gradient-free-stronger``: a gradient-free attack leaves lower accuracy than every gradient attack.

    Args: as `check_iterative_weaker` (individually measured accuracies, ``kinds`` by `attack_kind`).

    Returns the warning for the largest margin over all eps > 0, or None (also when the table has no
    gradient or no gradient-free attack). A black-box attack that only queries predictions cannot
    beat white-box gradient attacks on a model whose gradients are useful: when it does beyond
    noise, the gradients are masked (Carlini et al. 2019, sec. 5.5; Athalye et al. 2018).
    """
    n = _examples(table, examples)
    noise = _noise(n)
    eps = table[eps_column(table)].to_numpy(dtype=float)
    free, gradient = _accuracies(table, kinds, ("gradient-free",)), _accuracies(table, kinds, _GRADIENT)
    if not free or not gradient:
        return None
    found = _largest_gap(eps, {"best": np.min(list(gradient.values()), axis=0)}, free, noise)
    if found is None:
        return None
    i, _, free_name = found
    best_name = min(gradient, key=lambda name: gradient[name][i])
    return SanityWarning(
        "gradient-free-stronger",
        (
            f"gradient-free {free_name} leaves {free[free_name][i]:.2f}% accuracy at eps {eps[i]:g}, below every "
            f"gradient attack (the strongest, {best_name}, leaves {gradient[best_name][i]:.2f}%) by more than the "
            f"{noise:.2f}-point sampling noise: the gradients are masked and the gradient attacks' accuracy is false "
            "assurance, so report the worst case over all attacks and attack the model adaptively (BPDA, EOT, a "
            "margin loss)"
        ),
        {
            "epsilon": float(eps[i]),
            "gradient_free": free_name,
            "gradient_free_accuracy": float(free[free_name][i]),
            "best_gradient": best_name,
            "best_gradient_accuracy": float(gradient[best_name][i]),
            "noise": noise,
            "examples": n,
        },
    )


def suite_warnings(table: pd.DataFrame, num_classes: int | None = None) -> list[SanityWarning]:
    """The named checks over a `robustness_table` (reads its ``attrs``: kinds, protocols, examples,
    gains, attacks).

    Individually run attacks: ``iterative-weaker`` and ``gradient-free-stronger`` across their
    columns. Cascades: ``gradient-free-stronger`` on the gains (the largest excess over all eps).
    Both in one table: ``suite-stronger``. Always: ``non-monotonic`` on each attack's column and,
    given ``num_classes``, ``no-convergence`` on the worst case.
    """
    kinds: Mapping[str, str] = table.attrs.get("kinds", {})
    protocols = table.attrs.get("protocols") or dict.fromkeys(
        kinds, table.attrs.get("protocol", "individual")
    )
    individual = {name: kind for name, kind in kinds.items() if protocols.get(name) == "individual"}
    n = table.attrs.get("examples")
    found: list[SanityWarning | None] = []
    if n and any(protocol == "cascade" for protocol in protocols.values()):
        cascade = [
            gradient_free_gains(gains, kinds, n, epsilon=float(eps))
            for eps, gains in table.attrs.get("gains", {}).items()
        ]
        named = [w for w in cascade if w is not None]
        found.append(
            max(named, key=lambda w: w.evidence["gain"] - w.evidence["allowance"]) if named else None
        )
    if individual:
        found += [
            check_iterative_weaker(table, individual, n),
            check_gradient_free_stronger(table, individual, n),
        ]
    found.append(check_suite_stronger(table, kinds, protocols, descriptions=table.attrs.get("attacks")))
    found += [
        check_non_monotonic(table, n, column=f"{name} (%)", attack=name)
        for name in kinds
        if f"{name} (%)" in table.columns
    ]
    if num_classes is not None and "Worst case (%)" in table.columns:
        found.append(
            check_no_convergence(table, num_classes, n, column="Worst case (%)", attack="the worst case")
        )
    return [warning for warning in found if warning is not None]
