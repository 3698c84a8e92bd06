"""How results write an epsilon: one function shared by tables, figures, the headline and report.html."""

from __future__ import annotations

__all__ = ["eps_label"]


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
