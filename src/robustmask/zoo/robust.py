"""Defended models shipped with robustmask, each with its card, loaded offline in one line.

``robust_mobilenetv2()`` is the paper's architecture (MobileNetV2 at width 1.0, Sheikh & Zafar 2023,
Fig. 5) at 96 px, fine-tuned from the ImageNet base and adversarially trained with PGD (Madry et al.
2018, arXiv 1706.06083) on robustmask's synthetic faces by ``python benchmarks/robust_mobilenetv2.py
--ship``, which also wrote its card: the data, the recipe, the training time on 2 CPU cores, clean
accuracy and the worst case over AutoAttack's standard suite (Croce & Hein 2020) per eps, beside its
undefended twin, and what it has not been tested against.

Example::

    from robustmask.zoo import robust_mobilenetv2, model_card
    model = robust_mobilenetv2()                 # [0, 1] images, 96 x 96 x 3, 3 softmax outputs
    card = model_card("robust_mobilenetv2")      # dict; card["results"] holds the measured table
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustmask.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import numpy as np

__all__ = [
    "SHIPPED_MODELS",
    "WEIGHTS_DIR",
    "card_sample_faces",
    "model_card",
    "robust_mobilenetv2",
    "shipped_model_path",
]

#: Where the shipped model files and their cards live (package data).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: name -> file stem of each shipped model (``<stem>.keras`` and ``<stem>.json``).
SHIPPED_MODELS = {"robust_mobilenetv2": "robust_mobilenetv2_96"}


def _stem(name: str) -> str:
    if name not in SHIPPED_MODELS:
        raise ModelError(f"no shipped model called {name!r}; robustmask ships {sorted(SHIPPED_MODELS)}")
    return SHIPPED_MODELS[name]


def shipped_model_path(name: str = "robust_mobilenetv2") -> Path:
    """The ``.keras`` file of a shipped model (it may be missing in a source tree that never shipped one)."""
    return WEIGHTS_DIR / f"{_stem(name)}.keras"


def model_card(name: str = "robust_mobilenetv2") -> dict[str, Any]:
    """The card of a shipped model: data, recipe, training time, measured numbers, limits, retrain command."""
    path = WEIGHTS_DIR / f"{_stem(name)}.json"
    if not path.is_file():
        raise ModelError(
            f"the card {path} is missing; rebuild it with `python benchmarks/robust_mobilenetv2.py --ship`"
        )
    card: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return card


def card_sample_faces(card: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The test faces of the card's ``sample_check``: the first ones of its synthetic test set."""
    from robustmask.datasets import synthetic_face_masks

    call = card["data"]["test"]
    prefix = "synthetic_face_masks("
    if not call.startswith(prefix) or not call.endswith(")"):
        raise ModelError(f"the card's test data is not a synthetic_face_masks call: {call!r}")
    settings = {
        key: int(value) for key, value in (part.split("=") for part in call[len(prefix) : -1].split(", "))
    }
    x, y = synthetic_face_masks(
        n_per_class=settings["n_per_class"], image_size=settings["image_size"], seed=settings["seed"]
    )
    n = int(card["sample_check"]["images"])
    return x[:n], y[:n]


def robust_mobilenetv2(*, compile: bool = True) -> keras.Model:
    """The PGD-trained MobileNetV2 (alpha 1.0, 96 x 96 x 3, [0, 1] inputs, classes as the Kaggle set).

    Loads offline from the package (no download). Its card (`model_card`) gives the recipe and the
    numbers; it was tested on synthetic faces only, under digital L-inf attacks: not on real photos,
    not against physical (printed) perturbations, patches or other norms.

    Args:
        compile: compile with Adam and sparse categorical cross-entropy (ready for ``evaluate``/``fit``).

    Example::

        model = robustmask.zoo.robust_mobilenetv2()
        robustmask.Evaluator(robustmask.attacks.PGD(steps=20, seed=0), [8 / 255]).evaluate(model, (x, y))
    """
    import keras

    path = shipped_model_path("robust_mobilenetv2")
    if not path.is_file():
        raise ModelError(
            f"{path} is missing from this installation; rebuild it with "
            "`python benchmarks/robust_mobilenetv2.py --ship` or reinstall robustmask"
        )
    model = keras.models.load_model(path, compile=False)
    if compile:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
