"""Sanity checks on an evaluation, after Carlini et al. 2019, "On Evaluating Adversarial Robustness"
(https://arxiv.org/abs/1902.06705): robustness that looks too good to be true usually is.

Each check is a function that returns a `SanityWarning` (a sentence that names the check, the
evidence and what to do, with the check's name and numbers as attributes) or None. Here are the
checks on tables of accuracies; the checks on a model's outputs and gradients (zero gradients, a
saturated loss, probabilities taken for logits) are in `robustmask.evaluation.sanity_models`.

* ``non-monotonic``, ``loss-unchanged``, ``no-convergence``, ``below-chance``: one attack's sweep
  over eps (`sanity_warnings`, which the Evaluator runs on every table).
* The checks across several attacks at the same eps (``iterative-weaker``,
  ``gradient-free-stronger``, ``suite-stronger``; `suite_warnings`) are in
  `robustmask.evaluation.sanity_suite`.

Accuracies differ by sampling noise alone; a difference counts only beyond two standard errors of
a proportion at its worst (p = 1/2): ``100 / sqrt(n)`` points for n images, and at least 1 point.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from robustmask.evaluation.labels import eps_column
from robustmask.evaluation.sanity_warning import SanityWarning

if TYPE_CHECKING:  # pragma: no cover
    from robustmask.attacks.base import Attack
    from robustmask.evaluation.sanity_models import ModelEvidence

__all__ = [
    "KINDS",
    "SanityWarning",
    "attack_kind",
    "check_below_chance",
    "check_loss_unchanged",
    "check_no_convergence",
    "check_non_monotonic",
    "evaluation_warnings",
    "sanity_warnings",
]

KINDS = ("single-step", "iterative", "gradient-free", "self-sized")
_GRADIENT = ("single-step", "iterative")


def attack_kind(attack: Attack) -> str:
    """What the cross-attack checks compare: "gradient-free", "self-sized", "single-step" or "iterative".

    Read from the attack's attributes (`robustmask.attacks.registry.info_of`, the rule the registry
    uses for plug-ins): gradient-free: ``needs_gradients`` is False (Square, HopSkipJump). Self-sized:
    ``eps_bounded`` is False (DeepFool, C&W). Single-step: ``single_step`` is True (FGSM, FGM, ARTFGSM,
    ART's FastGradientMethod, and their subclasses), or the attack's ``steps`` (native) or ART
    ``max_iter`` is 1. Anything else is iterative.
    """
    from robustmask.attacks.registry import info_of

    info = info_of(attack)
    return info.kind if info.kind in ("gradient-free", "self-sized") else info.steps


def _noise(examples: int | None, floor: float = 1.0) -> float:
    """Two standard errors of a proportion at p = 1/2, in percentage points (at least `floor`)."""
    return max(2 * 100 * math.sqrt(0.25 / examples), floor) if examples else floor


def _examples(table: pd.DataFrame, examples: int | None) -> int | None:
    return examples or table.attrs.get("examples") or None


# ---------------------------------------------------------------------------- one attack's sweep
def check_non_monotonic(
    table: pd.DataFrame,
    examples: int | None = None,
    *,
    column: str = "Accuracy (%)",
    attack: str | None = None,
) -> SanityWarning | None:
    """``non-monotonic``: accuracy rises with eps beyond sampling noise (a correct attack only gets stronger)."""
    n = _examples(table, examples)
    eps = table[eps_column(table)].to_numpy(dtype=float)
    order = np.argsort(eps, kind="stable")  # rows in any eps order
    eps = eps[order]
    acc = table[column].to_numpy(dtype=float)[order]
    attack = attack or table.attrs.get("attack", "the attack")
    noise = _noise(n)
    for i in range(1, len(acc)):
        best_before = float(acc[:i].min())
        if eps[i] > 0 and acc[i] > best_before + noise:
            return SanityWarning(
                "non-monotonic",
                (
                    f"accuracy rose from {best_before:.2f}% to {acc[i]:.2f}% as eps grew to {eps[i]:g}: a correct attack "
                    f"only gets stronger with eps, so {attack} is not converging or the gradients are masked; "
                    "evaluate with an iterative (PGD) and a gradient-free attack"
                ),
                {
                    "attack": attack,
                    "epsilon": float(eps[i]),
                    "accuracy": float(acc[i]),
                    "lowest_before": best_before,
                    "noise": noise,
                    "examples": n,
                },
            )
    return None


def check_loss_unchanged(table: pd.DataFrame, *, attack: str | None = None) -> SanityWarning | None:
    """``loss-unchanged``: the mean loss is the clean loss at every attacked eps (the attack did nothing)."""
    eps = table[eps_column(table)].to_numpy(dtype=float)
    loss = table["Loss"].to_numpy(dtype=float)
    attacked = loss[eps > 0]
    attack = attack or table.attrs.get("attack", "the attack")
    if not len(attacked) or any(abs(value - loss[0]) > 1e-6 * max(1.0, abs(loss[0])) for value in attacked):
        return None
    return SanityWarning(
        "loss-unchanged",
        (
            f"{attack} did not change the loss ({loss[0]:.6g}) at any eps up to {np.nanmax(eps):g}: the gradients are "
            "zero or masked (a stop_gradient, a rounding or otherwise non-differentiable input transform); check with "
            "a gradient-free attack"
        ),
        {
            "attack": attack,
            "clean_loss": float(loss[0]),
            "attacked_losses": [float(v) for v in attacked],
            "max_epsilon": float(np.nanmax(eps)),
        },
    )


def check_no_convergence(
    table: pd.DataFrame,
    num_classes: int,
    examples: int | None = None,
    *,
    column: str = "Accuracy (%)",
    attack: str | None = None,
) -> SanityWarning | None:
    """``no-convergence``: at an L-inf eps >= 0.3 accuracy stays more than max(noise, 10) points above chance.

    An L-inf budget of 0.3 (images in [0, 1]) can move any image most of the way to mid-grey, so a
    converging attack reaches chance there (Carlini et al. 2019, sec. 5.2). L2 and L1 tables are
    not checked: a "large" budget in those norms depends on the image size.
    """
    if table.attrs.get("norm", "L-inf") != "L-inf":
        return None
    eps = table[eps_column(table)].to_numpy(dtype=float)
    acc = table[column].to_numpy(dtype=float)
    chance = 100.0 / num_classes
    allowance = _noise(_examples(table, examples), floor=10.0)
    large = (eps >= 0.3) & (acc > chance + allowance)
    if not large.any():
        return None
    i = int(np.argmax(large))
    attack = attack or table.attrs.get("attack", "the attack")
    return SanityWarning(
        "no-convergence",
        (
            f"accuracy is {acc[i]:.2f}% at eps {eps[i]:g}, far above chance ({chance:.0f}%): an L-inf budget that "
            "large can turn any image into mid-grey, so an attack that converges should reach chance; "
            f"{attack} is too weak here or the gradients are masked: give it more steps and restarts and add a "
            "gradient-free attack"
        ),
        {
            "attack": attack,
            "epsilon": float(eps[i]),
            "accuracy": float(acc[i]),
            "chance": chance,
            "allowance": allowance,
        },
    )


def check_below_chance(
    accuracy: float, num_classes: int, examples: int | None = None, *, model: str | None = None
) -> SanityWarning | None:
    """``below-chance``: clean accuracy beyond sampling noise below chance (100 / classes).

    A classifier worse than guessing on clean images has its labels or class names in another
    order than the data's: every accuracy under attack is then meaningless.
    """
    chance = 100.0 / num_classes
    noise = _noise(examples)
    if not accuracy < chance - noise:
        return None
    who = f"{model}'s" if model else "the"
    return SanityWarning(
        "below-chance",
        (
            f"{who} clean accuracy is {accuracy:.2f}%, below chance ({chance:.0f}% for {num_classes} classes): "
            "the labels or the class names are probably in another order than the model's outputs; "
            "pass --class-names (class_names=) in the model's label order"
        ),
        {"accuracy": float(accuracy), "chance": chance, "noise": noise, "examples": examples, "model": model},
    )


def _clean_accuracy(table: pd.DataFrame, column: str = "Accuracy (%)") -> float | None:
    """The accuracy of the clean (eps 0) row of a sweep, or None where the table has none."""
    if column not in table.columns:
        return None
    clean = table[table[eps_column(table)].to_numpy(dtype=float) == 0]
    return float(clean[column].iloc[0]) if len(clean) else None


def sanity_warnings(
    table: pd.DataFrame, num_classes: int, examples: int | None = None
) -> list[SanityWarning]:
    """The failed checks on one attack's Table-4/5 style sweep (empty when all pass).

    ``table``: columns Epsilon, Accuracy (%) and Loss, the clean row first (an Evaluator table);
    ``examples``: the number of images (default ``table.attrs["examples"]``), for the noise allowance.
    """
    clean = _clean_accuracy(table)
    found = [
        check_non_monotonic(table, examples),
        check_loss_unchanged(table),
        check_no_convergence(table, num_classes, examples),
        None if clean is None else check_below_chance(clean, num_classes, _examples(table, examples)),
    ]
    return [warning for warning in found if warning is not None]


def evaluation_warnings(
    table: pd.DataFrame, num_classes: int, evidence: ModelEvidence | None = None
) -> list[SanityWarning]:
    """Everything the Evaluator checks: the table checks, then (with ``details=True``) the model and
    gradient checks on the `ModelEvidence` it gathered during the same pass over the batches."""
    return sanity_warnings(table, num_classes) + (evidence.warnings() if evidence is not None else [])
