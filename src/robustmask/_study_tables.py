"""Tables 4 and 5 of the study and Algorithm 2 between them (`robustmask.reproduce.run_study` runs
them in this order): the attack's sweep on the undefended model, the paper's multi-epsilon
adversarial training, and the sweep again on the defended model under two losses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from robustmask._study_config import StudyConfig, StudyData
from robustmask._study_steps import _note, _progress_callbacks, _sample, _sweep, _train_set

if TYPE_CHECKING:  # pragma: no cover - imported where they are used
    import keras

    from robustmask.attacks.base import Attack
    from robustmask.evaluation.evaluator import EvaluationResult

#: Below this drop in accuracy (percentage points) at eps 0.009 the paper's epsilons "do not move" the model.
MOVE_THRESHOLD = 10.0


def _table4(
    config: StudyConfig,
    model: keras.Model,
    data: StudyData,
    progress: bool,
    notes: list[str],
    log: Callable[[str], None],
) -> tuple[Attack, EvaluationResult]:
    """Table 4 at the paper's epsilons, extended to 8/255 when they barely move the model."""
    from robustmask import attacks

    sweep = config.sweep
    attack = attacks.get(sweep.attack, clip=(0.0, 1.0) if sweep.clip else None)
    table4 = _sweep(attack, list(sweep.epsilons), model, data, progress, "Table 4 (undefended)")
    drop = table4.table["Accuracy (%)"].iloc[0] - table4.table["Accuracy (%)"].iloc[-1]
    if sweep.extra_epsilons and drop < MOVE_THRESHOLD:
        _note(
            notes,
            log,
            f"the paper's epsilons (up to {max(sweep.epsilons):g}) moved the accuracy by only "
            f"{drop:.1f} points on this model and data, so the quick preset appends eps "
            f"{', '.join(f'{e:.4f}' for e in sweep.extra_epsilons)} (4/255 to 8/255)",
        )
        epsilons = [*sweep.epsilons, *sweep.extra_epsilons]
        table4 = _sweep(attack, epsilons, model, data, progress, "Table 4 (undefended, extended)")
    return attack, table4


def _defend(
    config: StudyConfig,
    model: keras.Model,
    data: StudyData,
    table4: EvaluationResult,
    progress: bool,
    log: Callable[[str], None],
) -> tuple[keras.Model, Any]:
    """Algorithm 2 at Table 4's epsilons; with a frozen base, D' is made once and kept as base features."""
    from robustmask import attacks
    from robustmask.defenses import MultiEpsilonAdversarialTrainer
    from robustmask.frozen_features import split_frozen_prefix

    defense, clip = config.defense, (0.0, 1.0) if config.sweep.clip else None
    frozen = defense.source == "original" and split_frozen_prefix(model, _sample(data)) is not None
    trainer = MultiEpsilonAdversarialTrainer(
        _epsilons(table4),
        subset=defense.subset,
        attack=attacks.get("fgsm", clip=clip),
        source=defense.source,
        epochs=defense.epochs,
        batch_size=defense.batch_size,
        seed=config.seed,
        cache="features" if frozen else "none",
    )
    log(
        f"  defence: Algorithm 2 with copies made against the {defense.source} model "
        f"({trainer.labels} labels) on {defense.subset:.0%} of the training set"
    )
    return trainer.fit(
        model,
        _train_set(data),
        verbose=0,
        callbacks=_progress_callbacks(progress, defense.epochs, "adversarial training (Algorithm 2)"),
    )


def _table5(
    config: StudyConfig,
    attack: Attack,
    model: keras.Model,
    defended: keras.Model,
    data: StudyData,
    table4: EvaluationResult,
    progress: bool,
) -> tuple[EvaluationResult, EvaluationResult, dict[str, float]]:
    """Table 5 under robustmask's loss and the paper's literal one, and where each has a zero gradient."""
    from robustmask import attacks
    from robustmask.evaluation.gradients import zero_gradient_share

    epsilons = _epsilons(table4)
    table5 = _sweep(attack, epsilons, defended, data, progress, "Table 5 (defended)")
    # The paper's literal FGSM: Keras' clipped cross-entropy, flat (zero gradient) on saturated outputs.
    keras_fgsm = attacks.get("fgsm", clip=(0.0, 1.0) if config.sweep.clip else None, loss="keras")
    table5_keras = _sweep(keras_fgsm, epsilons, defended, data, progress, "Table 5 (defended, Keras loss)")
    zero_gradients = {
        f"{name}, {loss} loss": zero_gradient_share(fgsm, chosen, data.x_test, data.y_test)
        for name, chosen in (("undefended", model), ("defended", defended))
        for loss, fgsm in (("robustmask", attacks.get("fgsm")), ("Keras", keras_fgsm))
    }
    return table5, table5_keras, zero_gradients


def _epsilons(result: EvaluationResult) -> list[float]:
    return [float(e) for e in result.table["Epsilon"].iloc[1:]]
