"""The accuracy-under-attack section of a results folder, written once: its text, table and figure.

``robustmask evaluate``, ``defend`` and ``reproduce`` each write one (`write_accuracy_section`):
a heading, the text that says what the numbers are (`accuracy_text`), the table, and the accuracy
against eps figure drawn from the table's "Epsilon" + "Accuracy (%)" frames (`accuracy_curves`).
Each reads the three tables robustmask makes:

* an `Evaluator` table (Epsilon, Accuracy (%), Loss): one attack's sweep, the clean row first;
* a `robustness_table` (Epsilon, Clean (%), one column per attack, Worst case (%));
* a comparison (`robustmask.defenses.comparison.compare_defenses`: the same per model, a
  ``Defense`` column naming it).

An Epsilon column that names its norm (``Epsilon (L2)``, as the CSV files have it) is read too.

Example::

    writer = ResultsWriter(folder, title="PGD on mask.keras", kind="evaluate")
    write_accuracy_section(writer, table, heading="Accuracy under attack", name="evaluation",
                           caption="PGD on mask.keras", figure_caption="Accuracy against eps")
    writer.finish()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from robustmask.evaluation.results import unnamed_norm

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from robustmask.evaluation.results import ResultsWriter

__all__ = ["accuracy_curves", "accuracy_text", "write_accuracy_section"]

ACCURACY = "Accuracy (%)"
_NOT_ATTACKS = ("Clean (%)",)


def write_accuracy_section(
    writer: ResultsWriter,
    table: pd.DataFrame,
    *,
    heading: str,
    name: str,
    caption: str,
    figure_caption: str,
    intro: str = "",
    text: str | None = None,
    figure: str = "accuracy_vs_eps",
    curves: Mapping[str, pd.DataFrame] | None = None,
) -> None:
    """Start a section and write its table and its accuracy-against-eps figure.

    Args:
        writer: the results folder being written.
        table: the section's table, as written to ``tables/NAME.csv``.
        heading: the section's heading.
        name: the table's file name.
        caption: the table's caption.
        figure_caption: the figure's caption.
        intro: sentences put before the text (what model, which data).
        text: the text in place of `accuracy_text` of the table.
        figure: the figure's file name (``figures/FIGURE.png``).
        curves: the figure's curves in place of `accuracy_curves` of the table (name -> a frame
            with "Epsilon", "Accuracy (%)" and optionally "Loss").
    """
    from robustmask.evaluation import plots

    body = accuracy_text(table) if text is None else text
    writer.section(heading, f"{intro.strip()} {body}".strip())
    writer.table(name, table, caption)
    drawn = accuracy_curves(table) if curves is None else curves
    writer.figure(figure, plots.accuracy_and_loss_vs_eps(drawn), figure_caption)


def accuracy_curves(table: pd.DataFrame, name: str | None = None) -> dict[str, pd.DataFrame]:
    """The curves of a table's accuracy figure: name -> an "Epsilon" + "Accuracy (%)" frame.

    Args:
        table: an Evaluator table, a `robustness_table` or a comparison.
        name: an Evaluator table's curve name (default: its attack, ``attrs["attack"]``).

    Returns:
        For a comparison, per model PGD (where it ran) and the worst case ("pgd-at, Worst case");
        for a robustness table, each attack and the worst case; an Evaluator table as it is (its
        loss is drawn too). Each frame keeps the table's ``attrs`` (the norm names the x-axis).
    """
    table = unnamed_norm(table)
    if "Defense" in table.columns:
        curves = {}
        for model, rows in table.groupby("Defense", sort=False):
            for column in ("PGD (%)", "Worst case (%)"):
                if column in rows.columns:
                    curves[f"{model}, {column[:-4]}"] = _accuracy_frame(rows, column)
        return curves
    if ACCURACY in table.columns:
        return {name or str(table.attrs.get("attack") or "accuracy"): table}
    return {str(column)[:-4]: _accuracy_frame(table, column) for column in _attack_columns(table)}


def accuracy_text(table: pd.DataFrame) -> str:
    """What the numbers of an accuracy section are, from the table's columns and ``attrs``."""
    if ACCURACY in table.columns:
        norm = table.attrs.get("norm")
        size = (
            " The attack chooses its own perturbation size: the second row's Epsilon is the mean size it used."
            if table.attrs.get("measured_epsilon")
            else ""
        )
        return (
            f"One row per epsilon{f' ({norm})' if norm else ''}; the first is the clean data. Accuracy and the "
            f"mean cross-entropy against the true labels.{size}"
        )
    from robustmask.evaluation.headline import headline

    protocols = table.attrs.get("protocols") or dict.fromkeys(
        [str(c)[:-4] for c in _attack_columns(table) if c != "Worst case (%)"], "individual"
    )
    individual = [column for column, protocol in protocols.items() if protocol == "individual"]
    cascade = [column for column, protocol in protocols.items() if protocol == "cascade"]
    parts = [f"{'Per model and eps' if 'Defense' in table.columns else 'Per eps'}: clean accuracy"]
    if individual:
        parts.append(f"accuracy under {_listed(individual)}, each on every image")
    if cascade:
        parts.append(
            f"{'then ' if individual else ''}under {_listed(cascade)} in a cascade, each attack on the images "
            "still robust (a column is the accuracy after the attacks so far)"
        )
    return (
        ", ".join(parts) + f", and the worst case per image over every attack: {headline(table)['covers']}. "
        "A robustness claim holds only under that worst case."
    )


# ---------------------------------------------------------------------------------------------- helpers


def _attack_columns(table: pd.DataFrame) -> list[str]:
    return [str(c) for c in table.columns if str(c).endswith(" (%)") and str(c) not in _NOT_ATTACKS]


def _accuracy_frame(table: pd.DataFrame, column: str) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame({"Epsilon": table["Epsilon"].to_numpy(), ACCURACY: table[column].to_numpy()})
    frame.attrs.update(table.attrs)
    return frame


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
