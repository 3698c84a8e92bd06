"""Does one pattern transfer? Fooling rates of a universal perturbation or a patch on unseen sets.

A universal perturbation (Moosavi-Dezfooli, Fawzi, Fawzi & Frossard, "Universal adversarial
perturbations", CVPR 2017, https://arxiv.org/abs/1610.08401; or Shafahi et al., "Universal
Adversarial Training", AAAI 2020, https://arxiv.org/abs/1812.03705) or an adversarial patch
(Brown et al., "Adversarial Patch", 2017, https://arxiv.org/abs/1712.09665) is learnt once, on
one set of images; its claim is that it works on images it never saw. `transfer_table` measures
that claim, one row per named set (the training faces, unseen faces, video frames).

Example::

    uap = SGDUniversalPerturbation(epochs=10)
    uap(model, x_train, eps=0.05)
    table = transfer_table(uap, model, {"train": (x_train, y_train), "unseen faces": (x_test, y_test)})
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from robustmask._validation import check_images, check_labels, check_positive_int
from robustmask.errors import DataError, RobustmaskError
from robustmask.modelinfo import inspect_model
from robustmask.predictions import predict_labels

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from robustmask._types import Images, Model

__all__ = [
    "TARGET_COLUMNS",
    "TRANSFER_COLUMNS",
    "apply_perturbation",
    "fooling_rate",
    "predict_classes",
    "transfer_table",
]

TRANSFER_COLUMNS = (
    "Set",
    "n",
    "Clean accuracy (%)",
    "Adversarial accuracy (%)",
    "Fooling rate (%)",
    "Mean L-inf",
)
#: Added by ``transfer_table(..., target=k)``: the share of images predicted as class k, clean and perturbed.
TARGET_COLUMNS = ("Clean target rate (%)", "Target rate (%)")


def predict_classes(model: Model, x: Images, batch_size: int = 128) -> np.ndarray:
    """Deprecated: use `robustmask.predictions.predict_labels`, the one home of predicted classes."""
    warnings.warn(
        "robustmask.evaluation.predict_classes is deprecated; use robustmask.predictions.predict_labels",
        DeprecationWarning,
        stacklevel=2,
    )
    return predict_labels(model, check_images(x), batch_size=batch_size)


def fooling_rate(model: Model, x: Images, x_adv: Images, batch_size: int = 128) -> float:
    """The share of images whose predicted class changes from ``x`` to ``x_adv``, in [0, 1].

    The definition of Moosavi-Dezfooli et al. (CVPR 2017, eq. 1): ``P(k(x + v) != k(x))``, with
    ``k`` the model's predicted class. It counts a change of prediction whether or not the clean
    prediction was right, so it needs no labels (unlike the drop in accuracy).

    Example::

        rate = fooling_rate(model, x_test, uap.apply(x_test))
    """
    x_np = check_images(x, name="x")
    adv = check_images(x_adv, name="x_adv")
    if adv.shape != x_np.shape:
        raise DataError(
            f"x_adv has shape {adv.shape} but x has {x_np.shape}: give one adversarial image per image"
        )
    info = inspect_model(model, None, x_np)
    clean = predict_labels(model, x_np, info, batch_size)
    return float(np.mean(predict_labels(model, adv, info, batch_size) != clean))


def apply_perturbation(perturbation: Any, x: Images, clip: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """``x`` under ``perturbation``: an attack's ``apply(x)``, or an additive NumPy pattern.

    A pattern (H, W, C) or (1, H, W, C) is resized to the images' height and width (bilinear,
    ``tf.image.resize``) when they differ, added, and the sum clipped to ``clip``.

    Example::

        x_adv = apply_perturbation(np.load("universal.npy"), frames)   # any image size
    """
    x_np = check_images(x, clip)
    if hasattr(perturbation, "apply") and callable(perturbation.apply):
        adv = np.asarray(perturbation.apply(x_np), np.float32)
        if adv.shape != x_np.shape:
            raise RobustmaskError(
                f"{type(perturbation).__name__}.apply returned shape {adv.shape} for images of shape {x_np.shape}"
            )
        return adv
    pattern = _pattern(perturbation)
    if x_np.ndim != 4 or pattern.shape[-1] != x_np.shape[-1]:
        raise DataError(
            f"a pattern of shape {pattern.shape} needs images (n, H, W, {pattern.shape[-1]}), got {x_np.shape}"
        )
    if pattern.shape[:2] != x_np.shape[1:3]:
        import tensorflow as tf

        pattern = tf.image.resize(pattern, x_np.shape[1:3], method="bilinear").numpy()
    return np.clip(x_np.astype(np.float32) + pattern, clip[0], clip[1])


def transfer_table(
    perturbation: Any,
    model: Model,
    sets: Mapping[str, Any],
    batch_size: int = 128,
    target: int | None = None,
) -> pd.DataFrame:
    """One row per named set: how well one perturbation or patch fools the model on each.

    Args:
        perturbation: an object with ``apply(x) -> x_adv`` (`SGDUniversalPerturbation`,
            `UniversalPerturbation`, `AdversarialPatch` after a call), or an additive NumPy pattern
            (H, W, C), resized to each set's image size and clipped to [0, 1] (`apply_perturbation`).
        model: the classifier (inputs in [0, 1]).
        sets: name -> images, or name -> (images, labels); e.g. ``{"train": (x, y), "video frames": frames}``.
        batch_size: images per forward pass.
        target: for a targeted perturbation or patch, the class it pushes to: adds `TARGET_COLUMNS`,
            the share of images the model assigns to it before and after.

    Returns:
        A DataFrame with the columns `TRANSFER_COLUMNS`: ``n``; clean and adversarial accuracy in %
        (NaN for a set given without labels); the fooling rate in % (`fooling_rate`: predictions that
        change); the mean over images of the L-inf distance between each image and its perturbed copy
        (for a patch, how much the pasted pixels differ; for a clipped pattern at most its eps).

    Example::

        table = transfer_table(uap, model, {"train": (x_train, y_train), "unseen faces": (x_test, y_test)})
        print(table.to_string(index=False))
    """
    import pandas as pd

    if not isinstance(sets, Mapping) or not sets:
        raise RobustmaskError("sets must be a non-empty mapping of name -> images or (images, labels)")
    batch_size = check_positive_int(batch_size, "batch_size")
    if target is not None:
        target = check_positive_int(target, "target", allow_zero=True)
    rows = []
    for name, value in sets.items():
        if not isinstance(name, str) or not name:
            raise RobustmaskError(f"set names must be non-empty strings, got {name!r}")
        x, y = _images_and_labels(value, name)
        info = inspect_model(model, None, x)
        num_classes = info.num_classes
        if y is not None:
            y = check_labels(y, len(x), num_classes, name=f"labels of {name!r}")
        if target is not None and target >= num_classes:
            raise RobustmaskError(f"target {target} is not a class of the model (0..{num_classes - 1})")
        adv = apply_perturbation(perturbation, x)
        clean = predict_labels(model, x, info, batch_size)
        fooled = predict_labels(model, adv, info, batch_size)
        distance = np.abs(adv.reshape(len(x), -1) - x.reshape(len(x), -1).astype(np.float32)).max(axis=1)
        row = {
            "Set": name,
            "n": len(x),
            "Clean accuracy (%)": np.nan if y is None else 100.0 * float(np.mean(clean == y)),
            "Adversarial accuracy (%)": np.nan if y is None else 100.0 * float(np.mean(fooled == y)),
            "Fooling rate (%)": 100.0 * float(np.mean(fooled != clean)),
            "Mean L-inf": float(np.mean(distance)),
        }
        if target is not None:
            row[TARGET_COLUMNS[0]] = 100.0 * float(np.mean(clean == target))
            row[TARGET_COLUMNS[1]] = 100.0 * float(np.mean(fooled == target))
        rows.append(row)
    columns = TRANSFER_COLUMNS + (TARGET_COLUMNS if target is not None else ())
    return pd.DataFrame(rows, columns=list(columns))


def _images_and_labels(value: Any, name: str) -> tuple[np.ndarray, Any]:
    labels = None
    if isinstance(value, tuple):
        if len(value) != 2:
            raise RobustmaskError(
                f"set {name!r}: give images or (images, labels), got a tuple of {len(value)}"
            )
        value, labels = value
    x = check_images(value, name=f"set {name!r}")
    if x.min() < 0.0 or x.max() > 1.0:
        raise DataError(
            f"set {name!r} has values in [{x.min():g}, {x.max():g}], outside the valid range [0, 1] "
            "(scale 8-bit images: divide by 255)"
        )
    return x, labels


def _pattern(perturbation: Any) -> np.ndarray:
    if hasattr(perturbation, "numpy") and not isinstance(perturbation, np.ndarray):
        perturbation = perturbation.numpy()
    try:
        pattern = np.asarray(perturbation, np.float32)
    except (TypeError, ValueError):
        raise RobustmaskError(
            f"perturbation must have an apply(x) method or be a NumPy pattern (H, W, C), "
            f"got {type(perturbation).__name__}"
        ) from None
    if pattern.ndim == 4 and pattern.shape[0] == 1:
        pattern = pattern[0]
    if pattern.ndim != 3 or not np.all(np.isfinite(pattern)):
        raise DataError(f"a perturbation pattern must be a finite (H, W, C) array, got shape {pattern.shape}")
    return pattern
