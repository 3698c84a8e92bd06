"""AdversarialTrainer's settings that depend on others (ratio, labels) and the loss it compiles with."""

from __future__ import annotations

import keras
import pytest

from conftest import build_cnn
from robustmask.attacks import FGSM, PGD
from robustmask.defenses import AdversarialTrainer, TRADESTrainer
from robustmask.defenses._training_step import LabelAwareCrossEntropy, TRADESLoss
from robustmask.errors import RobustmaskError
from robustmask.modelinfo import inspect_model


@pytest.mark.parametrize("eps", [[0.01], [0.01, 0.02, 0.03]])
def test_ratio_none_gives_the_clean_image_and_each_copy_the_same_weight(eps):
    trainer = AdversarialTrainer(FGSM(), eps)
    n = len(eps)
    # n copies share `ratio` of the loss, the clean image has the rest: each weighs 1 / (n + 1).
    assert trainer.ratio / n == pytest.approx(1 - trainer.ratio) == pytest.approx(1 / (n + 1))
    assert AdversarialTrainer(FGSM(), eps, ratio=0.3).ratio == 0.3


def test_trades_takes_one_eps_and_one_copy_per_image():
    assert AdversarialTrainer(PGD(steps=2), 0.03, objective="trades").ratio == 0.5
    assert AdversarialTrainer(PGD(steps=2), 0.03, objective="trades", ratio=0.5).ratio == 0.5
    with pytest.raises(RobustmaskError, match="one epsilon and ratio None"):
        AdversarialTrainer(PGD(steps=2), [0.01, 0.02], objective="trades")
    with pytest.raises(RobustmaskError, match="one epsilon and ratio None"):
        AdversarialTrainer(PGD(steps=2), 0.03, objective="trades", ratio=0.3)
    with pytest.raises(RobustmaskError, match="objective"):
        AdversarialTrainer(PGD(steps=2), 0.03, objective="kl")


def test_labels_default_follows_the_objective_and_the_source():
    assert AdversarialTrainer(FGSM(), 0.01, objective="trades").labels == "soft"
    assert AdversarialTrainer(FGSM(), 0.01, source="original").labels == "true"
    assert AdversarialTrainer(FGSM(), 0.01, source="current").labels == "predicted"
    assert AdversarialTrainer(FGSM(), 0.01, source="original", labels="predicted").labels == "predicted"
    with pytest.raises(RobustmaskError, match="labels"):
        AdversarialTrainer(FGSM(), 0.01, labels="noisy")


def test_the_loss_follows_the_objective_then_the_loss_given_then_the_models(tiny_data):
    """`_loss` is what `fit` (and the feature cache) compile with."""
    model = build_cnn(3)
    info = inspect_model(model, None, tiny_data[0][:2])
    trades = TRADESTrainer(0.03, beta=2.5)._loss(model, info)
    assert isinstance(trades, TRADESLoss) and trades.beta == 2.5
    assert isinstance(AdversarialTrainer(FGSM(), 0.01)._loss(model, info), LabelAwareCrossEntropy)
    given = keras.losses.CategoricalCrossentropy()
    assert AdversarialTrainer(FGSM(), 0.01, loss=given)._loss(model, info) is given
    model.compile("adam", "sparse_categorical_crossentropy")
    assert AdversarialTrainer(FGSM(), 0.01)._loss(model, info) == "sparse_categorical_crossentropy"
