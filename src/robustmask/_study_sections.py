"""The sections of the study's report.html about the paper's model: the model, Table 4 and Table 5.

`robustmask._study_report.write_study` writes them, in this order, before the robust stage's section
(`robustmask._study_robust`) and Table 5 as it should read (`robustmask._study_shipped`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustmask._study_config import StudyResults
from robustmask.evaluation.results import ResultsWriter

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import numpy as np
    import pandas as pd

    from robustmask.evaluation.evaluator import EvaluationResult


def model_section(writer: ResultsWriter, results: StudyResults) -> None:
    """The face-mask model: its data, weights and accuracy, and its learning curves."""
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


def table4_section(writer: ResultsWriter, results: StudyResults) -> None:
    """Table 4, the undefended model under the attack beside the paper's, with its figures."""
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


def table5_section(writer: ResultsWriter, results: StudyResults, evidence: str) -> None:
    """Table 5, the defended model under both losses beside the paper's, and the zero-gradient shares."""
    import pandas as pd

    from robustmask import paper
    from robustmask.evaluation.accuracy_section import write_accuracy_section

    write_accuracy_section(
        writer,
        table5_side_by_side(results),
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


def table5_side_by_side(results: StudyResults) -> pd.DataFrame:
    """Table 5 under robustmask's loss and under the Keras loss, beside the paper's numbers."""
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
