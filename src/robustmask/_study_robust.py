"""The robust stage of the study in its results folder: the section, the headline, the models.

Beyond Sheikh & Zafar (2023), `robustmask.reproduce.run_study` compares robustmask's face-mask CNN
with its PGD-adversarially-trained twin (Madry et al. 2018) under FGSM, PGD, Square and AutoAttack's
standard suite (Croce & Hein 2020): one table, one worst case per model and eps over every attack.

Example::

    robust_section(writer, results)             # the section, its warnings, table and figure
    summary["headline"] = study_headline(results)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from robustmask._study_config import StudyResults
    from robustmask.evaluation.results import ResultsWriter

#: What each model file of a reproduce results folder holds (summary.json lists them under "models").
MODEL_FILES = {
    "undefended.keras": "the face-mask model of Table 4",
    "defended.keras": "the Algorithm 2 model of Table 5",
}


def robust_section(writer: ResultsWriter, results: StudyResults) -> None:
    """The robust comparison's section: what ran, its sanity warnings, the table and a figure."""
    if results.robust_table is None:
        return
    from robustmask.defenses.comparison import comparison_warnings
    from robustmask.evaluation.accuracy_section import write_accuracy_section

    config, table = results.config, results.robust_table
    write_accuracy_section(
        writer,
        table,
        heading=f"Beyond the paper: {config.robust_defense}, judged by strong attacks",
        intro=f"robustmask's face-mask CNN at {config.robust_image_size} px, undefended and trained with "
        f"{config.robust_defense}.",
        name="robust_comparison",
        caption="Accuracy (%) under each attack and the one worst case",
        figure="robust_accuracy",
        figure_caption="Accuracy under PGD and the worst case over every attack, undefended and defended",
    )
    writer.warn(comparison_warnings(table, len(results.data.class_names)), "robust comparison")


def study_headline(results: StudyResults) -> dict[str, Any]:
    """The run's headline: the robust stage's models under every attack, Table 4 and 5 as notes."""
    from robustmask.evaluation.headline import headline
    from robustmask.evaluation.labels import eps_label

    table4, table5 = results.table4.table, results.table5.table
    fgsm = (
        f"Tables 4 and 5 (the paper's models, FGSM alone, not a worst case): at eps "
        f"{eps_label(float(table4['Epsilon'].iloc[-1]))} the undefended model keeps "
        f"{table4['Accuracy (%)'].iloc[-1]:.1f}% of {table4['Accuracy (%)'].iloc[0]:.1f}%, Algorithm 2 "
        f"{table5['Accuracy (%)'].iloc[-1]:.1f}% of {table5['Accuracy (%)'].iloc[0]:.1f}%"
    )
    if results.robust_table is None:
        return {
            "covers": None,
            "examples": None,
            "notes": [fgsm, "no worst case: the robust stage did not run"],
            "rows": [],
        }
    return headline(results.robust_table, notes=[fgsm])


def study_models(results: StudyResults) -> dict[str, keras.Model]:
    """File name -> model: every model the study trained (the robust stage's as robust-NAME.keras)."""
    models = {"undefended.keras": results.model, "defended.keras": results.defended}
    models.update({f"robust-{name}.keras": model for name, model in results.robust_models.items()})
    return models


def model_files(results: StudyResults) -> dict[str, str]:
    """File name -> what the model is, for summary.json."""
    described = dict(MODEL_FILES)
    for name in results.robust_models:
        described[f"robust-{name}.keras"] = (
            f"the robust stage's {name} model (robustmask.zoo.facemask_cnn, {results.config.robust_image_size} px)"
        )
    return {name: described.get(name, name) for name in study_models(results)}
