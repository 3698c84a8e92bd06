"""What `robustmask.reproduce.run_study` writes and prints: a results folder with report.html.

The folder has the layout of every robustmask results folder (`robustmask.evaluation.results`):
tables (CSV, Markdown, LaTeX), figures (PNG), summary.json and report.html, plus every model the
study trained (``summary.json["models"]`` lists them), the per-eps classification reports and the
training histories. The robust stage's table has one worst case per model and eps, over FGSM, PGD,
Square and AutoAttack's suite (Croce & Hein 2020); report.html opens with it (its headline).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from robustmask._io import write_atomically, write_text_atomically
from robustmask._study_config import StudyResults
from robustmask._study_robust import model_files, robust_section, study_headline, study_models
from robustmask._study_shipped import shipped_section, table5_lines
from robustmask._study_sections import model_section, table4_section, table5_section, table5_side_by_side
from robustmask.evaluation.headline import headline_lines
from robustmask.evaluation.results import ResultsWriter, markdown_table


def write_study(folder: Path, results: StudyResults, *, evidence: str, command: str) -> dict[str, Any]:
    """Write the whole results folder into `folder`; return the summary (also summary.json)."""
    config = results.config
    writer = ResultsWriter(
        folder,
        title="Sheikh & Zafar (2023), reproduced by robustmask",
        kind="reproduce",
        command=command,
        seed=config.seed,
        settings=config.settings(),
    )
    model_section(writer, results)
    table4_section(writer, results)
    table5_section(writer, results, evidence)
    robust_section(writer, results)
    shipped = shipped_section(writer, log=lambda _: None)  # the report ends with Table 5 as it should read
    _files(folder, results)
    for name, context in (
        ("table4", "Table 4"),
        ("table5", "Table 5"),
        ("table5_keras", "Table 5, Keras loss"),
    ):
        writer.warn(getattr(results, name).warnings, context)
    for note in results.notes:
        writer.note(note)
    summary = {**_summary(results), **shipped}
    writer.finish(summary)
    return writer.summary


def log_study(results: StudyResults, log: Callable[[str], None], evidence: str) -> None:
    """The study's tables and findings, printed at the end of the run."""
    from robustmask.evaluation.results import eps_label

    attack, table4, table5 = results.attack, results.table4.table, results.table5.table
    log("")
    log("Table 4: the undefended model under " + attack.name)
    log(markdown_table(table4))
    log("")
    log(
        f"Table 5: the defended model (Algorithm 2, copies against the {results.config.defense_source} model) "
        f"under {attack.name}, robustmask's loss | the paper's literal loss (Keras' clipped cross-entropy)"
    )
    log(markdown_table(table5_side_by_side(results)))
    log(
        "  images with an exactly zero input gradient: "
        + "; ".join(f"{name} {share:.1f}%" for name, share in results.zero_gradients.items())
    )
    largest = table4["Epsilon"].iloc[-1]
    log(
        f"  at eps {eps_label(largest)}: undefended {table4['Accuracy (%)'].iloc[-1]:.2f}%, defended "
        f"{table5['Accuracy (%)'].iloc[-1]:.2f}% ({results.table5_keras.table['Accuracy (%)'].iloc[-1]:.2f}% "
        "under the Keras loss)"
    )
    if results.robust_table is not None:
        log("")
        log(
            f"Beyond the paper: {results.config.robust_defense} on robustmask's face-mask CNN "
            f"({results.config.robust_image_size} px), accuracy (%) under each attack and the worst case "
            "per image over all of them"
        )
        log(markdown_table(results.robust_table.drop(columns=["Train time (s)"]), percent_digits=1))
        for line in headline_lines(study_headline(results)):
            log("  " + line)
    log(evidence)
    for line in table5_lines():
        log(line)
    for message in results.table4.warnings + results.table5.warnings:
        log(f"  warning: {message}")


# ---------------------------------------------------------------------------------------------- files
def _files(folder: Path, results: StudyResults) -> None:
    """The models, the per-eps classification reports and the training histories."""
    import pandas as pd

    for name, model in study_models(results).items():
        write_atomically(folder / name, model.save, suffix=".keras")
    for name in ("table4", "table5", "table5_keras"):
        reports = folder / "reports" / name
        reports.mkdir(parents=True, exist_ok=True)
        for eps, report in getattr(results, name).reports.items():
            write_text_atomically(reports / f"eps_{eps:.4f}.csv", report.to_csv())
    for name, history in results.histories.items():
        frame = pd.DataFrame(history)
        frame.insert(0, "epoch", range(1, len(frame) + 1))
        write_text_atomically(folder / f"history_{name.replace(' ', '_')}.csv", frame.to_csv(index=False))


def _summary(results: StudyResults) -> dict[str, Any]:
    import numpy as np

    data, table4, table5 = results.data, results.table4.table, results.table5.table
    return {
        "study": "Sheikh & Zafar (2023), doi 10.1007/s11042-023-15405-x",
        "data": {
            "source": data.source,
            "class_names": list(data.class_names),
            "train": int(len(data.y_train)),
            "test": int(len(data.y_test)),
            "train_per_class": np.bincount(data.y_train, minlength=len(data.class_names)).tolist(),
            "test_per_class": np.bincount(data.y_test, minlength=len(data.class_names)).tolist(),
        },
        "weights": results.weights,
        "epsilons": [float(e) for e in table4["Epsilon"].iloc[1:]],
        "attack": results.attack.name,
        "results": {
            "train_accuracy": results.train_accuracy,
            "test_accuracy": results.test_accuracy,
            "undefended_accuracy_at_largest_eps": float(table4["Accuracy (%)"].iloc[-1]),
            "defended_accuracy_at_largest_eps": float(table5["Accuracy (%)"].iloc[-1]),
            "defended_clean_accuracy": float(table5["Accuracy (%)"].iloc[0]),
            "largest_eps": float(table4["Epsilon"].iloc[-1]),
            "defended_accuracy_at_largest_eps_keras_loss": float(
                results.table5_keras.table["Accuracy (%)"].iloc[-1]
            ),
            "zero_gradient_share_percent": results.zero_gradients,
            "robust_comparison": None
            if results.robust_table is None
            else results.robust_table.to_dict(orient="records"),
            "robust_seconds": None
            if results.robust_table is None
            else {
                name: {attack: round(s, 1) for attack, s in measured["seconds"].items()}
                for name, measured in results.robust_table.attrs.get("models", {}).items()
            },
        },
        "headline": study_headline(results),
        "models": model_files(results),
        "timings_s": {k: round(v, 1) for k, v in results.timings.items()},
    }
