"""Argument checks shared by attacks, evaluators and defences.

They run at the NumPy edge, before anything reaches TensorFlow, so a user sees one line that names
the problem instead of a traceback from inside a compiled graph.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from robustmask.errors import AttackError, DataError, RobustmaskError

if TYPE_CHECKING:  # pragma: no cover
    import numpy.typing as npt


def check_epsilons(eps: float | Sequence[float] | np.ndarray) -> tuple[list[float], bool]:
    """Return (epsilons as floats, whether a single number was given)."""
    scalar = np.ndim(eps) == 0
    values: list[Any] | None = (
        [eps] if scalar else list(eps) if isinstance(eps, (Sequence, np.ndarray)) else None
    )
    if values is None:
        raise AttackError(f"eps must be a number or a sequence of numbers, got {type(eps).__name__}")
    if not values:
        raise AttackError("eps is an empty sequence: give at least one epsilon")
    out = []
    for value in values:
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise AttackError(f"eps must be numbers, got {value!r}") from None
        if not math.isfinite(value):
            raise AttackError(f"eps must be finite, got {value}")
        if value < 0:
            raise AttackError(f"eps must be >= 0, got {value}")
        out.append(value)
    return out, scalar


def check_images(x: npt.ArrayLike, clip: Sequence[float] | None = None, name: str = "x") -> np.ndarray:
    """Check an image batch: numeric, 2-D or more, no NaN/inf, inside the clip range."""
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DataError(f"{name} must be a numeric array of images, got dtype {x.dtype}")
    if x.ndim < 2:
        raise DataError(f"{name} must be a batch of inputs (first axis = examples), got shape {x.shape}")
    if x.shape[0] == 0:
        raise DataError(f"{name} is empty (shape {x.shape})")
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x)
        if bad.any():
            first = int(np.argwhere(bad.reshape(len(x), -1).any(axis=1))[0, 0])
            raise DataError(f"{name} holds {int(bad.sum())} NaN/inf values (first in example {first})")
    if clip is not None:
        lo, hi = float(np.min(x)), float(np.max(x))
        if lo < clip[0] - 1e-6 or hi > clip[1] + 1e-6:
            hint = " (scale images to [0, 1]: divide by 255)" if hi > 1.5 and clip[1] <= 1 else ""
            raise DataError(
                f"{name} has values in [{lo:g}, {hi:g}], outside the valid range [{clip[0]:g}, {clip[1]:g}]{hint}; "
                "or pass clip=None to the attack"
            )
    return x


def check_clip(clip: Sequence[float] | None) -> tuple[float, float] | None:
    if clip is None:
        return None
    try:
        lo, hi = (float(v) for v in clip)
    except (TypeError, ValueError):
        raise AttackError(f"clip must be (low, high) or None, got {clip!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise AttackError(f"clip must be finite with low < high, got {clip!r}")
    return (lo, hi)


def check_labels(y: npt.ArrayLike, n: int, num_classes: int, name: str = "y") -> np.ndarray:
    """Integer labels from integer labels or one-hot rows, checked against the model's classes."""
    if hasattr(y, "numpy") and not isinstance(y, np.ndarray):
        y = y.numpy()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2:
        if y.shape[1] != num_classes:
            raise DataError(
                f"{name} is one-hot with {y.shape[1]} columns but the model has {num_classes} classes"
            )
        labels = np.argmax(y, axis=1)
    elif y.ndim == 1:
        if np.issubdtype(y.dtype, np.floating):
            if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
                raise DataError(
                    f"{name} must be integer class labels or one-hot rows; got non-integer values"
                )
        elif not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{name} must be integer class labels or one-hot rows, got dtype {y.dtype}")
        labels = y.astype(np.int64)
    else:
        raise DataError(f"{name} must be integer labels (n,) or one-hot (n, classes), got shape {y.shape}")
    if len(labels) != n:
        raise DataError(f"{name} has {len(labels)} labels for {n} inputs")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"{name} holds label {int(labels.max() if labels.max() >= num_classes else labels.min())} "
            f"but the model has {num_classes} classes (labels 0..{num_classes - 1})"
        )
    return labels


def check_input_shape(
    x_shape: Sequence[int | None], model_input_shape: Sequence[int | None] | None, name: str = "x"
) -> None:
    if model_input_shape is None:
        return
    expected = tuple(model_input_shape)
    got = tuple(x_shape[1:])
    if len(expected) != len(got) or any(e is not None and e != g for e, g in zip(expected, got)):
        raise DataError(
            f"{name} has inputs of shape {got} but the model takes {expected}: resize the images to the model's size"
        )


def check_fraction_or_count(value: object, name: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise RobustmaskError(f"{name} must be a fraction in (0, 1] or a positive count, got {value!r}")
    if isinstance(value, (float, np.floating)):
        if not (0.0 < value <= 1.0):
            raise RobustmaskError(f"{name} as a fraction must be in (0, 1], got {value}")
        return float(value)
    if value <= 0:
        raise RobustmaskError(f"{name} as a count must be positive, got {value}")
    return int(value)


def check_test_split(split: object) -> float:
    """The test fraction of a data folder: 0 <= split < 1 (0 keeps every image for training)."""
    if isinstance(split, bool) or not isinstance(split, numbers.Real) or not 0.0 <= float(split) < 1.0:
        raise RobustmaskError(f"split must be a test fraction with 0 <= split < 1, got {split!r}")
    return float(split)


def check_positive_int(
    value: object, name: str, *, allow_zero: bool = False, error: type[Exception] = RobustmaskError
) -> int:
    """An integer >= 1 (>= 0 with `allow_zero`); bools and floats are refused."""
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        kind = "a non-negative integer" if allow_zero else "a positive integer"
        raise error(f"{name} must be {kind}, got {value!r}")
    return int(value)


@overload
def check_positive_number(
    value: object,
    name: str,
    *,
    allow_zero: bool = ...,
    allow_none: Literal[False] = ...,
    error: type[Exception] = ...,
) -> float: ...
@overload
def check_positive_number(
    value: object, name: str, *, allow_zero: bool = ..., allow_none: bool, error: type[Exception] = ...
) -> float | None: ...
def check_positive_number(
    value: object,
    name: str,
    *,
    allow_zero: bool = False,
    allow_none: bool = False,
    error: type[Exception] = RobustmaskError,
) -> float | None:
    """A finite real number > 0 (>= 0 with `allow_zero`; None passes with `allow_none`); bools refused."""
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        kind = "a non-negative number" if allow_zero else "a positive number"
        raise error(f"{name} must be {kind}{' or None' if allow_none else ''}, got {value!r}")
    return float(value)


def check_seed(seed: object, *, error: type[Exception] = RobustmaskError) -> int | None:
    """None, or an integer in [0, 2**63) for a random generator (bools refused)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) < 2**63:
        raise error(f"seed must be None or a non-negative integer, got {seed!r}")
    return int(seed)


def check_choice(
    value: str, choices: Sequence[str], name: str, *, error: type[Exception] = RobustmaskError
) -> str:
    """One of the string options `choices`."""
    if value not in choices:
        raise error(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value


# Pixel ranges an image batch is recognised in when no clip range says (smallest first).
_KNOWN_RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))


def check_eps_units(
    epsilons: float | Sequence[float],
    norm: object = "inf",
    clip: Sequence[float] | None = (0.0, 1.0),
    x: np.ndarray | None = None,
    *,
    name: str = "eps",
    error: type[Exception] = AttackError,
) -> None:
    """Refuse an L-inf eps larger than the whole pixel range: eps in the wrong units (8 meant as 8/255).

    The pixel range is ``clip`` (an attack's valid input range: ``(0, 1)`` for robustmask's models,
    ``(0, 255)`` or ``(-1, 1)`` where a raw model is attacked in its own range), else the smallest of
    [0, 1], [-1, 1] and [0, 255] holding ``x``; with neither, nothing is checked. L2 and L1 budgets
    grow with the image size and may exceed the range: only L-inf is checked.
    """
    norm = getattr(norm, "name", norm)
    if norm != np.inf and str(norm).strip().lower() not in ("inf", "linf", "l-inf"):
        return
    pixel_range = tuple(float(v) for v in clip) if clip is not None else _range_of(x)
    if pixel_range is None:
        return
    low, high = pixel_range
    span = high - low
    for eps in np.atleast_1d(np.asarray(epsilons, np.float64)).tolist():
        if eps > span * (1 + 1e-9):
            meant = (
                f"; did you mean {eps:g}/255{'' if span == 1 else ' of the range'} = {eps / 255 * span:.3g}?"
                if eps <= 255
                else ""
            )
            raise error(f"{name} {eps:g} is larger than the [{low:g}, {high:g}] pixel range{meant}")


def _range_of(x: np.ndarray | None) -> tuple[float, float] | None:
    if x is None or not np.size(x):
        return None
    low, high = float(np.min(x)), float(np.max(x))
    return next((r for r in _KNOWN_RANGES if r[0] - 1e-6 <= low and high <= r[1] + 1e-6), None)
