"""Sanity checks across several attacks at the same eps (Carlini et al. 2019, "On Evaluating
Adversarial Robustness", https://arxiv.org/abs/1902.06705, sec. 5): a weaker attack must not look
stronger, and a stronger one must not be hidden behind a weaker one's number.

* ``iterative-weaker``: an iterative attack leaves more accuracy than a single-step one.
* ``gradient-free-stronger``: a gradient-free attack beats every gradient attack (individually
  measured), or gains too many images after them in a cascade: the gradients are masked.
* ``suite-stronger``: PGD (any iterative attack run on its own) leaves more than `SUITE_GAP` points
  more accuracy than AutoAttack's suite (Croce & Hein 2020, https://arxiv.org/abs/2003.01690) at
  the same eps: PGD overestimates robustness, and only the worst case over every attack counts.

`suite_warnings` runs them all on a `robustness_table`, reading its ``attrs``. Example::

    from robustmask.evaluation.sanity_suite import suite_warnings

    for warning in suite_warnings(robustness_table(model, data, sets, [8 / 255]), num_classes=3):
        print(warning.check, warning)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from robustmask.evaluation.sanity import (
    _GRADIENT,
    SanityWarning,
    _eps_column,
    _examples,
    _noise,
    check_no_convergence,
    check_non_monotonic,
)

__all__ = [
    "SUITE_GAP",
    "check_gradient_free_stronger",
    "check_iterative_weaker",
    "check_suite_stronger",
    "gradient_free_gains",
    "suite_warnings",
]

#: Points by which PGD may lead the suite before ``suite-stronger`` fires (and at least one image):
#: both ran on the same images, so the gap is images PGD missed, not sampling noise; a few points
#: are what APGD's better step size and DLR loss usually add on an honest model.
SUITE_GAP = 5.0


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
    eps = table[_eps_column(table)].to_numpy(dtype=float)
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
    eps = table[_eps_column(table)].to_numpy(dtype=float)
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


def gradient_free_gains(
    gains: Mapping[str, int], kinds: Mapping[str, str], examples: int, *, epsilon: float | None = None
) -> SanityWarning | None:
    """``gradient-free-stronger``, cascade form: a gradient-free attack fools images the gradient attacks could not.

    Args:
        gains: attack name -> how many images it fooled that the attacks before it in an
            AutoAttack-style cascade did not, in cascade order (``robustness_table(...,
            protocol="cascade").attrs["gains"][eps]``).
        kinds: attack name -> `attack_kind`.
        examples: the number of images the cascade ran on.
        epsilon: the budget, for the message.

    Warns for the largest gain of a gradient-free attack that runs after at least one gradient
    attack when it exceeds max(two standard errors of the observed share, 2% of the images):
    ``max(2 * sqrt(g * (1 - g / n)), 0.02 * n)`` images. A few images are expected (AutoAttack's
    Square rarely adds more than a fraction of a percent to APGD on an honest model); more means the
    gradient attacks were blind on them.
    """
    before: list[str] = []
    worst: tuple[float, str, int, float, list[str]] | None = None
    for name, gain in gains.items():
        kind = kinds.get(name)
        if kind == "gradient-free" and before:
            share = gain / examples if examples else 0.0
            allowance = max(2 * math.sqrt(gain * (1 - share)), 0.02 * examples)
            if gain > allowance and (worst is None or gain - allowance > worst[0]):
                worst = (gain - allowance, name, int(gain), allowance, list(before))
        if kind in _GRADIENT:
            before.append(name)
    if worst is None:
        return None
    _, name, gain, allowance, gradient_names = worst
    at = f" at eps {epsilon:g}" if epsilon is not None else ""
    return SanityWarning(
        "gradient-free-stronger",
        (
            f"gradient-free {name} fooled {gain} of {examples} images ({100 * gain / examples:.1f}%){at} that the "
            f"gradient attacks before it ({', '.join(gradient_names)}) could not, more than the {allowance:.1f}-image "
            "noise allowance: the gradients are masked on those images, so judge the model by the worst case over all "
            "attacks and attack it adaptively (BPDA, EOT, a margin loss)"
        ),
        {
            "epsilon": epsilon,
            "gradient_free": name,
            "gain": gain,
            "examples": examples,
            "allowance": allowance,
            "gradient_attacks_before": gradient_names,
        },
    )


def check_suite_stronger(
    table: pd.DataFrame,
    kinds: Mapping[str, str],
    protocols: Mapping[str, str],
    *,
    descriptions: Mapping[str, str] | None = None,
    gap: float = SUITE_GAP,
) -> SanityWarning | None:
    """``suite-stronger``: an iterative attack run on its own (PGD) leaves more than `gap` points
    more accuracy than the cascade suite (APGD-CE first) at the same eps.

    Args:
        table: a `robustness_table` with individual and cascade columns (``"<name> (%)"``).
        kinds: column name -> `attack_kind`; protocols: column name -> "individual" or "cascade".
        descriptions: column name -> what the report calls it ("PGD-20 (3 restarts)").
        gap: the allowance in points (at least one image: ``100 / examples``).

    Returns the warning for the largest lead over the whole suite (any eps > 0), naming the first
    suite attack that already beats PGD by more than `gap` (a cascade's column k is the accuracy
    after its first k attacks), or None.
    """
    eps = table[_eps_column(table)].to_numpy(dtype=float)
    columns = [str(c)[:-4] for c in table.columns if str(c).endswith(" (%)")]
    pgd = [n for n in columns if kinds.get(n) == "iterative" and protocols.get(n) == "individual"]
    suite = [n for n in columns if protocols.get(n) == "cascade"]
    if not pgd or not suite:
        return None
    accuracy = {name: table[f"{name} (%)"].to_numpy(dtype=float) for name in pgd + suite}
    allowance = max(gap, 100.0 / (_examples(table, None) or 100))
    leads = [(accuracy[p][i] - accuracy[suite[-1]][i], i, p) for p in pgd for i in np.flatnonzero(eps > 0)]
    lead, i, name = max(leads, default=(0.0, 0, ""))
    if lead <= allowance:
        return None
    k = next(k for k, s in enumerate(suite) if accuracy[name][i] - accuracy[s][i] > allowance)
    short = {n: _short((descriptions or {}).get(n, n)) for n in [name, *suite]}
    stronger = " then ".join(short[s] for s in suite[: k + 1])
    found, high = accuracy[suite[k]][i], accuracy[name][i]
    from robustmask.evaluation.labels import eps_label

    lowest = accuracy[suite[-1]][i]
    whole = f"; the whole suite leaves {lowest:.1f}%" if lowest < found else ""
    return SanityWarning(
        "suite-stronger",
        (
            f"{short[name]} overestimates robustness: {stronger} {'is' if k == 0 else 'are'} "
            f"{high - found:.1f} points lower at eps {eps_label(float(eps[i]))} ({found:.1f}% against "
            f"{high:.1f}%{whole}); {short[name]} alone is not a robustness claim: report the worst case "
            "over every attack, the suite included"
        ),
        {
            "epsilon": float(eps[i]),
            "attack": name,
            "attack_accuracy": float(high),
            "stronger": list(suite[: k + 1]),
            "stronger_accuracy": float(found),
            "suite_accuracy": float(accuracy[suite[-1]][i]),
            "gap": float(high - found),
            "allowance": float(allowance),
        },
    )


def _short(description: str) -> str:
    """ "PGD-20" from "PGD-20 (3 restarts)"."""
    return description.split(" (", 1)[0]


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
