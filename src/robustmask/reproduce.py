"""The study end to end: Sheikh & Zafar (2023) on the embedded synthetic faces or the Kaggle folder.

Load data, train the face-mask model, sweep the attack over the paper's epsilons (Table 4), train
the defended model with Algorithm 2, sweep it again (Table 5), go beyond the paper with a defence
judged by strong attacks, and write a results folder with report.html. `run_study` is the sequence;
the steps live in `robustmask._study_steps` and `robustmask._study_tables`, the settings in
`robustmask._study_config`, the outputs in `robustmask._study_report`.
``robustmask reproduce`` is a thin CLI over `run_study`.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustmask._io import refuse_filled_folder, replaced_folder
from robustmask._study_config import (  # noqa: F401  (re-exported: robustmask.reproduce is the public home)
    ARCHITECTURES,
    EXTRA_EPSILONS,
    PAPER_EPSILONS,
    SCRATCH_IMAGE_SIZE,
    SUITE_SQUARE_QUERIES,
    DataSettings,
    DefenseSettings,
    RobustSettings,
    StudyConfig,
    StudyData,
    StudyResults,
    SweepSettings,
    TrainingSettings,
)
from robustmask._study_report import log_study, write_study
from robustmask._study_steps import (  # noqa: F401  (the steps are monkeypatched here by tests and benchmarks)
    _accuracy,
    _build_model,
    _load_data,
    _progress_callbacks,
    _robust_comparison,
    _sweep,
    _note,
    _train_accuracy,
    _train_undefended,
    resolve_weights,
)
from robustmask.errors import RobustmaskError
from robustmask._study_tables import MOVE_THRESHOLD, _defend, _epsilons, _table4, _table5  # noqa: F401

if TYPE_CHECKING:  # pragma: no cover - imported where they are used, after the arguments are checked
    import keras
    import pandas as pd

#: What the evidence shows about Table 5 (docs/reproduce.md has the experiments behind it).
EVIDENCE = """
What the evidence shows (docs/reproduce.md; python benchmarks/table5_experiments.py): no variant of
Algorithm 2 (learning rate, epochs, subset, clean/adversarial ratio, fresh head, saturated starting
model, whole network trainable) gave the paper's flat Table 5 here: every defended model fell to PGD
(at most 6.6% at eps 0.009, bar one that collapsed to a constant answer) and lost 10 to 61 points of
clean accuracy, mostly because nine true-label copies per image outweigh the clean one. Keras'
clipped loss (the paper's literal FGSM) masks the gradient only where the softmax saturates: on an
undefended model trained to saturation it reported 64% under FGSM where robustmask's loss gave 5%
and PGD 1%. A flat, high FGSM curve is what such a masked gradient looks like, not robustness:
judge a defence by PGD and Square (robust_comparison).
"""


def run_study(
    config: StudyConfig,
    output: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the study and write its results folder into `output`; return the summary (also summary.json).

    `config` is not changed: adjustments (no pre-trained weights, epsilons the model shrugs off) are
    made on a copy and recorded as notes.
    """
    output = Path(output)
    refuse_filled_folder(output, overwrite)
    _check_settings(config)
    results = _run_steps(config, progress, log)
    # Into a new folder beside `output`, swapped in whole when complete: nothing of an earlier run
    # survives an --overwrite, and a crash here leaves the earlier results as they were.
    with replaced_folder(output, overwrite=overwrite) as folder:
        summary = write_study(folder, results, evidence=EVIDENCE, command=_command())
    log_study(results, log, EVIDENCE)
    log(f"  weights: {results.weights['description']}")
    log(
        f"  wrote {output}/report.html (and tables/, figures/, models, summary.json) in "
        f"{results.timings['total_s']:.0f} s"
    )
    return summary


def _run_steps(config: StudyConfig, progress: bool, log: Callable[[str], None]) -> StudyResults:
    """Every step of the study in order, each timed (the names are this module's, so that tests and
    benchmarks can replace a step here)."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    notes: list[str] = list(config.notes)

    import keras

    import robustmask

    log(f"robustmask {robustmask.__version__}: reproducing Sheikh & Zafar (2023), preset '{config.preset}'")
    keras.utils.set_random_seed(
        config.seed
    )  # Python, NumPy and TensorFlow: initial weights, dropout, shuffling
    with _timed(timings, "data_s"), tempfile.TemporaryDirectory(prefix="robustmask-weights-") as weights_dir:
        weights = resolve_weights(config.training.weights, Path(weights_dir))
        log(f"  weights: {weights['description']}")
        config = _settings_for(config, weights, notes, log)
        data = _load_data(config, log)
        model = _build_model(config, len(data.class_names), weights)
    with _timed(timings, "train_s"):
        history = _train_undefended(model, data, config, progress, log)
        train_accuracy, test_accuracy = _report_training(model, data, notes, log)
    with _timed(timings, "table4_s"):
        attack, table4 = _table4(config, model, data, progress, notes, log)
    with _timed(timings, "defense_s"):
        defended, defense_history = _defend(config, model, data, table4, progress, log)
    with _timed(timings, "table5_s"):
        table5, table5_keras, zero_gradients = _table5(
            config, attack, model, defended, data, table4, progress
        )
    with _timed(timings, "robust_s"):
        robust_table, robust_models = _beyond_the_paper(config, progress, log)
    timings["total_s"] = time.perf_counter() - started
    return StudyResults(
        config=config,
        data=data,
        weights=weights,
        attack=attack,
        model=model,
        defended=defended,
        histories={"undefended": dict(history.history), "Algorithm 2": dict(defense_history.history)},
        table4=table4,
        table5=table5,
        table5_keras=table5_keras,
        zero_gradients=zero_gradients,
        train_accuracy=train_accuracy,
        test_accuracy=test_accuracy,
        robust_table=robust_table,
        robust_models=robust_models,
        notes=notes,
        timings=timings,
    )


# ---------------------------------------------------------------------------------------------- the steps, in order
def _check_settings(config: StudyConfig) -> None:
    """A bad architecture, defence name or setting fails now, not after the study's first hour."""
    from robustmask._validation import check_choice

    check_choice(config.training.architecture, ARCHITECTURES, "architecture")
    if config.images.stream and not config.images.data:
        raise RobustmaskError(
            "--stream (stream=True) reads a folder: give --data DIR (data=); the synthetic faces are made in memory"
        )
    stage = config.robust_stage
    if not stage.enabled:
        return
    from robustmask._validation import check_epsilons, check_positive_int
    from robustmask.defenses.presets import robust_preset

    for name in (
        "epochs",
        "n_per_class",
        "image_size",
        "square_queries",
        "apgd_iter",
        "suite_square_queries",
    ):
        check_positive_int(getattr(stage, name), f"robust_{name}")
    check_epsilons(stage.epsilons)
    robust_preset(stage.defense, epochs=stage.epochs, seed=config.seed)


def _settings_for(
    config: StudyConfig, weights: dict[str, Any], notes: list[str], log: Callable[[str], None]
) -> StudyConfig:
    """The settings the run uses: a copy of `config`, shrunk when the whole network trains from scratch."""
    architecture = config.training.architecture
    if architecture == "auto":
        architecture = "mobilenetv2" if weights["weights"] is not None else "cnn"
        if architecture == "cnn":
            _note(
                notes,
                log,
                "no pre-trained weights: the study uses robustmask's small face-mask CNN "
                "(robustmask.zoo.facemask_cnn) trained from scratch, not the paper's MobileNetV2, which "
                "stays at chance accuracy without ImageNet weights",
            )
    size = config.images.image_size
    if architecture == "cnn" and config.preset == "quick" and size > SCRATCH_IMAGE_SIZE:
        _note(notes, log, f"the quick preset trains the CNN at {SCRATCH_IMAGE_SIZE} px")
        size = SCRATCH_IMAGE_SIZE
    config = dataclasses.replace(
        config,
        images=dataclasses.replace(config.images, image_size=size),
        training=dataclasses.replace(config.training, architecture=architecture),
    )
    if config.preset == "quick":
        log(
            f"  quick preset: {size} px images, {config.training.epochs} epochs, defence on "
            f"{config.defense.subset:.0%} of the training set for {config.defense.epochs} epochs "
            "(pass --full for the paper's settings)"
        )
    return config


def _report_training(
    model: keras.Model, data: StudyData, notes: list[str], log: Callable[[str], None]
) -> tuple[float, float]:
    train_accuracy = _train_accuracy(model, data)  # a stream's y_train: its readable files' labels
    test_accuracy = _accuracy(model, data.x_test, data.y_test)
    log(
        f"  trained: {train_accuracy:.2f}% train accuracy, {test_accuracy:.2f}% test accuracy "
        "(paper: 98.51% / 95.83%)"
    )
    chance = 100.0 / len(data.class_names)
    if test_accuracy < chance + 15:
        _note(
            notes,
            log,
            f"the model barely learned ({test_accuracy:.1f}% test accuracy, chance is {chance:.0f}%): "
            "the tables below say nothing about robustness; give ImageNet weights (robustmask "
            "seed-weights, --weights PATH) or more epochs",
            kind="warning",
        )
    return train_accuracy, test_accuracy


def _beyond_the_paper(
    config: StudyConfig, progress: bool, log: Callable[[str], None]
) -> tuple[pd.DataFrame | None, dict[str, keras.Model]]:
    """The robust preset against its undefended twin, both under FGSM, PGD, Square and AutoAttack's
    suite: one table, one worst case per model and eps over every attack."""
    if not config.robust_stage.enabled:
        return None, {}
    compared = _robust_comparison(config, log, progress)
    if compared is None:
        return None, {}
    table, models, _ = compared
    for name, measured in table.attrs.get("models", {}).items():
        spent = ", ".join(f"{attack} {seconds:.0f} s" for attack, seconds in measured["seconds"].items())
        log(f"  attacking {name} took {spent}")
    return table, models


# ---------------------------------------------------------------------------------------------- helpers
class _timed:
    """``with _timed(timings, "name_s"):`` adds the block's wall time to ``timings["name_s"]``."""

    def __init__(self, timings: dict[str, float], name: str):
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.name] = self.timings.get(self.name, 0.0) + time.perf_counter() - self.started


def _command() -> str:
    argv = sys.argv[1:] if sys.argv and Path(sys.argv[0]).name == "robustmask" else []
    return shlex.join(["robustmask", *argv]) if argv else "robustmask.reproduce.run_study(...)"
