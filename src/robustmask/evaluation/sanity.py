"""Sanity checks on an evaluation, after Carlini et al. 2019, "On Evaluating Adversarial Robustness"
(https://arxiv.org/abs/1902.06705): robustness that looks too good to be true usually is.

Each check is a function that returns a `SanityWarning` (a sentence that names the check, the
evidence and what to do, with the check's name and numbers as attributes) or None. Here are the
checks on tables of accuracies; the checks on a model's outputs and gradients (zero gradients, a
saturated loss, probabilities taken for logits) are in `robustmask.evaluation.sanity_models`.

* ``non-monotonic``, ``loss-unchanged``, ``no-convergence``: one attack's sweep over eps
  (`sanity_warnings`, which the Evaluator runs on every table).
* ``iterative-weaker``, ``gradient-free-stronger``: several attacks at the same eps
  (`check_iterative_weaker`, `check_gradient_free_stronger`, `gradient_free_gains`; `suite_warnings`
  runs them on a `robustness_table`).

Accuracies differ by sampling noise alone; a difference counts only beyond two standard errors of
a proportion at its worst (p = 1/2): ``100 / sqrt(n)`` points for n images, and at least 1 point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from robustmask.attacks.base import Attack
    from robustmask.evaluation.sanity_models import ModelEvidence

__all__ = [
    "KINDS",
    "SanityWarning",
    "attack_kind",
    "check_gradient_free_stronger",
    "check_iterative_weaker",
    "check_loss_unchanged",
    "check_no_convergence",
    "check_non_monotonic",
    "evaluation_warnings",
    "gradient_free_gains",
    "sanity_warnings",
    "suite_warnings",
]

KINDS = ("single-step", "iterative", "gradient-free", "self-sized")
# Single-step attacks by class name (robustmask's and ART's); an attack with one step counts too.
_SINGLE_STEP = frozenset({"FGSM", "FGM", "ARTFGSM", "FastGradientMethod"})
_GRADIENT = ("single-step", "iterative")


class SanityWarning(str):
    """A failed sanity check: the sentence itself (a `str`), plus ``check`` and ``evidence``.

    Attributes:
        check: the check's stable short name, e.g. "iterative-weaker".
        evidence: the numbers that tripped it (plain Python numbers and strings, JSON-ready).
    """

    check: str
    evidence: dict[str, Any]

    def __new__(cls, check: str, message: str, evidence: Mapping[str, Any] | None = None) -> SanityWarning:
        text = message if message.startswith(f"{check}: ") else f"{check}: {message}"
        self = super().__new__(cls, text)
        self.check = check
        self.evidence = dict(evidence or {})
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and copy keep the name and the evidence
        return type(self), (self.check, str(self), self.evidence)


def attack_kind(attack: Attack) -> str:
    """What the cross-attack checks compare: "gradient-free", "self-sized", "single-step" or "iterative".

    Gradient-free: ``needs_gradients`` is False (Square, HopSkipJump). Self-sized: ``eps_bounded``
    is False (DeepFool, C&W). Single-step: FGSM, FGM, ARTFGSM (ART's FastGradientMethod), or an
    attack whose ``steps`` (native) or ART ``max_iter`` is 1. Anything else is iterative.
    """
    if not attack.needs_gradients:
        return "gradient-free"
    if not attack.eps_bounded:
        return "self-sized"
    names = {klass.__name__ for klass in type(attack).__mro__}
    names.add(getattr(getattr(attack, "art_class", None), "__name__", ""))
    steps = getattr(attack, "steps", None) or getattr(attack, "art_params", {}).get("max_iter")
    return "single-step" if names & _SINGLE_STEP or steps == 1 else "iterative"


def _noise(examples: int | None, floor: float = 1.0) -> float:
    """Two standard errors of a proportion at p = 1/2, in percentage points (at least `floor`)."""
    return max(2 * 100 * math.sqrt(0.25 / examples), floor) if examples else floor


def _eps_column(table: pd.DataFrame) -> str:
    """``Epsilon``, or ``Epsilon (L2)`` for a table that names its norm (`named_norm`)."""
    return next(
        (c for c in table.columns if str(c) == "Epsilon" or str(c).startswith("Epsilon (")), "Epsilon"
    )


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
    order = np.argsort(
        table[_eps_column(table)].to_numpy(dtype=float), kind="stable"
    )  # rows in any eps order
    eps = table[_eps_column(table)].to_numpy(dtype=float)[order]
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
    eps = table[_eps_column(table)].to_numpy(dtype=float)
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
    eps = table[_eps_column(table)].to_numpy(dtype=float)
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


def sanity_warnings(
    table: pd.DataFrame, num_classes: int, examples: int | None = None
) -> list[SanityWarning]:
    """The failed checks on one attack's Table-4/5 style sweep (empty when all pass).

    ``table``: columns Epsilon, Accuracy (%) and Loss, the clean row first (an Evaluator table);
    ``examples``: the number of images (default ``table.attrs["examples"]``), for the noise allowance.
    """
    found = [
        check_non_monotonic(table, examples),
        check_loss_unchanged(table),
        check_no_convergence(table, num_classes, examples),
    ]
    return [warning for warning in found if warning is not None]


def evaluation_warnings(
    table: pd.DataFrame, num_classes: int, evidence: ModelEvidence | None = None
) -> list[SanityWarning]:
    """Everything the Evaluator checks: the table checks, then (with ``details=True``) the model and
    gradient checks on the `ModelEvidence` it gathered during the same pass over the batches."""
    return sanity_warnings(table, num_classes) + (evidence.warnings() if evidence is not None else [])


# ---------------------------------------------------------------------------- several attacks, same eps
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


def suite_warnings(table: pd.DataFrame, num_classes: int | None = None) -> list[SanityWarning]:
    """The named checks over a `robustness_table` (reads its ``attrs``: kinds, examples, protocol, gains).

    Individual protocol: ``iterative-weaker`` and ``gradient-free-stronger`` across the attacks'
    columns. Cascade: ``gradient-free-stronger`` on the gains (the largest excess over all eps).
    Both: ``non-monotonic`` on each attack's column and, given ``num_classes``, ``no-convergence``
    on the worst case.
    """
    kinds: Mapping[str, str] = table.attrs.get("kinds", {})
    n = table.attrs.get("examples")
    found: list[SanityWarning | None] = []
    if table.attrs.get("protocol", "individual") == "cascade":
        cascade = (
            [
                gradient_free_gains(gains, kinds, n, epsilon=float(eps))
                for eps, gains in table.attrs.get("gains", {}).items()
            ]
            if n
            else []
        )
        named = [w for w in cascade if w is not None]
        found.append(
            max(named, key=lambda w: w.evidence["gain"] - w.evidence["allowance"]) if named else None
        )
    else:
        found += [check_iterative_weaker(table, kinds, n), check_gradient_free_stronger(table, kinds, n)]
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
