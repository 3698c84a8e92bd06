"""One weak-reference rule for the caches that hold models (compiled attacks, ART estimators)."""

from __future__ import annotations

import weakref
from collections.abc import Callable


def weak_reference(obj: object, on_collect: Callable[[], object] | None = None) -> Callable[[], object]:
    """A callable returning ``obj`` (None once it is collected), holding it weakly when it can be.

    A cache must not keep alive every model it ever saw. ``on_collect`` runs when ``obj`` dies.
    Plain callables that cannot be weakly referenced are held strongly.
    """
    try:
        ref = weakref.ref(obj)
    except TypeError:
        return lambda: obj
    if on_collect is not None:
        weakref.finalize(obj, on_collect)
    return ref
