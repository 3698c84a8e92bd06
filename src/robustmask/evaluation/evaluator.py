"""The Evaluator: accuracy and loss of a model under an attack, one row per epsilon.

Its table has the form of Tables 4 and 5 of Sheikh & Zafar (2023): columns ``Epsilon``,
``Accuracy (%)`` and ``Loss`` (mean categorical cross-entropy against the true labels), the first
row (eps 0) being the clean data. It streams the data batch by batch (one batch of images at a
time; a few numbers per image are kept, `robustmask.evaluation._sweep`) and asks the attack for
all epsilons of a batch at once, so FGSM costs one gradient per batch for the whole sweep. The
epsilons (``eps``) are budgets in the attack's norm (``attack.norm``: L-inf for the paper, L2 or L1 otherwise); the table names it in ``table.attrs["norm"]``, and
`named_norm` gives the table with the norm in its Epsilon column (``Epsilon (L2)``) for writers.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import pandas as pd
import tensorflow as tf

from robustmask._deprecation import renamed_parameters, warn_renamed
from robustmask._validation import check_epsilons, check_eps_units, check_positive_int
from robustmask.attacks.base import Attack
from robustmask.errors import RobustmaskError
from robustmask.evaluation._sweep import Sweep, accuracy_table, sweep_records
from robustmask.evaluation.sanity import SanityWarning, evaluation_warnings

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Epsilons, Images, Labels, Model

TABLE_COLUMNS = ("Epsilon", "Accuracy (%)", "Loss")


@dataclass
class EvaluationResult:
    """Everything an evaluation measured.

    Attributes:
        table: the Table-4/5 DataFrame (Epsilon, Accuracy (%), Loss); ``table.attrs["norm"]`` names
            the threat model ("L-inf", "L2" or "L1").
        reports: sklearn classification reports per epsilon (the paper's Fig. 14), as DataFrames
            indexed by class name plus accuracy / macro avg / weighted avg.
        wrong_confidence: per epsilon, the mean confidence (top probability) of wrong predictions
            (the paper's Fig. 15); NaN where nothing was wrong.
        predicted_classes: per epsilon (rows), how many images were predicted as each class.
        perturbation: per epsilon, mean and max L-inf / L2 size of the perturbations.
        warnings: sanity checks that failed (Carlini et al. 2019): `SanityWarning` objects, sentences
            (``str``) that also carry the check's name (``.check``) and its numbers (``.evidence``).
            Besides the table checks, ``details=True`` adds the model and gradient checks
            (zero-gradients, saturated-loss, probabilities-as-logits; see
            `robustmask.evaluation.sanity_models`).
        zero_gradient_share: percentage of images whose input gradient of the attack's loss is
            exactly zero (the attack is blind there: a masked gradient, e.g. Keras' clipped loss on
            a saturated softmax); None for attacks that use no gradient.
    """

    table: pd.DataFrame
    reports: dict[float, pd.DataFrame] = field(default_factory=dict)
    wrong_confidence: pd.Series | None = None
    predicted_classes: pd.DataFrame | None = None
    perturbation: pd.DataFrame | None = None
    warnings: list[SanityWarning] = field(default_factory=list)
    zero_gradient_share: float | None = None


class Evaluator:
    """Sweep an attack over epsilons and tabulate accuracy and loss.

    Args:
        attack: any `robustmask.Attack` (FGSM for the paper's tables).
        eps: the epsilons of the sweep (one or several), in table order. The clean row (eps 0) is
            always first: it is added when missing. Attacks that choose their own perturbation size
            (``eps_bounded = False``: DeepFool, C&W L2, JSMA) take none: they run once, and the
            second row's Epsilon is their measured mean perturbation in the attack's norm. The old
            name ``epsilons`` still works and warns.
        batch_size: images per batch streamed through the model and the attack.
        class_names: names for the classification reports (default: "0", "1", ...).
        labels: "true" attacks with the true labels (the paper); "predicted" with the model's own
            predictions (no label leaking). Accuracy and loss are always against the true labels.

    Example::

        evaluator = robustmask.Evaluator(robustmask.attacks.FGSM(), eps=PAPER_EPSILONS)
        table = evaluator.evaluate(model, (x_test, y_test))       # the paper's Table 4
        result = evaluator.evaluate(model, test_ds, details=True)  # + reports, confidences
    """

    @renamed_parameters({"epsilons": "eps"})
    def __init__(
        self,
        attack: Attack,
        eps: Epsilons | None = None,
        *,
        batch_size: int = 64,
        class_names: Iterable[object] | None = None,
        labels: str = "true",
    ) -> None:
        if not isinstance(attack, Attack):
            raise RobustmaskError(
                f"attack must be a robustmask Attack (e.g. robustmask.attacks.FGSM()), got {type(attack).__name__}"
            )
        if attack.targeted:
            raise RobustmaskError(f"the Evaluator measures untargeted robustness; {attack.name} is targeted")
        if labels not in ("true", "predicted"):
            raise RobustmaskError(f"labels must be 'true' or 'predicted', got {labels!r}")
        self.attack = attack
        if not attack.eps_bounded:
            if eps is not None and np.size(eps):  # a scalar counts too
                raise RobustmaskError(
                    f"{attack.name} chooses its own perturbation size: give no eps; the table's second row "
                    f"reports the measured mean {attack.norm.label} size in its Epsilon column"
                )
            self.eps: list[float] = [0.0, float("nan")]
        else:
            if eps is None:
                raise RobustmaskError(f"{attack.name} needs eps, e.g. Evaluator(attack, eps=[0.001, 0.002])")
            budgets, _ = check_epsilons(eps)
            check_eps_units(budgets, attack.norm, attack.clip, error=RobustmaskError)  # 8 meant as 8/255
            # The clean row comes first, whatever order the epsilons came in; duplicates are dropped.
            self.eps = [0.0] + [e for e in dict.fromkeys(budgets) if e != 0.0]
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.labels = labels

    @property
    def epsilons(self) -> list[float]:
        """Deprecated: `eps` (the table's epsilons, clean first)."""
        warn_renamed("Evaluator.epsilons", "Evaluator.eps")
        return self.eps

    @overload
    def evaluate(
        self,
        model: Model,
        data: tuple[Images, Labels] | tf.data.Dataset,
        *,
        details: Literal[False] = ...,
        progress: bool = ...,
    ) -> pd.DataFrame: ...
    @overload
    def evaluate(
        self,
        model: Model,
        data: tuple[Images, Labels] | tf.data.Dataset,
        *,
        details: Literal[True],
        progress: bool = ...,
    ) -> EvaluationResult: ...
    @overload
    def evaluate(
        self,
        model: Model,
        data: tuple[Images, Labels] | tf.data.Dataset,
        *,
        details: bool,
        progress: bool = ...,
    ) -> pd.DataFrame | EvaluationResult: ...
    def evaluate(
        self,
        model: Model,
        data: tuple[Images, Labels] | tf.data.Dataset,
        *,
        details: bool = False,
        progress: bool = False,
    ) -> pd.DataFrame | EvaluationResult:
        """Evaluate `model` on `data`: ``(x, y)`` arrays or a batched tf.data.Dataset of (x, y).

        Returns the table (a DataFrame), or an `EvaluationResult` when ``details=True``.
        """
        sweep = sweep_records(self, model, data, details=details, progress=progress)
        table = accuracy_table(
            self.eps,
            sweep.labels(),
            sweep.predicted(),
            sweep.loss_sums(),
            attack=self.attack.name,
            norm=self.attack.norm.label,
            measured_sizes=sweep.measured_sizes(),
        )
        checks = evaluation_warnings(table, sweep.info.num_classes, sweep.evidence)
        for message in checks:
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        if not details:
            return table
        return EvaluationResult(
            table=table, warnings=checks, **self._details(sweep, table["Epsilon"].tolist())
        )

    def _details(self, sweep: Sweep, epsilons: list[float]) -> dict[str, Any]:
        """The reports, wrong-prediction confidence, predicted classes and perturbation sizes per eps."""
        num_classes = sweep.info.num_classes
        names = self.class_names or [str(c) for c in range(num_classes)]
        if len(names) != num_classes:
            raise RobustmaskError(f"{len(names)} class_names given for a model with {num_classes} classes")
        y_true, predicted = sweep.labels(), sweep.predicted()
        reports = {
            eps: classification_report_frame(y_true, y_pred, names)
            for eps, y_pred in zip(epsilons, predicted)
        }
        distribution = [np.bincount(y_pred, minlength=num_classes) for y_pred in predicted]
        linf, l2 = sweep.sizes("Linf"), sweep.sizes("L2")
        perturbation = pd.DataFrame(
            {
                "Epsilon": epsilons,
                "Linf (mean)": [0.0] + [float(np.mean(row)) for row in linf],
                "Linf (max)": [0.0] + [float(np.max(row)) for row in linf],
                "L2 (mean)": [0.0] + [float(np.mean(row)) for row in l2],
            }
        )
        return {
            "reports": reports,
            "wrong_confidence": pd.Series(sweep.wrong_confidence(), index=epsilons, name="wrong_confidence"),
            "predicted_classes": pd.DataFrame(
                distribution, index=pd.Index(epsilons, name="Epsilon"), columns=names
            ),
            "perturbation": perturbation,
            "zero_gradient_share": sweep.evidence.zero_share if sweep.gradients_measured else None,
        }


def named_norm(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of an Evaluator table whose Epsilon column names the norm: ``Epsilon (L2)``.

    For CSV and Markdown writers, where ``attrs`` do not survive. Tables without a norm (made by
    hand) are returned as they are.
    """
    norm = table.attrs.get("norm")
    if norm is None or "Epsilon" not in table.columns:
        return table
    return table.rename(columns={"Epsilon": f"Epsilon ({norm})"})


def classification_report_frame(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]
) -> pd.DataFrame:
    """sklearn's classification report as a DataFrame (precision, recall, f1-score, support)."""
    from sklearn.metrics import classification_report

    report = classification_report(
        y_true,
        y_pred,
        labels=list(range(len(class_names))),
        target_names=list(class_names),
        output_dict=True,
        zero_division=0,
    )
    accuracy = report.pop("accuracy", None)
    frame = pd.DataFrame(report).T[["precision", "recall", "f1-score", "support"]]
    if accuracy is not None:
        frame.loc["accuracy"] = [np.nan, np.nan, accuracy, frame.loc["macro avg", "support"]]
    frame["support"] = frame["support"].astype(int)
    return frame
