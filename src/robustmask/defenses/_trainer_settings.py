"""The choices of `AdversarialTrainer`'s settings, and the settings whose default depends on others.

The copies' share of the loss (``ratio``) and the labels they are made against depend on the
objective: `check_objective` and `resolve_labels` give them, with the one-line errors of bad values.
"""

from __future__ import annotations

from robustmask._validation import check_choice
from robustmask.defenses._run_plan import check_ratio
from robustmask.errors import RobustmaskError

SOURCES = ("original", "current")
LABELS = ("true", "predicted", "soft")
OBJECTIVES = ("ce", "trades")
KEEP_BEST = ("robust", "last")


def check_objective(objective: str, ratio: float | None, n_eps: int) -> tuple[str, float]:
    """``(objective, ratio)`` for training at `n_eps` budgets.

    ``ratio=None``: n / (n + 1) for "ce" (every image the same weight: Algorithm 2) and 0.5 for
    "trades", which takes one eps and one copy per clean image.
    """
    objective = check_choice(objective, OBJECTIVES, "objective")
    if objective == "trades" and (n_eps != 1 or ratio not in (None, 0.5)):
        raise RobustmaskError("objective='trades' takes one epsilon and ratio None: one copy per clean image")
    if ratio is None:
        return objective, 0.5 if objective == "trades" else n_eps / (n_eps + 1)
    return objective, check_ratio(ratio)


def resolve_labels(labels: str | None, objective: str, source: str) -> str:
    """The labels the copies are made against; ``None``: "soft" for TRADES, else "true" against the
    original model and "predicted" against the current one (true labels leak into the copies)."""
    default = "soft" if objective == "trades" else "true" if source == "original" else "predicted"
    return check_choice(default if labels is None else labels, LABELS, "labels")
