"""The study's settings in small groups: the images, the model's training, the attack sweep,
Algorithm 2 and the robust stage beyond the paper. `robustmask._study_config.StudyConfig` holds one
of each (and reads every setting by its flat name too).
"""

from __future__ import annotations

from dataclasses import dataclass

from robustmask import paper

__all__ = ["DataSettings", "DefenseSettings", "RobustSettings", "SweepSettings", "TrainingSettings"]

#: Table 4's epsilons (the clean row, eps 0, is added by the Evaluator).
PAPER_EPSILONS = paper.EPSILONS
#: Appended by the quick preset when the paper's epsilons barely move a model (4/255, 6/255, 8/255).
EXTRA_EPSILONS = (4 / 255, 6 / 255, 8 / 255)
#: Square's queries in the standard suite of the robust stage (AutoAttack's own is 5,000; the robust
#: comparison's Square also has 300): this keeps the README's run in minutes. Square runs only on
#: the images both APGD attacks left robust.
SUITE_SQUARE_QUERIES = 300


@dataclass(frozen=True)
class DataSettings:
    """The images of the paper's part: a folder, or without it the embedded synthetic faces.

    Attributes:
        data: a Kaggle-layout folder, or None for the synthetic faces.
        image_size: side of the square images in pixels.
        n_per_class: synthetic images per class.
        split: the test fraction.
        stream: read the folder's training share from disk batch by batch (tf.data) instead of
            loading it (``reproduce --stream``); its test share is loaded.
    """

    data: str | None = None
    image_size: int = 96
    n_per_class: int = 500
    split: float = 0.07
    stream: bool = False


@dataclass(frozen=True)
class TrainingSettings:
    """The undefended model of Table 4 and its training.

    Attributes:
        weights: base weights: "auto", "imagenet", "none" or a weights file.
        architecture: "auto" (the paper's MobileNetV2 when pre-trained weights are at hand, else
            robustmask's small face-mask CNN, which learns the synthetic faces from scratch),
            "mobilenetv2" or "cnn".
        mobilenet_preprocessing: the model takes [0, 1] images (eps on the paper's scale) and maps
            them to MobileNetV2's [-1, 1]; the paper fed [0, 1] straight in (False).
        epochs: training epochs.
        batch_size: training batch size.
    """

    weights: str = "auto"
    architecture: str = "auto"
    mobilenet_preprocessing: bool = True
    epochs: int = 30
    batch_size: int = 32


@dataclass(frozen=True)
class SweepSettings:
    """The attack of Tables 4 and 5.

    Attributes:
        attack: the attack's registered name.
        clip: clip adversarial images to [0, 1] (False: the paper's exact FGSM).
        epsilons: Table 4's epsilons (the clean row is added by the Evaluator).
        extra_epsilons: appended when the paper's epsilons barely move the model.
    """

    attack: str = "fgsm"
    clip: bool = True
    epsilons: tuple[float, ...] = PAPER_EPSILONS
    extra_epsilons: tuple[float, ...] = EXTRA_EPSILONS


@dataclass(frozen=True)
class DefenseSettings:
    """Algorithm 2, the paper's multi-epsilon adversarial training (Table 5).

    Attributes:
        source: "original" (the paper's: copies made once against the undefended model) or
            "current" (against the model as it trains); Table 5 is measured under both losses.
        subset: fraction of the training set that gets adversarial copies.
        epochs: epochs of adversarial training.
        batch_size: its batch size.
    """

    source: str = "original"
    subset: float = 0.5
    epochs: int = 10
    batch_size: int = 32


@dataclass(frozen=True)
class RobustSettings:
    """Beyond the paper: robustmask's CNN and a defence under FGSM, PGD, Square and AutoAttack's suite.

    Attributes:
        enabled: run this stage.
        defense: the defence's registered name.
        image_size: its image size.
        n_per_class: synthetic images per class.
        epochs: training epochs of both models.
        square_queries: queries of the individual Square attack.
        apgd_iter: the suite's APGD iterations (AutoAttack's: 100).
        suite_square_queries: the suite's Square queries (AutoAttack's: 5,000).
        epsilons: the budgets (the paper's largest eps and 8/255; docs/defences.md has all four).
    """

    enabled: bool = True
    defense: str = "pgd-at"
    image_size: int = 48
    n_per_class: int = 350
    epochs: int = 30
    square_queries: int = 300
    apgd_iter: int = 100
    suite_square_queries: int = SUITE_SQUARE_QUERIES
    epsilons: tuple[float, ...] = (0.009, 8 / 255)
