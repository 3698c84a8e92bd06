"""Sanity checks on an evaluation, after Carlini et al. 2019, "On Evaluating Adversarial Robustness"
(https://arxiv.org/abs/1902.06705): robustness that looks too good to be true usually is.
"""

from __future__ import annotations

import math

import numpy as np

import pandas as pd


def sanity_warnings(table: pd.DataFrame, num_classes: int, examples: int | None = None) -> list[str]:
    """Sentences describing each failed check on a Table-4/5 style table (empty when all pass)."""
    messages = []
    n = examples or table.attrs.get("examples") or 0
    eps = table["Epsilon"].to_numpy()
    acc = table["Accuracy (%)"].to_numpy()
    attack = table.attrs.get("attack", "the attack")
    # Accuracy may wobble by sampling noise; more than two standard errors of a proportion is not noise.
    noise = 2 * 100 * math.sqrt(0.25 / n) if n else 1.0
    for i in range(1, len(acc)):
        best_before = acc[:i].min() if i > 1 else acc[0]
        if eps[i] > 0 and acc[i] > best_before + max(noise, 1.0):
            messages.append(
                f"accuracy rose from {best_before:.2f}% to {acc[i]:.2f}% as eps grew to {eps[i]:g}: a correct attack "
                f"only gets stronger with eps, so {attack} is not converging or the gradients are masked; "
                "evaluate with an iterative (PGD) and a gradient-free attack"
            )
            break
    loss = table["Loss"].to_numpy()
    attacked = loss[eps > 0]
    if len(attacked) and all(abs(value - loss[0]) <= 1e-6 * max(1.0, abs(loss[0])) for value in attacked):
        messages.append(
            f"{attack} did not change the loss at any eps up to {eps.max():g}: the gradients are zero or masked "
            "(a stop_gradient, a rounding or otherwise non-differentiable input transform); check with a "
            "gradient-free attack"
        )
    chance = 100.0 / num_classes
    # "Large" is 0.3 in L-inf; an L2 or L1 budget that large depends on the image size, so no check there.
    in_linf = table.attrs.get("norm", "L-inf") == "L-inf"
    large = (eps >= 0.3) & (acc > chance + max(noise, 10.0)) & in_linf
    if large.any():
        i = int(np.argmax(large))
        messages.append(
            f"accuracy is {acc[i]:.2f}% at eps {eps[i]:g}, far above chance ({chance:.0f}%): an L-inf budget that "
            "large can turn any image into mid-grey, so an attack that converges should reach chance; "
            f"{attack} is too weak here or the gradients are masked"
        )
    return messages
