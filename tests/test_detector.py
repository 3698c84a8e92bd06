"""The adversarial-input detector: rates on held-out data checked by an independent count, clearly
better than chance against the attack it was trained on, and evaded by the attack that knows it."""

from __future__ import annotations

import numpy as np
import pytest

from robustmask.attacks.fgsm import FGSM
from robustmask.attacks.pgd import PGD
from robustmask.defenses.detector import AdversarialDetector, DetectionRates, DetectorAwarePGD
from robustmask.errors import ModelError, RobustmaskError

EPS = 8 / 255


@pytest.fixture(scope="module")
def detector(face_model, face_data):
    (x, y), _ = face_data
    before = [w.copy() for w in face_model.get_weights()]
    detector = AdversarialDetector(PGD(steps=10), eps=EPS, epochs=50, learning_rate=3e-3, seed=0)
    detector_model, history = detector.fit(face_model, (x, y))
    assert detector_model is detector.model_ and len(history.history["loss"]) == 50
    assert all(np.array_equal(a, b) for a, b in zip(before, face_model.get_weights()))  # classifier untouched
    return detector


def independent_rates(detector, face_model, x_clean, x_adv, y):
    """The same rates counted by hand from the detector's logits and the classifier's outputs."""
    flag_clean = detector.model_.predict(x_clean, verbose=0)[:, 0] > 0.0  # sigmoid > 0.5 <=> logit > 0
    flag_adv = detector.model_.predict(x_adv, verbose=0)[:, 0] > 0.0
    wrong = np.argmax(face_model.predict(x_adv, verbose=0), axis=1) != y
    evaded = int((wrong & ~flag_adv).sum())
    return flag_adv.sum() / len(x_adv), flag_clean.sum() / len(x_clean), int(wrong.sum()), evaded


def test_rates_on_held_out_data_match_an_independent_count(detector, face_model, face_data):
    _, (x_test, y_test) = face_data
    x_adv = PGD(steps=10, seed=1)(face_model, x_test, y_test, eps=EPS)  # fresh examples of unseen images
    rates = detector.rates(x_test, x_adv, y_test)
    tpr, fpr, fooled, evaded = independent_rates(detector, face_model, x_test, x_adv, y_test)
    print(f"\nnon-adaptive PGD: {rates}")
    assert isinstance(rates, DetectionRates)
    assert rates.true_positive_rate == pytest.approx(tpr) and rates.false_positive_rate == pytest.approx(fpr)
    assert (rates.fooled, rates.fooled_undetected) == (fooled, evaded)
    assert rates.clean == rates.adversarial == len(x_test)
    assert rates.flagged_adversarial == round(tpr * len(x_test))
    np.testing.assert_array_equal(detector.detect(x_test), detector.score(x_test) > 0.5)
    assert rates.true_positive_rate >= rates.false_positive_rate + 0.25  # clearly better than chance
    assert rates.fooled >= 0.8 * len(x_test)  # PGD does fool the classifier
    assert rates.fooled_undetected <= 0.4 * len(x_test)


def test_the_attack_that_knows_the_detector_evades_it(detector, face_model, face_data):
    _, (x_test, y_test) = face_data
    naive = detector.rates(x_test, PGD(steps=10, seed=1)(face_model, x_test, y_test, eps=EPS), y_test)
    x_aware = DetectorAwarePGD(detector, steps=50, seed=1)(face_model, x_test, y_test, eps=EPS)
    assert np.abs(x_aware - x_test).max() <= EPS + 1e-6
    aware = detector.rates(x_test, x_aware, y_test)
    print(f"\ndetector-aware PGD: {aware}")
    tpr, _, fooled, evaded = independent_rates(detector, face_model, x_test, x_aware, y_test)
    assert aware.true_positive_rate == pytest.approx(tpr) and aware.fooled_undetected == evaded
    assert aware.true_positive_rate <= naive.true_positive_rate - 0.4
    assert aware.fooled_undetected >= naive.fooled_undetected + 0.4 * len(x_test)
    assert aware.fooled_undetected >= 0.75 * len(x_test)


def test_other_attacks_layers_and_bad_arguments(face_model, face_data):
    (x, y), _ = face_data
    detector = AdversarialDetector(
        FGSM(), eps=EPS, features=face_model.layers[4].name, epochs=2
    )  # the Flatten
    detector.fit(face_model, (x[:30], y[:30]))
    assert detector.score(x[:5]).shape == (5,)
    with pytest.raises(ModelError, match="no layer 'nope'"):
        AdversarialDetector(features="nope").fit(face_model, (x[:10], y[:10]))
    with pytest.raises(RobustmaskError, match="eps"):
        AdversarialDetector(eps=-1)
    with pytest.raises(RobustmaskError, match="epochs"):
        AdversarialDetector(epochs=0)
    with pytest.raises(RobustmaskError, match="threshold"):
        AdversarialDetector(threshold=1.5)
    with pytest.raises(RobustmaskError, match="untargeted"):
        AdversarialDetector(PGD(targeted=True))
    with pytest.raises(RobustmaskError, match="not trained"):
        AdversarialDetector().score(x[:2])
    with pytest.raises(RobustmaskError, match="fitted"):
        DetectorAwarePGD(AdversarialDetector())
    with pytest.raises(RobustmaskError, match=r"\(x, y\)"):
        AdversarialDetector().fit(face_model, None)
