"""A failed sanity check as a value: the sentence a reader sees, with its check's name and numbers.

Its own module because both the table checks (`sanity`) and the model checks (`sanity_models`)
make them; `robustmask.evaluation.sanity.SanityWarning` is the same class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SanityWarning"]


class SanityWarning(str):
    """A failed sanity check: the sentence itself (a `str`), plus ``check`` and ``evidence``.

    Attributes:
        check: the check's stable short name, e.g. "iterative-weaker".
        evidence: the numbers that tripped it (plain Python numbers and strings, JSON-ready).
    """

    check: str
    evidence: dict[str, Any]

    def __new__(cls, check: str, message: str, evidence: Mapping[str, Any] | None = None) -> SanityWarning:
        text = message if message.startswith(f"{check}: ") else f"{check}: {message}"
        self = super().__new__(cls, text)
        self.check = check
        self.evidence = dict(evidence or {})
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and copy keep the name and the evidence
        return type(self), (self.check, str(self), self.evidence)
