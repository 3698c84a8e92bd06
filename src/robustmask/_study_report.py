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
from typing import TYPE_CHECKING, Any

from robustmask._io import write_atomically, write_text_atomically
from robustmask._study_config import StudyResults
from robustmask._study_robust import model_files, robust_section, study_headline, study_models
from robustmask._study_shipped import shipped_section, table5_lines
from robustmask.evaluation.headline import headline_lines
from robustmask.evaluation.results import ResultsWriter, markdown_table

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import numpy as np
    import pandas as pd

    from robustmask.evaluation.evaluator import EvaluationResult


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
    _model_section(writer, results)
    _table4_section(writer, results)
    _table5_section(writer, results, evidence)
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
    log(markdown_table(_table5_side_by_side(results)))
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


# ---------------------------------------------------------------------------------------------- sections
def _model_section(writer: ResultsWriter, results: StudyResults) -> None:
    from robustmask.evaluation import plots

    data = results.data
    writer.section(
        "The face-mask model",
        (
            f"Data: {data.source}, {len(data.y_train)} training and {len(data.y_test)} test images of classes "
            f"{', '.join(data.class_names)}.\n\nWeights: {results.weights['description']}.\n\n"
            f"Trained: {results.train_accuracy:.2f}% train and {results.test_accuracy:.2f}% test accuracy "
            "(the paper: 98.51% and 95.83%)."
        ),
    )
    writer.figure(
        "learning_curves",
        plots.learning_curves(results.histories),
        "Accuracy and loss per epoch: the undefended model and Algorithm 2 (the paper's Fig. 10 and 16)",
    )


def _table4_section(writer: ResultsWriter, results: StudyResults) -> None:
    from robustmask import paper
    from robustmask.evaluation import plots
    from robustmask.evaluation.accuracy_section import write_accuracy_section

    table = results.table4.table
    write_accuracy_section(
        writer,
        paper.beside_paper(table, paper.TABLE4),
        heading=f"Table 4: the undefended model under {results.attack.name}",
        intro="The test images (pixels in [0, 1]); the paper's numbers beside them.",
        name="table4",
        caption="Table 4, this run and the paper",
        figure="table4_accuracy",
        curves={"this run": table, "paper": paper.TABLE4},
        figure_caption="Accuracy and loss against eps, undefended (the paper's Fig. 13)",
    )
    writer.figure(
        "table4_predictions",
        plots.predictions_per_eps(results.table4.predicted_classes),
        "What the adversarial images are predicted as, per eps (the paper saw most pushed to incorrect_mask)",
    )
    writer.table("table4_details", _details(results.table4), DETAILS)
    _example_figures(writer, results)


def _example_figures(writer: ResultsWriter, results: StudyResults) -> None:
    import numpy as np

    from robustmask.evaluation import plots

    data, model, names = results.data, results.model, list(results.data.class_names)
    epsilons = [float(e) for e in results.table4.table["Epsilon"].iloc[1:]]
    x, y = data.x_test[:4], data.y_test[:4]
    adversarial = np.clip(results.attack(model, x, y, eps=epsilons), 0.0, 1.0)  # shown: clipped for display
    clean_probs = _probabilities(model, x)
    largest = _probabilities(model, adversarial[-1])
    writer.figure(
        "adversarial_examples",
        plots.adversarial_examples(x, adversarial[-1], y, clean_probs, largest, names, epsilons[-1]),
        f"Clean image, scaled perturbation and adversarial image at eps {epsilons[-1]:g} "
        "(the paper's Fig. 7, 12 and 15)",
    )
    shown = np.unique(
        np.linspace(0, len(epsilons) - 1, min(len(epsilons), 6)).round().astype(int)
    )  # readable
    across = np.stack([_probabilities(model, adversarial[i][:1])[0] for i in shown])
    writer.figure(
        "image_across_eps",
        plots.image_across_eps(
            x[0],
            adversarial[shown, 0],
            [epsilons[i] for i in shown],
            [names[int(i)] for i in across.argmax(1)],
            across.max(1).tolist(),
        ),
        "One test image across eps (the paper's Fig. 8)",
    )


def _table5_section(writer: ResultsWriter, results: StudyResults, evidence: str) -> None:
    import pandas as pd

    from robustmask import paper
    from robustmask.evaluation.accuracy_section import write_accuracy_section

    write_accuracy_section(
        writer,
        _table5_side_by_side(results),
        heading="Table 5: the defended model (Algorithm 2)",
        text=(
            f"Copies made against the {results.config.defense_source} model, measured under robustmask's loss and "
            "under the paper's literal loss (Keras' clipped cross-entropy, whose gradient is exactly zero on a "
            f"saturated softmax).\n\n{evidence.strip()}"
        ),
        name="table5",
        caption="Table 5 under both losses, and the paper's",
        figure="table5_accuracy",
        curves={
            "defended, robustmask loss": results.table5.table,
            "defended, Keras loss": results.table5_keras.table,
            "undefended": results.table4.table,
            "paper (defended)": paper.TABLE5,
        },
        figure_caption="Accuracy and loss against eps, defended (the paper's Fig. 17)",
    )
    shares = pd.DataFrame(
        {
            "Model and loss": list(results.zero_gradients),
            "Images with a zero input gradient (%)": list(results.zero_gradients.values()),
        }
    )
    writer.table("zero_gradients", shares, "Where FGSM has nothing to follow: exactly zero input gradients")
    writer.table("table5_details", _details(results.table5), DETAILS)
    writer.table("table5_keras_details", _details(results.table5_keras), DETAILS + ", under the Keras loss")


# ---------------------------------------------------------------------------------------------- helpers
DETAILS = (
    "Per eps: perturbation sizes, the mean confidence of wrong predictions (the paper's Fig. 15) and what "
    "the images are predicted as"
)


def _details(result: EvaluationResult) -> pd.DataFrame:
    """Perturbation sizes, wrong-prediction confidence and predicted-class counts, one row per eps."""
    import pandas as pd

    frame = result.perturbation.copy() if result.perturbation is not None else pd.DataFrame()
    if result.wrong_confidence is not None:
        frame["Wrong-prediction confidence"] = result.wrong_confidence.to_numpy()
    if result.predicted_classes is not None:
        predicted = result.predicted_classes.reset_index(drop=True).add_prefix("Predicted as ")
        frame = pd.concat([frame, predicted], axis=1)
    return frame


def _table5_side_by_side(results: StudyResults) -> pd.DataFrame:
    from robustmask import paper

    table = results.table5.table.copy()
    keras_loss = results.table5_keras.table
    table["Accuracy (%), Keras loss"] = keras_loss["Accuracy (%)"].to_numpy()
    table["Loss, Keras loss"] = keras_loss["Loss"].to_numpy()
    return paper.beside_paper(table, paper.TABLE5)


def _probabilities(model: keras.Model, x: np.ndarray) -> np.ndarray:
    import numpy as np

    from robustmask.modelinfo import inspect_model, log_probabilities

    return np.exp(log_probabilities(model(x, training=False), inspect_model(model, None, x)).numpy())


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
