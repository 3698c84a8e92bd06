"""Evaluation: accuracy and loss under attack (the paper's Tables 4 and 5), reports and sanity checks."""

from robustmask.evaluation.evaluator import TABLE_COLUMNS, EvaluationResult, Evaluator, classification_report_frame
from robustmask.evaluation.sanity import sanity_warnings

__all__ = ["TABLE_COLUMNS", "EvaluationResult", "Evaluator", "classification_report_frame", "sanity_warnings"]
