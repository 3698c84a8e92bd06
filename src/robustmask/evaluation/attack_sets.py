"""Several sets of attacks on one model, and how a report names what its worst case covers.

A robustness table may run more than one set: the individual attacks (FGSM, PGD, Square, each on
every clean-correct image) and AutoAttack's standard suite as a cascade (Croce & Hein 2020,
https://arxiv.org/abs/2003.01690). Its worst case is then the per-image minimum over every attack
of every set, never the smaller of two worst cases: an image counts as robust only if no attack
that was run fooled it (Carlini et al. 2019, https://arxiv.org/abs/1902.06705, sec. 4).

Example::

    from robustmask.evaluation import robustness_table, standard_attacks, standard_suite
    from robustmask.evaluation.attack_sets import AttackSet

    sets = [AttackSet(standard_attacks()), AttackSet(standard_suite(), "cascade", label="suite")]
    table = robustness_table(model, (x_test, y_test), sets, [8 / 255])
    table.attrs["attacks"]   # {"FGSM": "FGSM", "PGD": "PGD-20", ..., "Square (suite)": "Square (5,000 queries)"}
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from robustmask._validation import check_choice
from robustmask.errors import RobustmaskError
from robustmask.evaluation.sanity import attack_kind

if TYPE_CHECKING:  # pragma: no cover
    from robustmask.attacks.base import Attack

__all__ = ["PROTOCOLS", "AttackSet", "covered_attacks", "describe_attack", "normalise_sets"]

PROTOCOLS = ("individual", "cascade")


@dataclass(frozen=True)
class AttackSet:
    """Attacks run under one protocol (``"individual"`` or ``"cascade"``, see `robustness_table`).

    ``label`` renames an attack whose name an earlier set already uses: the standard suite's
    ``"Square"`` beside the individual ``"Square"`` becomes ``"Square (suite)"`` with
    ``label="suite"`` (default: the protocol).
    """

    attacks: Mapping[str, Attack]
    protocol: str = "individual"
    label: str = ""


def normalise_sets(
    attacks: Mapping[str, Attack] | Sequence[AttackSet], protocol: str = "individual"
) -> tuple[list[AttackSet], dict[str, str]]:
    """``(sets, descriptions)``: the attack sets with unique column names, and column -> description.

    A mapping is one set run under `protocol`; a sequence of `AttackSet` keeps each set's own.
    """
    check_choice(protocol, PROTOCOLS, "protocol")
    sets = [AttackSet(attacks, protocol)] if isinstance(attacks, Mapping) else list(attacks)
    if not sets or any(not isinstance(s, AttackSet) for s in sets):
        raise RobustmaskError("attacks must be a mapping name -> Attack or a list of AttackSet")
    taken: dict[str, str] = {}
    renamed: list[AttackSet] = []
    for attack_set in sets:
        check_choice(attack_set.protocol, PROTOCOLS, "protocol")
        columns: dict[str, Attack] = {}
        for name, attack in attack_set.attacks.items():
            column = name if name not in taken else f"{name} ({attack_set.label or attack_set.protocol})"
            if column in taken or column in columns:
                raise RobustmaskError(f"two attacks are named {column!r}: give each attack set its own label")
            columns[column] = attack
            taken[column] = describe_attack(name, attack) if hasattr(attack, "needs_gradients") else name
        renamed.append(AttackSet(columns, attack_set.protocol, attack_set.label))
    return renamed, taken


def describe_attack(name: str, attack: Attack) -> str:
    """An attack as a report names it: "FGSM", "PGD-20 (3 restarts)", "APGD-CE (100 iterations)",
    "Square (5,000 queries)"."""
    kind = attack_kind(attack)
    params = getattr(attack, "art_params", None) or {}
    if kind == "gradient-free":
        queries = params.get("max_iter") or getattr(attack, "steps", None)
        return f"{name} ({int(queries):,} queries)" if queries else name
    if kind != "iterative":
        return name
    details = []
    steps = getattr(attack, "steps", None)
    variant = re.search(r"-[A-Za-z]+$", name)  # APGD-CE, APGD-DLR: the count goes in the details
    label = name if not steps or variant or re.search(rf"-{steps}\b", name) else f"{name}-{steps}"
    iterations = params.get("max_iter") if not steps else steps if variant else None
    if iterations:
        details.append(f"{int(iterations):,} iterations")
    restarts = (
        getattr(attack, "restarts", None) or params.get("num_random_init") or params.get("nb_random_init")
    )
    if restarts and int(restarts) > 1:
        details.append(f"{int(restarts)} restarts")
    return f"{label} ({', '.join(details)})" if details else label


def covered_attacks(descriptions: Sequence[str]) -> str:
    """The attacks in one phrase, neighbours with the same settings grouped and an attack run more
    than once (alone and in a suite, at the same settings) named once with its count:
    ["APGD-CE (100 iterations)", "APGD-DLR (100 iterations)"] -> "APGD-CE, APGD-DLR (100 iterations)";
    ["Square (300 queries)", "FGSM", "Square (300 queries)"] -> "Square (300 queries) twice, FGSM"."""
    runs = Counter(descriptions)
    unique = list(runs)  # first-seen order
    parts: list[str] = []
    for i, text in enumerate(unique):
        name, settings = _split(text)
        following = unique[i + 1] if i + 1 < len(unique) else None
        # Only attacks run once are grouped: "A, B (s) twice" would not say which ran twice.
        grouped = (
            bool(settings)
            and following is not None
            and _split(following)[1] == settings
            and runs[text] == runs[following] == 1
        )
        part = name if grouped else text
        parts.append(
            part if runs[text] == 1 else f"{part} {'twice' if runs[text] == 2 else f'{runs[text]} times'}"
        )
    return ", ".join(parts)


def _split(text: str) -> tuple[str, str | None]:
    """("APGD-CE", "(100 iterations)") from "APGD-CE (100 iterations)"; (text, None) without settings."""
    match = re.fullmatch(r"(.*?) (\([^()]*\))", text)
    return (match.group(1), match.group(2)) if match else (text, None)
