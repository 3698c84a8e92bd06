"""`WholeSetAttack`: the ART adapters that learn one thing from all the images of a call.

A universal perturbation (`robustmask.attacks.art.universal`) or a patch
(`robustmask.attacks.art.patch`) is learnt from every image it is given, so the call must not be
split into batches as `ARTAttack` (per batch) splits it; ART and the forward passes still work in
batches of ``batch_size``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robustmask.attacks.whole_set import WholeSetCall

if TYPE_CHECKING:  # pragma: no cover - to mypy the mixin is the ARTAttack it is mixed into
    from art.estimators.estimator import BaseEstimator

    from robustmask._types import Model
    from robustmask.attacks.art.adapter import ARTAttack
    from robustmask.modelinfo import ModelInfo

    _WholeSetBase = ARTAttack
else:
    _WholeSetBase = object

__all__ = ["WholeSetAttack"]


class WholeSetAttack(WholeSetCall, _WholeSetBase):
    """Mixin for adapters that learn one thing from all the images of a call (a universal
    perturbation, a patch): the base class must not split the call into batches, while ART and the
    forward passes keep working in batches of ``batch_size``. Put it before `ARTAttack` in the bases."""

    def estimator(self, model: Model, info: ModelInfo) -> BaseEstimator:
        estimator = super().estimator(model, info)
        estimator.chunk_size = self._inner_batch_size or self.batch_size
        return estimator

    def art_kwargs(self, eps: float | None) -> dict[str, Any]:
        kwargs = super().art_kwargs(eps)
        if "batch_size" in self._signature and "batch_size" not in self.art_params:
            kwargs["batch_size"] = self._inner_batch_size or self.batch_size
        return kwargs
