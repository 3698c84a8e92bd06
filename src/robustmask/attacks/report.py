"""How well an attack works and what it costs: success rate, perturbation sizes, queries and time."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Literal, overload

import numpy as np
import pandas as pd

from robustmask._validation import check_epsilons, check_images, check_labels
from robustmask.attacks.base import Attack
from robustmask.errors import AttackError, DataError

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    from robustmask._types import Epsilons, Images, Labels, Model

REPORT_COLUMNS = (
    "Epsilon",
    "Success rate (%)",
    "L0 (mean)",
    "L0 (max)",
    "L1 (mean)",
    "L1 (max)",
    "L2 (mean)",
    "L2 (max)",
    "Linf (mean)",
    "Linf (max)",
    "Queries",
    "Time (s)",
)


# `robustmask.attacks.norms` name -> the key of `perturbation_norms` that measures it.
NORM_KEYS = {"inf": "Linf", "2": "L2", "1": "L1"}


def perturbation_norms(x: Images, x_adv: Images) -> dict[str, np.ndarray]:
    """Per-example sizes of ``x_adv - x``: a dict of arrays of length n.

    ``"L0"``: how many input *values* changed (each channel of each pixel counts: an RGB pixel with
    all three channels changed counts 3); ``"L1"``: summed absolute change; ``"L2"``: Euclidean
    norm; ``"Linf"``: largest absolute change. Computed in float64. The one place robustmask
    measures perturbations (the Evaluator uses it too).
    """
    x, x_adv = np.asarray(x), np.asarray(x_adv)
    if x.shape != x_adv.shape or x.ndim < 1:
        raise DataError(f"x and x_adv must have the same shape, got {x.shape} and {x_adv.shape}")
    delta = (x_adv.astype(np.float64) - x.astype(np.float64)).reshape(len(x), -1)
    return {
        "L0": np.count_nonzero(delta, axis=1),
        "L1": np.abs(delta).sum(axis=1),
        "L2": np.sqrt(np.sum(delta * delta, axis=1)),
        "Linf": np.abs(delta).max(axis=1, initial=0.0),
    }


@overload
def attack_report(
    attack: Attack,
    model: Model,
    x: Images,
    y: Labels | None = ...,
    eps: Epsilons | None = ...,
    *,
    warmup: bool = ...,
    return_adversarial: Literal[False] = ...,
) -> pd.DataFrame: ...
@overload
def attack_report(
    attack: Attack,
    model: Model,
    x: Images,
    y: Labels | None = ...,
    eps: Epsilons | None = ...,
    *,
    warmup: bool = ...,
    return_adversarial: Literal[True],
) -> tuple[pd.DataFrame, list[np.ndarray]]: ...
@overload
def attack_report(
    attack: Attack,
    model: Model,
    x: Images,
    y: Labels | None = ...,
    eps: Epsilons | None = ...,
    *,
    warmup: bool = ...,
    return_adversarial: bool,
) -> pd.DataFrame | tuple[pd.DataFrame, list[np.ndarray]]: ...
def attack_report(
    attack: Attack,
    model: Model,
    x: Images,
    y: Labels | None = None,
    eps: Epsilons | None = None,
    *,
    warmup: bool = False,
    return_adversarial: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, list[np.ndarray]]:
    """Run `attack` at each eps and tabulate its success, perturbation sizes, queries and time.

    One row per eps; the attack is called once per eps. Columns: ``Epsilon``; ``Success rate (%)``:
    untargeted, the share of the images the model classified correctly whose prediction the attack
    changed (y ``None``: the model's own predictions count as the truth, so every image counts);
    targeted, the share of all images now predicted as their target ``y``; ``L0/L2/Linf (mean, max)``
    from `perturbation_norms` (L0 counts changed values, not pixels); ``Queries``: the attack's
    ``queries`` attribute after the call, NaN for attacks that do not count them; ``Time (s)``: wall
    time of the call, which on first use includes tracing the attack's graph (``warmup=True`` runs
    the first eps once, untimed, beforehand, for steady-state timings). Attacks that choose their own
    perturbation size (``eps_bounded = False``) run once, without eps, in one row with Epsilon NaN;
    `eps` is then ignored, so one call works for a list of mixed attacks.

    The attacks compute in float32, so float64 images are compared after rounding to float32 (their
    rounding is not a perturbation).

    ``return_adversarial=True`` returns ``(table, images)``, images being the adversarial batch of
    each row: the very images measured (a random attack run again would give others).
    """
    if not isinstance(attack, Attack):
        raise AttackError(f"attack must be a robustmask Attack, got {type(attack).__name__}")
    x = check_images(x, attack.clip)
    epsilons: Sequence[float | None]  # None: one run without eps
    if attack.eps_bounded:
        if eps is None:
            raise AttackError(f"{attack.name} needs eps: the {attack.norm.label} budget(s) to report on")
        epsilons = check_epsilons(eps)[0]
    else:
        epsilons = [None]
    predicted = attack.predict_labels(model, x)
    if y is None:
        if attack.targeted:
            raise AttackError(f"{attack.name} is targeted: pass the target classes as y")
        labels = predicted
    else:
        labels = check_labels(y, len(x), attack.model_info(model, x).num_classes)
    counted = np.ones(len(x), bool) if attack.targeted else predicted == labels
    if warmup:  # trace the graphs for every batch shape, untimed
        attack(model, x, labels, **({} if epsilons[0] is None else {"eps": epsilons[0]}))

    reference = x.astype(np.float32)
    rows, images = [], []
    for e in epsilons:
        kwargs = {} if e is None else {"eps": e}
        start = time.perf_counter()
        x_adv = attack(model, x, labels, **kwargs)
        elapsed = time.perf_counter() - start
        queries = getattr(attack, "queries", None)
        adv_predicted = attack.predict_labels(model, x_adv)
        hit = adv_predicted == labels if attack.targeted else adv_predicted != labels
        norms = perturbation_norms(reference, np.asarray(x_adv).astype(np.float32))
        if return_adversarial:
            images.append(x_adv)
        rows.append(
            {
                "Epsilon": math.nan if e is None else e,
                "Success rate (%)": 100.0 * hit[counted].mean() if counted.any() else math.nan,
                **{
                    f"{k} ({stat})": float(getattr(np, stat)(v))
                    for k, v in norms.items()
                    for stat in ("mean", "max")
                },
                "Queries": math.nan if queries is None else float(queries),
                "Time (s)": elapsed,
            }
        )
    table = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    table.attrs.update(
        attack=attack.name,
        examples=len(x),
        counted=int(counted.sum()),
        targeted=attack.targeted,
        norm=attack.norm.label,
    )
    return (table, images) if return_adversarial else table
