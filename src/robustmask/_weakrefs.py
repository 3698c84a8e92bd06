"""One weak-reference rule for the caches that hold models (compiled attacks, ART estimators)."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable


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


class PerModelCache:
    """Values made once per (model, key) and shared by every caller: compiled functions, mostly.

    A tf.function traced for one model costs seconds; attack instances with equal settings and
    Evaluators built afresh in scripts and notebooks should all reuse it. Entries hold their model
    weakly (`weak_reference`) and are dropped, every key of it at once, when the model is collected,
    so the cache keeps no model alive and a new model that reuses a dead one's id starts empty.
    """

    def __init__(self) -> None:
        self._entries: dict[int, dict[Hashable, object]] = {}

    def get(self, model: object, key: Hashable, make: Callable[[Callable[[], object]], object]) -> object:
        """The value cached for (model, key); ``make(model_ref)`` builds it on the first call."""
        per_model = self._entries.get(id(model))
        if per_model is None:
            model_id = id(model)
            per_model = self._entries[model_id] = {}
            weak_reference(model, on_collect=lambda: self._entries.pop(model_id, None))
        value = per_model.get(key)
        if value is None:
            value = per_model[key] = make(weak_reference(model))
        return value

    def clear(self) -> None:
        self._entries.clear()
