"""The robust preset: the settings that make a face-mask model resist PGD on 2 CPU cores.

Measured on the embedded synthetic faces at 48 px with `robustmask.zoo.facemask_cnn` (numbers and
commands in docs/defences.md): PGD adversarial training at 8/255 for 30 epochs keeps clean accuracy
level with the undefended model and holds well above the targets under PGD-20 and Square; the
table predates AutoAttack's standard suite, against which the targets are to be judged again
(``python benchmarks/defences.py``).

Example::

    table, models = robust_comparison(*robust_data(), ["pgd-at"], suite=standard_suite())
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from robustmask import paper
from robustmask._deprecation import renamed_keywords, renamed_parameters, warn_renamed
from robustmask.defenses.base import Defense
from robustmask.defenses.registry import get
from robustmask.errors import RobustmaskError

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import numpy as np
    import pandas as pd
    import tensorflow as tf

    from robustmask.attacks.base import Attack

#: The budgets every defence is compared at: the paper's largest eps, then 2/255, 4/255, 8/255.
ROBUST_EPSILONS = (0.009, 2 / 255, 4 / 255, 8 / 255)
#: The training budget of the robust preset.
ROBUST_TRAIN_EPS = 8 / 255
#: The robust preset's test share of its data (`robust_data`).
ROBUST_TEST_SHARE = 0.12
#: The paper's Algorithm 2 epsilons.
PAPER_TRAIN_EPSILONS = paper.EPSILONS
DEFENSE_NAMES = ("multi-eps", "fast-at", "pgd-at", "trades")


def __getattr__(name: str) -> Any:
    """The deprecated module attributes: ``DEFENCE_NAMES`` is `DEFENSE_NAMES`."""
    if name == "DEFENCE_NAMES":
        warn_renamed("robustmask.defenses.presets.DEFENCE_NAMES", "robustmask.defenses.presets.DEFENSE_NAMES")
        return DEFENSE_NAMES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def robust_preset(
    name: str,
    *,
    epochs: int = 30,
    eps: float | Sequence[float] | None = None,
    batch_size: int = 64,
    seed: int = 0,
    **overrides: Any,
) -> Defense:
    """The defence `name` with the robust preset's settings (any setting can be overridden).

    "multi-eps" is the paper's Algorithm 2 (FGSM copies at its nine epsilons, or at `eps`, made
    against the model as it trains); "pgd-at", "fast-at" and "trades" train against `eps` (default
    8/255); any other registered name (e.g. "distillation") gets epochs, batch size and seed only.

    Example::

        defended, _ = robust_preset("pgd-at").fit(undefended, (x_train, y_train))
    """
    settings: dict[str, Any] = {"epochs": epochs, "batch_size": batch_size, "seed": seed}
    if name == "multi-eps":
        settings.update(eps=list(PAPER_TRAIN_EPSILONS), source="current", learning_rate=1e-3)
    elif name in ("pgd-at", "trades"):
        settings.update(eps=ROBUST_TRAIN_EPS, steps=7)
    elif name == "fast-at":
        settings.update(eps=ROBUST_TRAIN_EPS)
    if eps is not None:  # given for a defence without a budget, the registry refuses it by name
        if name == "multi-eps" and not isinstance(eps, Sequence):
            raise RobustmaskError(
                f"multi-eps trains at a list of epsilons (default: the paper's nine), not at one budget "
                f"eps={eps:g}: give a list (eps=[0.004, 0.009]; on the command line --param "
                "'eps=[0.004, 0.009]') or leave eps out"
            )
        settings.update(eps=eps)
    settings.update(renamed_keywords(overrides, {"epsilons": "eps"}, "robust_preset"))
    return get(name, **settings)


def robust_presets(names: Sequence[str] = DEFENSE_NAMES, **settings: Any) -> dict[str, Defense]:
    """name -> `robust_preset(name, **settings)` for each name."""
    return {name: robust_preset(name, **settings) for name in names}


def robust_data(
    data: str | None = None, *, image_size: int = 48, n_per_class: int = 500, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, x_test, y_train, y_test)`` for the robust preset: the Kaggle folder or synthetic faces, 88/12."""
    from robustmask.datasets.source import load_faces

    faces = load_faces(
        data, image_size=image_size, n_per_class=n_per_class, seed=seed, split=ROBUST_TEST_SHARE
    )
    return faces.x_train, faces.x_test, faces.y_train, faces.y_test


@renamed_parameters({"epsilons": "eps"})
def robust_comparison(
    x_train: np.ndarray | tf.data.Dataset,
    x_test: np.ndarray,
    y_train: np.ndarray | None,
    y_test: np.ndarray,
    names: Sequence[str] = ("pgd-at",),
    *,
    model: keras.Model | None = None,
    defenses: Mapping[str, Defense] | None = None,
    epochs: int = 30,
    seed: int = 0,
    attacks: Mapping[str, Attack] | None = None,
    suite: Mapping[str, Attack] | None = None,
    eps: float | Sequence[float] = ROBUST_EPSILONS,
    fit_kwargs: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = print,
    progress: bool = False,
) -> tuple[pd.DataFrame, dict[str, keras.Model]]:
    """Train the undefended model (unless `model` is given) and each named defence; compare them.

    `defenses` (name -> Defense) replaces the presets that `names` picks; `eps` are the budgets
    every model is attacked at (default: 0.009, 2/255, 4/255, 8/255; the old name ``epsilons`` still
    works and warns; the presets' training budget is their own); `attacks` run individually
    and `suite` as a cascade on every model, and the worst case covers both (`compare_defenses`).
    `progress`: bars on stderr (a terminal only) for each training and each model attacked.
    `x_train` may be a batched tf.data.Dataset of ``(images, labels)`` instead of images, with
    `y_train` None: a folder streamed from disk (`robustmask.datasets.stream_faces`) trains every
    model without its images in memory.

    Returns ``(table, models)`` as `compare_defenses`, the undefended row's training time filled in.

    Example::

        table, models = robust_comparison(*robust_data(), ["pgd-at", "trades"])
    """
    import time

    from robustmask.defenses.comparison import UNDEFENDED, compare_defenses

    started = time.perf_counter()
    if model is None:
        log(f"  training the undefended robustmask.zoo.facemask_cnn for {epochs} epochs")
        model = train_undefended(x_train, y_train, epochs=epochs, seed=seed, progress=progress)
    undefended_s = time.perf_counter() - started
    defenses = robust_presets(names, epochs=epochs, seed=seed) if defenses is None else defenses
    table, models = compare_defenses(
        model,
        x_train if y_train is None else (x_train, y_train),
        (x_test, y_test),
        defenses,
        eps,
        attacks=attacks,
        suite=suite,
        fit_kwargs={"verbose": 0, **(fit_kwargs or {})},
        log=log,
        progress=progress,
    )
    table.loc[table["Defense"] == UNDEFENDED, "Train time (s)"] = round(undefended_s, 1)
    return table, models


def train_undefended(
    x_train: np.ndarray | tf.data.Dataset,
    y_train: np.ndarray | None,
    *,
    epochs: int = 30,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
    num_classes: int | None = None,
    recalibrate: bool = False,
) -> keras.Model:
    """The undefended model: `facemask_cnn` trained from scratch on clean images (the one trainer of it).

    Args:
        x_train: [0, 1] images ``(N, H, W, 3)``, or a batched tf.data.Dataset of ``(images, labels)``
            (a folder streamed from disk: `robustmask.datasets.stream_faces`), rebatched to
            `batch_size` and shuffled every epoch within a window of four batches.
        y_train: their integer labels (None with a dataset).
        epochs: training epochs.
        batch_size: training batch size.
        seed: seeds Keras (initial weights, shuffling) just before the model is built.
        progress: a bar per epoch on stderr (a terminal only).
        num_classes: outputs of the model (default: the largest label + 1, or a stream's class count).
        recalibrate: then set every BatchNorm layer's statistics to the trained network's exact
            ones on `x_train` (`robustmask.zoo.recalibrate_batchnorm`) instead of the running
            averages training left; arrays only. ``robustmask universal`` does; the robust preset's
            measured numbers (docs/defences.md, the README's reproduce run) were taken without.

    Example::

        model = train_undefended(x_train, y_train, epochs=30, progress=True)
    """
    import warnings

    import keras

    from robustmask._progress import EpochProgress
    from robustmask.zoo import facemask_cnn, recalibrate_batchnorm

    keras.utils.set_random_seed(seed)
    callbacks = [EpochProgress(epochs, "training the undefended CNN")] if progress else []
    if y_train is None:
        shape, classes, data = _shuffled_batches(x_train, batch_size, seed, num_classes, recalibrate)
        model = facemask_cnn(shape, num_classes=classes)
        with warnings.catch_warnings():  # how Keras learns an unknown length: the first epoch runs out
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            model.fit(data, epochs=epochs, verbose=0, callbacks=callbacks, shuffle=False)
        return model
    classes = int(y_train.max()) + 1 if num_classes is None else num_classes
    model = facemask_cnn(x_train.shape[1:], num_classes=classes)
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=callbacks)
    if recalibrate:
        recalibrate_batchnorm(model, x_train)
    return model


def _shuffled_batches(
    dataset: Any, batch_size: int, seed: int, num_classes: int | None, recalibrate: bool
) -> tuple[tuple[int, ...], int, tf.data.Dataset]:
    """A training dataset's image shape, class count and batches for `train_undefended` (one line
    for what it cannot take: not a dataset, no class count, recalibration)."""
    from robustmask._batching import is_dataset
    from robustmask.datasets.source import shuffled_batches
    from robustmask.datasets.streaming import is_stream, stream_report

    if not is_dataset(dataset):
        raise RobustmaskError(
            "y_train is None: give x_train as a batched tf.data.Dataset of (images, labels)"
        )
    if recalibrate:
        raise RobustmaskError("recalibrate needs the training images as arrays, not a dataset")
    if num_classes is None and not is_stream(dataset):
        raise RobustmaskError("give num_classes with a dataset (a folder's stream knows its classes)")
    classes = num_classes or len(stream_report(dataset).class_names)
    shape = tuple(dataset.element_spec[0].shape[1:])
    return shape, classes, shuffled_batches(dataset, batch_size, seed=seed)
