"""Sanity checks on a cascade (AutoAttack's suite: each attack on the images still robust), Carlini
et al. 2019, https://arxiv.org/abs/1902.06705, sec. 5; Croce & Hein 2020,
https://arxiv.org/abs/2003.01690.

* ``gradient-free-stronger``, cascade form (`gradient_free_gains`): a gradient-free attack fools
  many images the gradient attacks before it could not: the gradients are masked on them.
* ``suite-stronger`` (`check_suite_stronger`): PGD run on its own leaves more than `SUITE_GAP`
  points more accuracy than the suite at the same eps: PGD overestimates robustness.

`robustmask.evaluation.sanity_suite.suite_warnings` runs them with the checks across individually
run attacks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from robustmask.evaluation.labels import eps_column
from robustmask.evaluation.sanity import _GRADIENT, SanityWarning, _examples

__all__ = ["SUITE_GAP", "check_suite_stronger", "gradient_free_gains"]

#: Points by which PGD may lead the suite before ``suite-stronger`` fires (and at least one image):
#: both ran on the same images, so the gap is images PGD missed, not sampling noise; a few points
#: are what APGD's better step size and DLR loss usually add on an honest model.
SUITE_GAP = 5.0


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
    eps = table[eps_column(table)].to_numpy(dtype=float)
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
