"""What the study takes and what it returns: `StudyConfig`, `StudyData`, `StudyResults`.

One home for the settings of `robustmask.reproduce.run_study` (its steps in `_study_steps`, its
outputs in `_study_report` and `_study_robust` read them from here, so no module of the study
imports another in a circle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from robustmask import paper
from robustmask._deprecation import renamed_keywords

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import numpy as np
    import pandas as pd

    from robustmask.attacks.base import Attack
    from robustmask.evaluation.evaluator import EvaluationResult

__all__ = ["StudyConfig", "StudyData", "StudyResults"]

#: Table 4's epsilons (the clean row, eps 0, is added by the Evaluator).
PAPER_EPSILONS = paper.EPSILONS
#: Appended by the quick preset when the paper's epsilons barely move a model (4/255, 6/255, 8/255).
EXTRA_EPSILONS = (4 / 255, 6 / 255, 8 / 255)
#: Without pre-trained weights MobileNetV2 trained from scratch stays at chance on the synthetic faces
#: (33% train and test); robustmask's small CNN learns them, at this size in the quick preset.
SCRATCH_IMAGE_SIZE = 48
ARCHITECTURES = ("auto", "mobilenetv2", "cnn")
#: Square's queries in the standard suite of the robust stage (AutoAttack's own is 5,000; the robust
#: comparison's Square also has 300): this keeps the README's run in minutes. Square runs only on
#: the images both APGD attacks left robust.
SUITE_SQUARE_QUERIES = 300
#: The fields' old spellings (old -> new): `StudyConfig.quick` and `full` take them with a warning.
_RENAMED_FIELDS = {
    "defence_source": "defense_source",
    "defence_epochs": "defense_epochs",
    "defence_batch_size": "defense_batch_size",
    "robust_defence": "robust_defense",
}


@dataclass
class StudyConfig:
    """Every setting of one reproduction; `quick()` and `full()` are the two presets."""

    preset: str = "quick"
    data: str | None = None
    image_size: int = 96
    n_per_class: int = 500
    split: float = 0.07
    seed: int = 0
    weights: str = "auto"
    # "auto": the paper's MobileNetV2 when pre-trained weights are at hand, else robustmask's small
    # face-mask CNN (zoo.facemask_cnn), which learns the synthetic faces from scratch.
    architecture: str = "auto"
    # The model takes [0, 1] images (eps on the paper's scale) and maps them to the [-1, 1] range
    # MobileNetV2's ImageNet weights were trained on; the paper fed [0, 1] straight in (False).
    mobilenet_preprocessing: bool = True
    epochs: int = 30
    batch_size: int = 32
    attack: str = "fgsm"
    clip: bool = True
    epsilons: tuple[float, ...] = PAPER_EPSILONS
    extra_epsilons: tuple[float, ...] = EXTRA_EPSILONS
    # The paper's Algorithm 2: copies made once against the undefended model ("original"); "current"
    # attacks the model as it trains. Either way Table 5 is then measured under both losses.
    defense_source: str = "original"
    subset: float = 0.5
    defense_epochs: int = 10
    defense_batch_size: int = 32
    # Beyond the paper: robustmask's small CNN trained from scratch and made robust with PGD
    # adversarial training, compared under FGSM, PGD, Square and AutoAttack's standard suite, with
    # one worst case over all of them (docs/defences.md, docs/evaluation.md).
    robust: bool = True
    robust_defense: str = "pgd-at"
    robust_image_size: int = 48
    robust_n_per_class: int = 350
    robust_epochs: int = 30
    robust_square_queries: int = 300
    # The standard suite's strength in the robust stage (AutoAttack's: 100 and 5,000).
    robust_apgd_iter: int = 100
    robust_suite_square_queries: int = SUITE_SQUARE_QUERIES
    # The issue-6 targets' budgets: the paper's largest eps and 8/255 (docs/defences.md has all four).
    robust_epsilons: tuple[float, ...] = (0.009, 8 / 255)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def quick(cls, **overrides: Any) -> StudyConfig:
        """Small images and counts: the whole study in minutes on 2 CPU cores."""
        return cls(**renamed_keywords(overrides, _RENAMED_FIELDS, "StudyConfig.quick"))

    @classmethod
    def full(cls, **overrides: Any) -> StudyConfig:
        """The paper's settings: 224 px, 30 epochs, batch 32, the whole training set defended."""
        settings: dict[str, Any] = dict(
            preset="full",
            image_size=224,
            n_per_class=4845,
            subset=1.0,
            defense_epochs=10,
            defense_batch_size=32,
            extra_epsilons=(),
        )
        settings.update(renamed_keywords(overrides, _RENAMED_FIELDS, "StudyConfig.full"))
        return cls(**settings)


@dataclass
class StudyData:
    """The study's images: train and test splits, class names, and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str


@dataclass
class StudyResults:
    """Everything the study measured, for the writer and the log."""

    config: StudyConfig
    data: StudyData
    weights: dict[str, Any]
    attack: Attack
    model: keras.Model
    defended: keras.Model
    histories: dict[str, dict[str, list[float]]]
    table4: EvaluationResult
    table5: EvaluationResult
    table5_keras: EvaluationResult
    zero_gradients: dict[str, float]
    train_accuracy: float
    test_accuracy: float
    robust_table: pd.DataFrame | None = None
    robust_models: dict[str, keras.Model] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
