"""Mixins for attacks that learn one thing from all the images of a call: a universal perturbation.

Shared by the native `SGDUniversalPerturbation` (attacks/universal.py) and the ART adapters of
attacks/art/ (`UniversalPerturbation`, `AdversarialPatch`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from robustmask._validation import check_images
from robustmask.attacks.base import Attack
from robustmask.errors import AttackError

if TYPE_CHECKING:  # pragma: no cover - to mypy a mixin is the Attack it is mixed into
    from robustmask._types import Epsilons, Images, Labels, Model

    _Base = Attack
else:
    _Base = object

__all__ = ["AppliesUniversalPerturbation", "WholeSetCall"]


class WholeSetCall(_Base):
    """The base class must not split the call into batches (one thing is learnt from every image),
    while forward passes keep working in batches of ``batch_size`` (``self._inner_batch_size``
    during a call). Put it before the attack's base class in the bases."""

    _inner_batch_size: int | None = None

    def __call__(
        self, model: Model, x: Images, y: Labels | None = None, eps: Epsilons | None = None
    ) -> np.ndarray:
        saved = self.batch_size
        self.batch_size, self._inner_batch_size = max(len(x), 1), saved
        try:
            return super().__call__(model, x, y, eps)
        finally:
            self.batch_size, self._inner_batch_size = saved, None


class AppliesUniversalPerturbation(_Base):
    """``apply(x)``: the learnt ``self.perturbation`` (the shape of one image) added to new images."""

    perturbation: np.ndarray | None = None

    def apply(self, x: Images) -> np.ndarray:
        """x plus the universal perturbation, clipped to the valid range; x's shape and dtype."""
        if self.perturbation is None:
            raise AttackError(f"{self.name}.apply: call the attack on some images first")
        x_np = check_images(x, self.clip)
        if x_np.shape[1:] != self.perturbation.shape:
            raise AttackError(
                f"{self.name}.apply: images of shape {x_np.shape[1:]} do not match the perturbation's "
                f"{self.perturbation.shape}"
            )
        out = x_np.astype(np.float32) + self.perturbation
        if self.clip is not None:
            out = np.clip(out, self.clip[0], self.clip[1])
        return out.astype(x_np.dtype if x_np.dtype.kind == "f" else np.float32)
