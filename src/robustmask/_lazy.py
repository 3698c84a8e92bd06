"""Names a package exports but imports only on first use (ART and TensorFlow load slowly)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, table: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for `package`: ``table[name]`` is the module (absolute, or relative
    to `package` when it starts with ".") that defines `name`; it is imported when `name` is first
    used and the value is then cached in the package."""

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = table[name]
        value = getattr(importlib.import_module(package + module if module.startswith(".") else module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
