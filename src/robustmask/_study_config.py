"""What the study takes and what it returns: `StudyConfig`, `StudyData`, `StudyResults`.

One home for the settings (their groups in `_study_settings`) of `robustmask.reproduce.run_study` (its steps in `_study_steps`, its
outputs in `_study_report` and `_study_robust` read them from here, so no module of the study
imports another in a circle).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from robustmask._deprecation import renamed_keywords
from robustmask._study_settings import (  # noqa: F401  (the constants are read from here too)
    EXTRA_EPSILONS,
    PAPER_EPSILONS,
    SUITE_SQUARE_QUERIES,
    DataSettings,
    DefenseSettings,
    RobustSettings,
    SweepSettings,
    TrainingSettings,
)

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import numpy as np
    import pandas as pd
    import tensorflow as tf

    from robustmask.attacks.base import Attack
    from robustmask.evaluation.evaluator import EvaluationResult

__all__ = [
    "DataSettings",
    "DefenseSettings",
    "RobustSettings",
    "StudyConfig",
    "StudyData",
    "StudyResults",
    "SweepSettings",
    "TrainingSettings",
]

#: Without pre-trained weights MobileNetV2 trained from scratch stays at chance on the synthetic faces
#: (33% train and test); robustmask's small CNN learns them, at this size in the quick preset.
SCRATCH_IMAGE_SIZE = 48
ARCHITECTURES = ("auto", "mobilenetv2", "cnn")
#: The fields' old spellings (old -> new): `StudyConfig.quick` and `full` take them with a warning.
_RENAMED_FIELDS = {
    "defence_source": "defense_source",
    "defence_epochs": "defense_epochs",
    "defence_batch_size": "defense_batch_size",
    "robust_defence": "robust_defense",
}


_GROUPS = {
    "images": DataSettings,
    "training": TrainingSettings,
    "sweep": SweepSettings,
    "defense": DefenseSettings,
    "robust_stage": RobustSettings,
}
#: Each setting's flat name (`StudyConfig.quick(image_size=64)`, ``config.image_size``): group, field.
FLAT_NAMES: dict[str, tuple[str, str]] = {
    **{name: ("images", name) for name in ("data", "image_size", "n_per_class", "split", "stream")},
    **{
        name: ("training", name)
        for name in ("weights", "architecture", "mobilenet_preprocessing", "epochs", "batch_size")
    },
    **{name: ("sweep", name) for name in ("attack", "clip", "epsilons", "extra_epsilons")},
    "defense_source": ("defense", "source"),
    "subset": ("defense", "subset"),
    "defense_epochs": ("defense", "epochs"),
    "defense_batch_size": ("defense", "batch_size"),
    "robust": ("robust_stage", "enabled"),
    **{
        f"robust_{name}": ("robust_stage", name)
        for name in (
            "defense",
            "image_size",
            "n_per_class",
            "epochs",
            "square_queries",
            "apgd_iter",
            "suite_square_queries",
            "epsilons",
        )
    },
}


@dataclass(init=False)
class StudyConfig:
    """Every setting of one reproduction, in small groups; `quick()` and `full()` are the two presets.

    Each setting also has a flat name (`FLAT_NAMES`), taken by the constructor and the presets and
    readable as an attribute: ``StudyConfig.quick(robust_epochs=3).robust_stage.epochs == 3`` and
    ``config.robust_epochs`` reads it back.

    Attributes:
        preset: "quick" or "full".
        seed: seeds the data, the split and Keras.
        images: the images (`DataSettings`).
        training: the undefended model (`TrainingSettings`).
        sweep: the attack of Tables 4 and 5 (`SweepSettings`).
        defense: Algorithm 2 (`DefenseSettings`).
        robust_stage: the comparison beyond the paper (`RobustSettings`).
        notes: what the run adjusted, for the report.
    """

    preset: str
    seed: int
    images: DataSettings
    training: TrainingSettings
    sweep: SweepSettings
    defense: DefenseSettings
    robust_stage: RobustSettings
    notes: list[str]

    def __init__(
        self,
        *,
        preset: str = "quick",
        seed: int = 0,
        images: DataSettings | None = None,
        training: TrainingSettings | None = None,
        sweep: SweepSettings | None = None,
        defense: DefenseSettings | None = None,
        robust_stage: RobustSettings | None = None,
        notes: list[str] | None = None,
        **flat: Any,
    ) -> None:
        unknown = sorted(set(flat) - set(FLAT_NAMES))
        if unknown:
            raise TypeError(f"StudyConfig got an unexpected keyword argument {unknown[0]!r}")
        given: dict[str, Any] = {"images": images, "training": training, "sweep": sweep, "defense": defense}
        given["robust_stage"] = robust_stage
        self.preset, self.seed, self.notes = preset, seed, list(notes or [])
        for group, kind in _GROUPS.items():
            changes = {
                field: flat[name]
                for name, (home, field) in FLAT_NAMES.items()
                if home == group and name in flat
            }
            object.__setattr__(self, group, dataclasses.replace(given[group] or kind(), **changes))

    def __getattr__(self, name: str) -> Any:
        """A setting by its flat name (``config.image_size`` is ``config.images.image_size``)."""
        if name not in FLAT_NAMES:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        group, field = FLAT_NAMES[name]
        return getattr(object.__getattribute__(self, group), field)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in FLAT_NAMES:  # the group is frozen: replaced with the one setting changed
            group, field = FLAT_NAMES[name]
            value, name = dataclasses.replace(getattr(self, group), **{field: value}), group
        object.__setattr__(self, name, value)

    def settings(self) -> dict[str, Any]:
        """Every setting by its flat name (summary.json's "settings"), notes aside."""
        return {
            "preset": self.preset,
            "seed": self.seed,
            **{name: getattr(self, name) for name in FLAT_NAMES},
        }

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
    """The study's images: train and test splits, class names, and where they came from.

    With ``stream``, ``x_train`` is the folder's training stream (`robustmask.datasets.stream_faces`)
    and ``y_train`` the labels of its files (of its readable files once the model has trained).
    """

    x_train: np.ndarray | tf.data.Dataset
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
