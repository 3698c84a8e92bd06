"""How results write an epsilon, and where a table keeps it: shared by tables, figures, the sanity
checks, the headline and report.html."""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustmask.errors import RobustmaskError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["eps_column", "eps_label"]


def eps_label(eps: float) -> str:
    """An epsilon as a reader knows it: "0 (clean)", "8/255" where it is a whole number of levels, else 0.0042.

    Example::

        >>> eps_label(8 / 255), eps_label(0.009), eps_label(0)
        ('8/255', '0.009', '0 (clean)')
    """
    if eps == 0:
        return "0 (clean)"
    levels = eps * 255
    if abs(levels - round(levels)) < 1e-6 and round(levels) > 0:
        return f"{round(levels)}/255"
    return f"{eps:.4f}".rstrip("0").rstrip(".")


def eps_column(table: pd.DataFrame) -> str:
    """The column of a robustness table that holds its epsilons: ``Epsilon``, or ``Epsilon (L2)`` for a
    table that names its norm (`robustmask.evaluation.named_norm`).

    Example::

        >>> import pandas as pd
        >>> eps_column(pd.DataFrame({"Epsilon (L2)": [0.0, 0.5], "Accuracy (%)": [90.0, 40.0]}))
        'Epsilon (L2)'
    """
    for column in table.columns:
        if str(column) == "Epsilon" or str(column).startswith("Epsilon ("):
            return column
    raise RobustmaskError(
        f"a robustness table needs an Epsilon column (one row per eps); this one has {list(table.columns)}"
    )
