"""An adversarial-input detector, its rates, and the attack that knows it.

`AdversarialDetector` follows Metzen, Genewein, Fischer & Bischoff, "On Detecting Adversarial
Perturbations", ICLR 2017, https://arxiv.org/abs/1702.04267: a small binary classifier, trained on
clean images and adversarial copies of them (made by a robustmask attack against the classifier),
that reads the classifier's penultimate features (or those of another layer). `DetectorAwarePGD` is the
adaptive attack of Carlini & Wagner, "Adversarial Examples Are Not Easily Detected: Bypassing Ten
Detection Methods", AISec 2017, https://arxiv.org/abs/1705.07263: one PGD whose objective raises the
classifier's margin loss while it lowers the detector's score, so that the adversarial image both
fools the classifier and passes the detector. A detector measured only against the attack it was
trained on says little; measure it against `DetectorAwarePGD` too (docs/defences_beyond.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from robustmask._validation import check_images, check_labels, check_positive_int, check_positive_number
from robustmask.attacks.base import Attack
from robustmask.attacks.pgd import PGD
from robustmask.attacks.losses import margin_loss
from robustmask.defenses._detector_network import detector_head, feature_extractor
from robustmask.defenses.base import Defense
from robustmask.errors import RobustmaskError
from robustmask.modelinfo import inspect_model
from robustmask.predictions import predict_labels

__all__ = ["AdversarialDetector", "DetectionRates", "DetectorAwarePGD"]


@dataclass(frozen=True)
class DetectionRates:
    """What a detector flags on held-out clean and adversarial images.

    Attributes:
        true_positive_rate: share of the adversarial images flagged.
        false_positive_rate: share of the clean images flagged.
        clean, adversarial: how many images of each kind were scored.
        flagged_clean, flagged_adversarial: how many of each were flagged.
        fooled: adversarial images the classifier gets wrong (None without labels).
        fooled_undetected: adversarial images that fool the classifier AND pass the detector, the
            attack's real successes against classifier + detector (None without labels).
    """

    true_positive_rate: float
    false_positive_rate: float
    clean: int
    adversarial: int
    flagged_clean: int
    flagged_adversarial: int
    fooled: int | None = None
    fooled_undetected: int | None = None


class AdversarialDetector(Defense):
    """A binary detector of adversarial inputs for one classifier (Metzen et al. 2017).

    Args:
        attack: makes the adversarial training examples: an untargeted robustmask `Attack`; default
            ``PGD(steps=10)`` with a random start.
        eps: the attack's L-inf budget.
        features: "penultimate" (the output of the classifier's second-to-last layer) or the name of
            another layer of the classifier (Metzen et al. attach detectors at several depths). Needs a
            Functional or Sequential classifier.
        hidden: width of the detector's hidden layer.
        epochs: training epochs of the detector (Adam; the classifier is not trained).
        batch_size: its training batch size.
        learning_rate: Adam's learning rate for it.
        threshold: score (probability of "adversarial") above which an input is flagged.
        seed: seeds the detector's initial weights and the order of its training examples.

    Example::

        detector = AdversarialDetector(robustmask.attacks.PGD(steps=10), eps=8 / 255)
        detector_model, history = detector.fit(model, (x_train, y_train))
        x_adv = robustmask.attacks.PGD(steps=10)(model, x_test, y_test, eps=8 / 255)
        print(detector.rates(x_test, x_adv, y_test))              # the non-adaptive attack
        x_ada = DetectorAwarePGD(detector, steps=50)(model, x_test, y_test, eps=8 / 255)
        print(detector.rates(x_test, x_ada, y_test))              # the attack that knows it
    """

    def __init__(
        self,
        attack: Attack | None = None,
        eps: float = 8 / 255,
        *,
        features: str = "penultimate",
        hidden: int = 32,
        epochs: int = 30,
        batch_size: int = 32,
        learning_rate: float = 3e-3,
        threshold: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.attack = PGD(steps=10) if attack is None else attack
        if not isinstance(self.attack, Attack) or self.attack.targeted:
            raise RobustmaskError(f"attack must be an untargeted robustmask Attack, got {self.attack!r}")
        self.eps = check_positive_number(eps, "eps")
        if not isinstance(features, str) or not features:
            raise RobustmaskError(f"features must be 'penultimate' or a layer name, got {features!r}")
        self.features = features
        self.hidden = check_positive_int(hidden, "hidden")
        self.epochs = check_positive_int(epochs, "epochs")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.learning_rate = check_positive_number(learning_rate, "learning_rate")
        self.threshold = check_positive_number(threshold, "threshold")
        if not self.threshold < 1.0:
            raise RobustmaskError(f"threshold is a probability in (0, 1), got {threshold!r}")
        self.seed = check_positive_int(seed, "seed", allow_zero=True)
        self.model_: keras.Model | None = None  # input -> detector logit, set by fit
        self.classifier_: keras.Model | None = None

    def fit(
        self, model: keras.Model, train_data: Any, **kwargs: Any
    ) -> tuple[keras.Model, keras.callbacks.History]:
        """Train on ``train_data`` = ``(x, y)`` and its adversarial copies; return ``(detector_model, history)``.

        The detector model maps an input batch to one logit per image (``sigmoid`` of it is the
        score). The classifier is only read, never changed.
        """
        if not isinstance(train_data, (tuple, list)) or len(train_data) != 2:
            raise RobustmaskError(
                "train_data must be (x, y) arrays: the detector needs clean images and labels"
            )
        x = check_images(train_data[0], self.attack.clip)
        info = inspect_model(model, self.attack.from_logits, x)
        y = check_labels(train_data[1], len(x), info.num_classes)
        extractor = feature_extractor(model, self.features)  # before the attack: a bad layer name fails fast
        x_adv = self._attack(model, x, y)
        inputs = np.concatenate([x, x_adv]).astype(np.float32)
        features = extractor.predict(inputs, batch_size=256, verbose=0)
        labels = np.concatenate([np.zeros(len(x)), np.ones(len(x_adv))]).astype(np.float32)[:, None]
        head = detector_head(features, self.hidden, self.seed)
        head.compile(
            keras.optimizers.Adam(self.learning_rate),
            keras.losses.BinaryCrossentropy(from_logits=True),
            metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)],
        )
        dataset = (
            tf.data.Dataset.from_tensor_slices((features, labels))
            .shuffle(len(labels), seed=self.seed, reshuffle_each_iteration=True)
            .batch(self.batch_size)
        )
        history = head.fit(dataset, epochs=self.epochs, shuffle=False, verbose=0)
        image = keras.Input(x.shape[1:])
        logit = head(extractor(image))
        self.model_ = keras.Model(image, logit, name="adversarial_detector")
        self.classifier_ = model
        return self.model_, history

    def logits(self, x: np.ndarray) -> np.ndarray:
        """The detector's logit per image (positive: more likely adversarial than clean)."""
        if self.model_ is None:
            raise RobustmaskError("the detector is not trained: call fit(model, (x, y)) first")
        x = check_images(x, self.attack.clip)
        return self.model_.predict(x.astype(np.float32), batch_size=256, verbose=0)[:, 0]

    def score(self, x: np.ndarray) -> np.ndarray:
        """Probability of "adversarial" per image."""
        return 1.0 / (1.0 + np.exp(-self.logits(x).astype(np.float64)))

    def detect(self, x: np.ndarray) -> np.ndarray:
        """True where the detector flags the image (score above `threshold`)."""
        return self.score(x) > self.threshold

    def rates(self, x_clean: np.ndarray, x_adv: np.ndarray, y: np.ndarray | None = None) -> DetectionRates:
        """True- and false-positive rates on held-out images; with labels ``y`` (of ``x_adv``'s clean
        originals), also how many adversarial images fool the classifier and pass the detector."""
        flagged_clean, flagged_adv = self.detect(x_clean), self.detect(x_adv)
        fooled = fooled_undetected = None
        if y is not None:
            classifier = self.classifier_
            assert classifier is not None  # set by fit, as the detector that `detect` needs
            info = inspect_model(classifier, self.attack.from_logits, x_adv)
            labels = check_labels(y, len(x_adv), info.num_classes)
            predicted = predict_labels(classifier, np.asarray(x_adv, np.float32), info)
            wrong = predicted != labels
            fooled, fooled_undetected = int(wrong.sum()), int((wrong & ~flagged_adv).sum())
        return DetectionRates(
            float(flagged_adv.mean()),
            float(flagged_clean.mean()),
            len(flagged_clean),
            len(flagged_adv),
            int(flagged_clean.sum()),
            int(flagged_adv.sum()),
            fooled,
            fooled_undetected,
        )

    # ------------------------------------------------------------------ internals
    def _attack(self, model: keras.Model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.attack.eps_bounded:
            return self.attack(model, x, y, eps=self.eps)
        return self.attack(model, x, y)


class DetectorAwarePGD(PGD):
    """PGD against classifier + detector at once (Carlini & Wagner 2017, arXiv 1705.07263).

    Ascends ``margin(classifier) - weight * max(detector logit - logit(threshold), -detector_confidence)``:
    the C&W margin loss (capped at ``confidence``, so once the classifier is fooled the steps go to the
    detector) plus a term that pushes the detector's logit below its threshold. Call it on the
    classifier, as any attack; the detector comes with the constructor.

    Args:
        detector: a fitted `AdversarialDetector`.
        weight: weight of the detector term.
        confidence: cap of the classifier margin (log-probability units).
        detector_confidence: how far below the threshold (in logits) the detector is pushed.
        **kwargs: the keyword arguments below.

    Keyword Args:
        steps (int): PGD steps per restart (default 40).
        rel_stepsize (float | None): the step as a fraction of eps (default 2.5 / steps).
        abs_stepsize (float | None): the step in input units; overrides rel_stepsize.
        random_start (bool): start from a random point of the eps ball (default True).
        restarts (int): random starts per image (default 1).
        seed (int | None): seed of the random starts.
        loss (None | str | Callable): replaces the margin loss built from `confidence`.
        clip (tuple[float, float] | None): the valid input range, default ``(0, 1)``; ``None`` turns clipping
            off.
        norm (str | int): the threat model eps bounds: ``"inf"`` (L-inf, default), ``2`` or ``1``.
        from_logits (bool | None): ``None`` (default) detects whether the model ends in softmax or outputs
            logits; True or False says which.
        targeted (bool): ``y`` holds target classes and the attack pushes towards them (default False).
        batch_size (int): images per forward pass (default 128).

    Example::

        attack = DetectorAwarePGD(detector, steps=50, seed=0)
        x_adv = attack(model, x_test, y_test, eps=8 / 255)
        rates = detector.rates(x_test, x_adv, y_test)   # rates.fooled_undetected
    """

    def __init__(
        self,
        detector: AdversarialDetector,
        weight: float = 1.0,
        *,
        confidence: float = 2.0,
        detector_confidence: float = 2.0,
        **kwargs: Any,
    ) -> None:
        if not isinstance(detector, AdversarialDetector) or detector.model_ is None:
            raise RobustmaskError("detector must be a fitted AdversarialDetector (call detector.fit first)")
        kwargs.setdefault("loss", margin_loss(confidence))
        super().__init__(**kwargs)
        self.detector = detector
        self.weight = check_positive_number(weight, "weight")
        self.detector_confidence = check_positive_number(
            detector_confidence, "detector_confidence", allow_zero=True
        )
        self._offset = math.log(detector.threshold / (1.0 - detector.threshold))

    def objective(self, model: keras.Model, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        detector = self.detector.model_
        assert detector is not None  # __init__ takes fitted detectors only
        logit = detector(x, training=False)[:, 0] - self._offset
        return super().objective(model, x, y) - self.weight * tf.maximum(logit, -self.detector_confidence)
