"""What goes into an ART attack and what comes back: its constructor's arguments, its images checked.

`robustmask.attacks.art.adapter.ARTAttack` builds every ART attack with `constructor_kwargs` and
passes what the attack returns through `finite_images` before projecting it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np


def constructor_kwargs(
    signature: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    targeted: bool,
    norm: float,
    batch_size: int | None,
    eps: float | None,
    eps_step: float | None,
) -> dict[str, Any]:
    """The ART constructor's keyword arguments: `params`, plus each setting its `signature` takes.

    ``targeted`` and ``norm`` where ART has them; ``verbose=False`` and `batch_size` (when not None)
    unless `params` set them; `eps` (None for attacks without eps) and, where ART has it, `eps_step`.
    """
    kwargs = dict(params)
    if "targeted" in signature:
        kwargs["targeted"] = targeted
    if "norm" in signature:
        kwargs["norm"] = norm
    if "verbose" in signature and "verbose" not in kwargs:
        kwargs["verbose"] = False
    if "batch_size" in signature and "batch_size" not in kwargs and batch_size is not None:
        kwargs["batch_size"] = batch_size
    if eps is not None and "eps" in signature:
        kwargs["eps"] = float(eps)
        if "eps_step" in signature:
            kwargs["eps_step"] = eps_step
    return kwargs


def finite_images(adv: Any, x: np.ndarray, who: str) -> np.ndarray:
    """What `who` (an ART attack) returned, float32 in x's shape, any image not finite put back as in x.

    ART 1.20's L2 Square divides by zero on images whose pixels sit at the clip bounds; such images
    come back unperturbed, with a RuntimeWarning.
    """
    adv = np.asarray(adv, np.float32).reshape(x.shape)
    broken = ~np.isfinite(adv).reshape(len(adv), -1).all(axis=1)
    if broken.any():
        warnings.warn(
            f"{who} returned NaN/inf for {int(broken.sum())} of {len(adv)} images; they are returned unperturbed",
            RuntimeWarning,
            stacklevel=3,  # the caller of ARTAttack._finish
        )
        adv[broken] = x[broken]
    return adv
