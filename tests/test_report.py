"""attack_report and perturbation_norms against independent NumPy computations and hand counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

import robustmask
from robustmask.attacks import BIM, FGSM, attack_report
from robustmask.attacks.report import REPORT_COLUMNS, perturbation_norms
from robustmask.errors import AttackError

EPSILONS = [0.0, 0.05, 0.1]


def predict(model, x):
    return np.argmax(model.predict(x, verbose=0), axis=1)


@pytest.fixture(scope="module")
def noisy_labels(tiny_data):
    """True labels with the first 15 changed, so the model is 'wrong' on those 15."""
    y = tiny_data[1].copy()
    y[:15] = (y[:15] + 1) % 3
    return y


@pytest.fixture(scope="module")
def fgsm_report(tiny_model, tiny_data, noisy_labels):
    return attack_report(FGSM(), tiny_model, tiny_data[0], noisy_labels, eps=EPSILONS)


def test_columns_and_rows(fgsm_report, tiny_data):
    assert list(fgsm_report.columns) == list(REPORT_COLUMNS)
    assert list(fgsm_report["Epsilon"]) == EPSILONS
    assert fgsm_report["Queries"].isna().all()  # FGSM does not count queries
    assert (fgsm_report["Time (s)"] > 0).all()
    assert fgsm_report.attrs["attack"] == "FGSM" and fgsm_report.attrs["examples"] == len(tiny_data[0])


def test_norms_equal_numpy(fgsm_report, tiny_model, tiny_data, noisy_labels):
    x = tiny_data[0]
    for row, eps in zip(fgsm_report.itertuples(index=False), EPSILONS):
        delta = (FGSM()(tiny_model, x, noisy_labels, eps=eps).astype(np.float64) - x).reshape(len(x), -1)
        l0 = (delta != 0).sum(axis=1)
        l1 = np.abs(delta).sum(axis=1)
        l2 = np.linalg.norm(delta, axis=1)
        linf = np.abs(delta).max(axis=1)
        got = dict(zip(REPORT_COLUMNS, row))
        assert got["L0 (mean)"] == pytest.approx(l0.mean()) and got["L0 (max)"] == l0.max()
        assert got["L1 (mean)"] == pytest.approx(l1.mean()) and got["L1 (max)"] == pytest.approx(l1.max())
        assert got["L2 (mean)"] == pytest.approx(l2.mean()) and got["L2 (max)"] == pytest.approx(l2.max())
        assert got["Linf (mean)"] == pytest.approx(linf.mean()) and got["Linf (max)"] == pytest.approx(
            linf.max()
        )


def test_success_rate_equals_a_hand_count(fgsm_report, tiny_model, tiny_data, noisy_labels):
    x = tiny_data[0]
    right = predict(tiny_model, x) == noisy_labels
    assert 0 < right.sum() < len(x)  # the 15 changed labels are not counted
    assert fgsm_report.attrs["counted"] == right.sum()
    for rate, eps in zip(fgsm_report["Success rate (%)"], EPSILONS):
        adv = predict(tiny_model, FGSM()(tiny_model, x, noisy_labels, eps=eps))
        assert rate == pytest.approx(100.0 * np.mean(adv[right] != noisy_labels[right]))
    assert fgsm_report["Success rate (%)"].iloc[-1] > 50


def test_eps_zero_row_is_all_zero(fgsm_report):
    zero = fgsm_report.iloc[0]
    assert zero["Success rate (%)"] == 0
    for column in REPORT_COLUMNS[2:10]:
        assert zero[column] == 0


def test_without_labels_the_model_predictions_are_the_truth(tiny_model, tiny_data):
    x = tiny_data[0][:30]
    table = attack_report(FGSM(), tiny_model, x, eps=0.1)
    assert table.attrs["counted"] == 30
    assert table["Success rate (%)"].iloc[0] == pytest.approx(
        100 * np.mean(predict(tiny_model, FGSM()(tiny_model, x, eps=0.1)) != predict(tiny_model, x))
    )


def test_targeted_success_is_reaching_the_target(tiny_model, tiny_data):
    x = tiny_data[0][:45]
    targets = (tiny_data[1][:45] + 1) % 3
    table = attack_report(BIM(targeted=True), tiny_model, x, targets, eps=[0.0, 0.15])
    adv = predict(tiny_model, BIM(targeted=True)(tiny_model, x, targets, eps=0.15))
    assert list(table["Success rate (%)"]) == pytest.approx([0.0, 100 * np.mean(adv == targets)])
    with pytest.raises(AttackError, match="targeted"):
        attack_report(BIM(targeted=True), tiny_model, x, eps=0.1)


class Brighten(robustmask.GradientAttack):
    """Chooses its own perturbation (eps_bounded False) and counts its model queries."""

    eps_bounded = False

    def run(self, model, x, y, eps):
        return x + 0.01

    def __call__(self, model, x, y=None, eps=None):
        self.queries = 7
        return super().__call__(model, x, y, eps)


def test_attacks_that_choose_their_size_get_one_row_with_nan_epsilon(tiny_model, tiny_data):
    x, y = tiny_data[0][:20], tiny_data[1][:20]
    table = attack_report(Brighten(), tiny_model, x, y, eps=[0.1, 0.2])  # eps is ignored
    assert len(table) == 1 and math.isnan(table["Epsilon"].iloc[0])
    assert table["Queries"].iloc[0] == 7
    assert table["Linf (max)"].iloc[0] == pytest.approx(0.01, abs=1e-6)
    assert table["L0 (max)"].iloc[0] == np.sum(x.reshape(20, -1) < 1.0, axis=1).max()


def test_float64_images_do_not_count_rounding_as_perturbation(tiny_model, tiny_data):
    x = tiny_data[0][:10].astype(np.float64) + 1e-9  # not representable in float32
    table = attack_report(FGSM(), tiny_model, x, tiny_data[1][:10], eps=[0.0, 0.05])
    assert table["L0 (max)"].iloc[0] == 0 and table["L0 (mean)"].iloc[1] > 0


def test_perturbation_norms_by_hand():
    x = np.zeros((2, 2, 2, 3), np.float32)
    x_adv = x.copy()
    x_adv[0, 0, 0] = [0.3, 0.0, -0.4]  # one pixel, two values changed
    norms = perturbation_norms(x, x_adv)
    np.testing.assert_array_equal(norms["L0"], [2, 0])
    np.testing.assert_allclose(norms["L1"], [0.7, 0.0], rtol=1e-6)
    np.testing.assert_allclose(norms["L2"], [0.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(norms["Linf"], [0.4, 0.0], rtol=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        perturbation_norms(x, x_adv[:1])


def test_bad_calls(tiny_model, tiny_data):
    with pytest.raises(AttackError, match="needs eps"):
        attack_report(FGSM(), tiny_model, tiny_data[0][:4], tiny_data[1][:4])
    with pytest.raises(AttackError, match="robustmask Attack"):
        attack_report(tf.identity, tiny_model, tiny_data[0][:4], eps=0.1)
