"""The numbers a results folder opens with: per model and eps, clean accuracy and the worst case.

The worst case is the per-image minimum over every attack that ran on that model at that eps (the
suite included; Croce & Hein 2020, https://arxiv.org/abs/2003.01690), and the headline says which
attacks those were. It is stored as ``summary.json["headline"]``; report.html shows it first and
the commands print it last::

    {"covers": "FGSM, PGD-20 (3 restarts), Square (300 queries), APGD-CE, APGD-DLR (100 iterations)",
     "examples": 180, "norm": "L-inf", "notes": [],
     "rows": [{"model": "pgd-at", "epsilon": 0.0314, "clean": 87.2, "worst_case": 46.8}, ...]}

Example::

    summary_extra = {"headline": headline(table, model="mask.keras")}
    for line in headline_lines(summary_extra["headline"]):
        print(line)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from robustmask.evaluation.attack_sets import covered_attacks
from robustmask.evaluation.labels import eps_column, eps_label

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["headline", "headline_lines", "sweep_headline"]

WORST_CASE = "Worst case (%)"


def headline(table: pd.DataFrame, *, model: str = "model", notes: Sequence[str] = ()) -> dict[str, Any]:
    """The headline of a `robustness_table` or a comparison (a ``Defense`` column names the models;
    otherwise `model` does): what its worst case covers (``attrs["attacks"]``) and one row per
    model and eps."""
    column = eps_column(table)
    rows = [
        {
            "model": str(row["Defense"]) if "Defense" in table.columns else model,
            "epsilon": float(row[column]),
            "clean": float(row["Clean (%)"]),
            "worst_case": float(row[WORST_CASE]),
        }
        for _, row in table.iterrows()
    ]
    descriptions = list(table.attrs.get("attacks", {}).values()) or [
        str(c)[:-4] for c in table.columns if str(c).endswith(" (%)") and c not in ("Clean (%)", WORST_CASE)
    ]
    return _headline(covered_attacks(descriptions), rows, table.attrs, notes)


def sweep_headline(
    table: pd.DataFrame, attack: str, *, model: str = "model", notes: Sequence[str] = ()
) -> dict[str, Any]:
    """The headline of one attack's sweep (an Evaluator table, the clean row first): with one attack
    run, its accuracy is the worst case."""
    column = eps_column(table)
    clean = float(table["Accuracy (%)"].iloc[0])
    rows = [
        {"model": model, "epsilon": float(eps), "clean": clean, "worst_case": float(accuracy)}
        for eps, accuracy in zip(table[column].iloc[1:], table["Accuracy (%)"].iloc[1:])
    ]
    return _headline(attack, rows, table.attrs, notes)


def headline_lines(value: Mapping[str, Any]) -> list[str]:
    """The headline as lines of text: what the worst case covers, then one line per model."""
    examples = f" on {value['examples']} images" if value.get("examples") else ""
    lines = [f"worst case over {value.get('covers') or 'the attacks run'}{examples}:"]
    by_model: dict[str, list[Mapping[str, Any]]] = {}
    for row in value.get("rows", []):
        by_model.setdefault(str(row["model"]), []).append(row)
    for model, rows in by_model.items():
        cases = ", ".join(f"{row['worst_case']:.1f}% at {eps_label(float(row['epsilon']))}" for row in rows)
        lines.append(f"  {model}: clean {rows[0]['clean']:.1f}%, worst case {cases}")
    return lines + [f"  {note}" for note in value.get("notes", [])]


def _headline(
    covers: str, rows: list[dict[str, Any]], attrs: Mapping[str, Any], notes: Sequence[str]
) -> dict[str, Any]:
    return {
        "covers": covers,
        "examples": attrs.get("examples"),
        "norm": attrs.get("norm", "L-inf"),
        "notes": list(notes),
        "rows": rows,
    }
