"""Sanity checks on a model's outputs and an attack's gradients (Carlini et al. 2019, arXiv 1902.06705).

* ``zero-gradients``: images whose input gradient of the attack's loss is exactly zero or vanishing;
  a gradient attack cannot move them, so their "robustness" is gradient masking.
* ``saturated-loss``: images whose top softmax probability is saturated (>= 1 - 1e-7 in float32),
  where Keras' clipped cross-entropy (``loss="keras"``, the paper's) is flat.
* ``probabilities-as-logits``: outputs treated as logits that are rows of probabilities.

The Evaluator gathers the numbers in a `ModelEvidence` during its pass over the batches (with
``details=True``: the clean log-probabilities it computes anyway, and the gradient it already takes
for ``zero_gradient_share``); `model_sanity_warnings` does the same for any attack, model and data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from robustmask.evaluation.sanity_warning import SanityWarning
from robustmask.modelinfo import _as_output_tensor

if TYPE_CHECKING:  # pragma: no cover
    from robustmask._types import Images, Labels, Model
    from robustmask.attacks.base import Attack
    from robustmask.modelinfo import ModelInfo

__all__ = [
    "ModelEvidence",
    "check_probabilities_as_logits",
    "check_saturated_loss",
    "check_zero_gradients",
    "gradient_shares",
    "model_sanity_warnings",
    "probability_rows",
    "saturated_rows",
]

# An image's gradient "vanishes" when its largest entry is below this. A step of size eps then changes
# the loss by at most d * 1e-12 * eps: under 2e-7 for a 224x224x3 image at eps = 1, below float32's
# resolution of a loss near 1, so step-size rules and loss checks see nothing; and an L2 step divides
# by a norm whose square is near float32's underflow (1e-38) for the smallest of such gradients.
VANISHING_GRADIENT = 1e-12
# Keras clips probabilities to [1e-7, 1 - 1e-7]: from here on its cross-entropy is flat.
SATURATION = 1 - 1e-7
# Shares (%) above which a check fires. 5%: two standard errors of a proportion at 400 images, so a
# smaller share could hide in sampling noise of a typical test set; a larger one inflates accuracy
# beyond it. Saturation under another loss harms only evaluations with a clipped loss: 25%, a share
# that can reverse a comparison between models evaluated that way.
ZERO_GRADIENT_THRESHOLD = 5.0
SATURATED_THRESHOLD = 5.0
SATURATED_ANY_LOSS_THRESHOLD = 25.0
# A float32 softmax row sums to 1 within a few 1e-7; logits practically never do within 1e-4.
PROBABILITY_TOLERANCE = 1e-4


def gradient_shares(gradient: Any) -> tuple[float, float]:
    """(percent of images whose gradient is exactly zero, percent whose max |g| is nonzero but < 1e-12)."""
    zero, vanishing, images = _gradient_counts(gradient)
    return (100.0 * zero / images, 100.0 * vanishing / images) if images else (0.0, 0.0)


def _gradient_counts(gradient: Any) -> tuple[int, int, int]:
    g = np.asarray(gradient)
    largest = np.abs(g.reshape(len(g), -1)).max(axis=1) if g.size else np.zeros(len(g))
    return int(np.sum(largest == 0)), int(np.sum((largest > 0) & (largest < VANISHING_GRADIENT))), len(g)


def saturated_rows(probabilities: Any) -> np.ndarray:
    """Per image: its top probability, rounded to float32 as Keras computes it, is >= 1 - 1e-7."""
    return np.asarray(probabilities, np.float32).max(axis=1) >= SATURATION


def probability_rows(outputs: Any) -> np.ndarray:
    """Per image: its output row is non-negative and sums to 1 within 1e-4 (a row of probabilities)."""
    out = np.asarray(outputs, np.float64)
    return np.all(out >= 0, axis=1) & (np.abs(out.sum(axis=1) - 1.0) <= PROBABILITY_TOLERANCE)


def check_zero_gradients(
    zero_share: float,
    vanishing_share: float = 0.0,
    *,
    attack: str = "the attack",
    threshold: float = ZERO_GRADIENT_THRESHOLD,
) -> SanityWarning | None:
    """``zero-gradients``: the shares (%) of exactly-zero and vanishing input gradients add up to more than 5%.

    Measure the shares with `gradient_shares` (or read the Evaluator's ``zero_gradient_share``).
    """
    if zero_share + vanishing_share <= threshold:
        return None
    return SanityWarning(
        "zero-gradients",
        (
            f"{zero_share:.1f}% of images have an exactly zero input gradient of {attack}'s loss and "
            f"{vanishing_share:.1f}% a vanishing one (max |g| < {VANISHING_GRADIENT:g}), above the {threshold:g}% "
            "threshold: a gradient attack cannot move the first, and on the second its step rests on numbers at the "
            "edge of float32 rounding (a stop_gradient, a rounding or non-differentiable input transform, a saturated "
            "softmax), so their robustness is gradient masking; attack them with a gradient-free attack (Square), "
            "BPDA through the non-differentiable part, or a margin (C&W, DLR) loss"
        ),
        {
            "attack": attack,
            "zero_share": float(zero_share),
            "vanishing_share": float(vanishing_share),
            "vanishing_below": VANISHING_GRADIENT,
            "threshold": float(threshold),
        },
    )


def check_saturated_loss(
    saturated_share: float, *, keras_loss: bool, attack: str = "the attack"
) -> SanityWarning | None:
    """``saturated-loss``: many images' top softmax probability is saturated (>= 1 - 1e-7 in float32).

    With ``keras_loss`` (the attack ascends Keras' clipped cross-entropy) it fires above 5%: those
    images have zero gradients. Otherwise above 25%: the attack's own loss is fine, but any evaluation
    with a clipped loss (the paper's) is blind on those images. Measure the share with `saturated_rows`.
    """
    evidence = {
        "attack": attack,
        "saturated_share": float(saturated_share),
        "keras_loss": keras_loss,
        "saturation": SATURATION,
    }
    threshold = SATURATED_THRESHOLD if keras_loss else SATURATED_ANY_LOSS_THRESHOLD
    if saturated_share <= threshold:
        return None
    if keras_loss:
        text = (
            f"{attack} ascends Keras' clipped cross-entropy (loss='keras'), which is flat where the top softmax "
            f"probability is >= 1 - 1e-7, and {saturated_share:.1f}% of images are saturated there (above the "
            f"{threshold:g}% threshold), so their gradients are zero and their robustness is an artefact: "
            "use the default loss (cross-entropy from the logits) or a margin loss"
        )
    else:
        text = (
            f"{saturated_share:.1f}% of images have a top softmax probability >= 1 - 1e-7 in float32 (above the "
            f"{threshold:g}% threshold), where Keras' clipped cross-entropy (loss='keras', the paper's) has zero "
            f"gradient: {attack}'s loss is not clipped and still works, but do not trust or compare with "
            "evaluations of this model that use a clipped loss, and prefer a margin loss"
        )
    return SanityWarning("saturated-loss", text, {**evidence, "threshold": threshold})


def check_probabilities_as_logits(
    probability_rows: int, rows: int, *, output: str = "logits"
) -> SanityWarning | None:
    """``probabilities-as-logits``: outputs treated as logits (``output``) but every row is a probability row.

    ``probability_rows`` of ``rows`` output rows are non-negative and sum to 1 (`probability_rows`).
    """
    if output != "logits" or rows == 0 or probability_rows < rows:
        return None
    return SanityWarning(
        "probabilities-as-logits",
        (
            f"the model's outputs are treated as logits, but all {rows} output rows are non-negative and sum to 1 "
            f"(within {PROBABILITY_TOLERANCE:g}): the model outputs probabilities, so the loss, the log-probabilities "
            "and the margins are computed from the wrong numbers; pass from_logits=False (or None, to detect it) "
            "to the attack"
        ),
        {
            "rows": rows,
            "probability_rows": probability_rows,
            "output": output,
            "tolerance": PROBABILITY_TOLERANCE,
        },
    )


@dataclass
class ModelEvidence:
    """Counts gathered batch by batch for the model and gradient checks; `warnings` runs them.

    Attributes:
        attack: the attack's name, for the messages.
        keras_loss: the attack ascends Keras' clipped cross-entropy (``loss="keras"``).
        output: how the outputs are treated ("logits" or "probabilities"); None before the first batch.
    """

    attack: str = "the attack"
    keras_loss: bool = False
    output: str | None = None
    images: int = 0
    saturated: int = 0
    rows: int = 0
    probability_rows: int = 0
    gradient_images: int = 0
    zero_gradients: int = 0
    vanishing_gradients: int = 0

    @classmethod
    def for_attack(cls, attack: Attack) -> ModelEvidence:
        """Empty evidence for `attack` (its name, and whether it ascends Keras' clipped loss)."""
        loss = getattr(attack, "loss_fn", None)  # GradientAttack's: None, "keras" or a callable
        return cls(attack=attack.name, keras_loss=isinstance(loss, str) and loss == "keras")

    def add_clean(self, log_probs: Any, info: ModelInfo, outputs: Any = None) -> None:
        """One clean batch: its log-probabilities and, for a model treated as logits, its raw outputs."""
        log_probs = np.asarray(log_probs, np.float32)
        self.output = info.output
        self.images += len(log_probs)
        self.saturated += int(np.sum(saturated_rows(np.exp(log_probs))))
        if outputs is not None and info.output == "logits" and not info.single_unit:
            self.rows += len(log_probs)
            self.probability_rows += int(np.sum(probability_rows(_as_output_tensor(outputs))))

    def add_gradients(self, gradient: Any) -> None:
        """One batch of the input gradients the attack follows."""
        zero, vanishing, images = _gradient_counts(gradient)
        self.zero_gradients += zero
        self.vanishing_gradients += vanishing
        self.gradient_images += images

    @property
    def zero_share(self) -> float | None:
        """Percent of images with an exactly zero gradient; None when no gradient was measured."""
        return 100.0 * self.zero_gradients / self.gradient_images if self.gradient_images else None

    def warnings(self) -> list[SanityWarning]:
        found = []
        if self.gradient_images:
            found.append(
                check_zero_gradients(
                    100.0 * self.zero_gradients / self.gradient_images,
                    100.0 * self.vanishing_gradients / self.gradient_images,
                    attack=self.attack,
                )
            )
        if self.images:
            found.append(
                check_saturated_loss(
                    100.0 * self.saturated / self.images, keras_loss=self.keras_loss, attack=self.attack
                )
            )
        if self.output is not None:
            found.append(check_probabilities_as_logits(self.probability_rows, self.rows, output=self.output))
        return [warning for warning in found if warning is not None]


def model_sanity_warnings(
    attack: Attack, model: Model, x: Images, y: Labels, batch_size: int = 128
) -> list[SanityWarning]:
    """The model and gradient checks for `attack` on ``(x, y)``, without running the attack.

    Example::

        for warning in model_sanity_warnings(FGSM(loss="keras"), model, x_test, y_test):
            print(warning.check, warning.evidence)
    """
    from robustmask._validation import check_images, check_labels, check_positive_int
    from robustmask.evaluation.gradients import attack_gradient
    from robustmask.modelinfo import log_probabilities

    batch_size = check_positive_int(batch_size, "batch_size")
    x = check_images(x, attack.clip)
    info = attack.model_info(model, x)
    labels = check_labels(y, len(x), info.num_classes)
    evidence = ModelEvidence.for_attack(attack)
    for start in range(0, len(x), batch_size):
        x_batch = tf.convert_to_tensor(x[start : start + batch_size], tf.float32)
        outputs = model(x_batch, training=False)
        evidence.add_clean(log_probabilities(outputs, info).numpy(), info, outputs)
        if attack.needs_gradients:
            y_batch = tf.one_hot(labels[start : start + batch_size], info.num_classes)
            evidence.add_gradients(attack_gradient(attack, model, x_batch, y_batch).numpy())
    return evidence.warnings()
