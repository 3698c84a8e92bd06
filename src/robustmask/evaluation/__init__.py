"""Evaluation: accuracy and loss under attack (the paper's Tables 4 and 5), the worst case over a suite,
sanity checks, figures, results folders and the HTML report.

Names are imported on first use, so ``robustmask.evaluation.html_report`` (and ``robustmask report``)
does not load TensorFlow.
"""

from __future__ import annotations

from robustmask._lazy import lazy_attributes

_LAZY = {
    "TABLE_COLUMNS": "evaluator",
    "EvaluationResult": "evaluator",
    "Evaluator": "evaluator",
    "classification_report_frame": "evaluator",
    "named_norm": "evaluator",
    "zero_gradient_share": "gradients",
    "attack_gradient": "gradients",
    "sanity_warnings": "sanity",
    "suite_warnings": "sanity_suite",
    "SanityWarning": "sanity",
    "attack_kind": "sanity",
    "RobustnessSpec": "shards",
    "evaluate_shard": "shards",
    "merge_shards": "shards",
    "shard_bounds": "shards",
    "WORST_CASE": "worst_case",
    "AttackSet": "attack_sets",
    "merge_worst_case": "worst_case",
    "robustness_table": "worst_case",
    "streamed_robustness_table": "streamed_suite",
    "standard_attacks": "suites",
    "standard_suite": "suites",
    "ResultsWriter": "results",
    "write_html_report": "html_report",
    "fooling_rate": "transfer",
    "transfer_table": "transfer",
    "apply_perturbation": "transfer",
    "predict_classes": "transfer",
    "save_printable_patch": "printable",
    "load_patch": "printable",
    "print_size_cm": "printable",
    "save_universal_perturbation": "printable",
    "load_universal_perturbation": "printable",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_attributes(__name__, {name: f".{module}" for name, module in _LAZY.items()})
