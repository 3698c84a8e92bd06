"""Evaluation: accuracy and loss under attack (the paper's Tables 4 and 5), reports and sanity checks."""

from robustmask.evaluation.evaluator import (
    TABLE_COLUMNS,
    EvaluationResult,
    Evaluator,
    classification_report_frame,
    named_norm,
)
from robustmask.evaluation.gradients import zero_gradient_share
from robustmask.evaluation.sanity import sanity_warnings
from robustmask.evaluation.worst_case import WORST_CASE, robustness_table, standard_attacks

__all__ = [
    "TABLE_COLUMNS", "WORST_CASE", "EvaluationResult", "Evaluator", "classification_report_frame", "named_norm",
    "robustness_table",
    "sanity_warnings", "standard_attacks", "zero_gradient_share",
]
