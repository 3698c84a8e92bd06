"""Named sanity checks (Carlini et al. 2019): each fires on an input built to trip it, with its evidence,
and none fires on an honest model and table."""

from __future__ import annotations

import copy
import json
import pickle
import warnings

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import robustmask
from robustmask.errors import RobustmaskError
from robustmask.attacks import BIM, FGM, FGSM, PGD
from robustmask.evaluation import named_norm, robustness_table
from robustmask.evaluation.sanity import (
    SanityWarning,
    attack_kind,
    check_below_chance,
    check_loss_unchanged,
    check_no_convergence,
    check_non_monotonic,
    evaluation_warnings,
    sanity_warnings,
)
from robustmask.evaluation.sanity_suite import (
    SUITE_GAP,
    check_gradient_free_stronger,
    check_iterative_weaker,
    check_suite_stronger,
    gradient_free_gains,
    suite_warnings,
)
from robustmask.evaluation.sanity_models import (
    ModelEvidence,
    check_probabilities_as_logits,
    check_saturated_loss,
    check_zero_gradients,
    gradient_shares,
    model_sanity_warnings,
    probability_rows,
    saturated_rows,
)

KINDS = {"FGSM": "single-step", "PGD": "iterative", "Square": "gradient-free"}


def suite_table(fgsm, pgd, square, eps=(0.0, 0.01, 0.03), examples=1000):
    table = pd.DataFrame(
        {"Epsilon": list(eps), "Clean (%)": 95.0, "FGSM (%)": fgsm, "PGD (%)": pgd, "Square (%)": square}
    )
    table["Worst case (%)"] = table[["FGSM (%)", "PGD (%)", "Square (%)"]].min(axis=1)
    table.attrs.update(protocol="individual", norm="L-inf", examples=examples, kinds=dict(KINDS))
    return table


def sweep(acc, loss=(0.1, 1.0, 2.0), eps=(0, 0.1, 0.2), **attrs):
    table = pd.DataFrame({"Epsilon": list(eps), "Accuracy (%)": list(acc), "Loss": list(loss)})
    table.attrs.update(attrs)
    return table


def checks(found):
    return {warning.check: warning for warning in found}


# ---------------------------------------------------------------------------- the warning itself
def test_a_sanity_warning_is_its_sentence():
    warning = SanityWarning("non-monotonic", "accuracy rose; do X", {"epsilon": 0.1})
    assert isinstance(warning, str) and warning == "non-monotonic: accuracy rose; do X"
    assert warning.check == "non-monotonic" and warning.evidence == {"epsilon": 0.1}
    for clone in (pickle.loads(pickle.dumps(warning)), copy.deepcopy(warning)):
        assert clone == warning and clone.check == warning.check and clone.evidence == warning.evidence
    assert json.loads(json.dumps([warning])) == [str(warning)]
    with pytest.warns(RuntimeWarning, match="non-monotonic: accuracy rose") as record:
        warnings.warn(warning, RuntimeWarning)
    assert record[0].message.args[0].check == "non-monotonic"


def test_attack_kinds():
    from robustmask.attacks.square import SquareAttack
    from robustmask.attacks.art.gradient import ARTFGSM, ARTPGD, ARTAutoPGD
    from robustmask.attacks.art.minimal import DeepFool

    assert [attack_kind(a) for a in (FGSM(), FGM(), ARTFGSM(), PGD(steps=1), BIM(steps=1))] == [
        "single-step"
    ] * 5
    assert [attack_kind(a) for a in (PGD(), BIM(), ARTAutoPGD(steps=10), ARTPGD())] == ["iterative"] * 4
    assert attack_kind(SquareAttack()) == "gradient-free" and attack_kind(DeepFool()) == "self-sized"


# ---------------------------------------------------------------------------- several attacks, same eps
def test_iterative_weaker_fires_when_fgsm_beats_pgd():
    table = suite_table(fgsm=[95.0, 40.0, 20.0], pgd=[95.0, 60.0, 21.0], square=[95.0, 80.0, 70.0])
    warning = check_iterative_weaker(table, KINDS)
    assert warning.check == "iterative-weaker" and warning.startswith(
        "iterative-weaker: iterative PGD leaves 60.00%"
    )
    assert warning.evidence == {
        "epsilon": 0.01,
        "iterative": "PGD",
        "iterative_accuracy": 60.0,
        "single_step": "FGSM",
        "single_step_accuracy": 40.0,
        "noise": pytest.approx(100 / np.sqrt(1000)),
        "examples": 1000,
    }
    # Within two standard errors (100 / sqrt(n) points: 3.2 at 1000 images) it is noise.
    assert check_iterative_weaker(suite_table([95.0, 40, 20], [95.0, 43, 21], [95.0, 80, 70]), KINDS) is None
    assert check_iterative_weaker(table, KINDS, examples=30) is not None  # 18.3-point noise
    assert check_iterative_weaker(table, KINDS, examples=25) is None  # 20-point noise


def test_gradient_free_stronger_fires_when_square_beats_every_gradient_attack():
    table = suite_table(fgsm=[95.0, 60.0, 50.0], pgd=[95.0, 50.0, 40.0], square=[95.0, 45.0, 10.0])
    warning = check_gradient_free_stronger(table, KINDS)
    assert (
        warning.check == "gradient-free-stronger" and "Square leaves 10.00% accuracy at eps 0.03" in warning
    )
    assert warning.evidence["epsilon"] == 0.03 and warning.evidence["best_gradient"] == "PGD"
    assert (warning.evidence["gradient_free_accuracy"], warning.evidence["best_gradient_accuracy"]) == (
        10.0,
        40.0,
    )
    # Square better than FGSM but not than PGD is no evidence of masking.
    assert (
        check_gradient_free_stronger(suite_table([95.0, 60, 50], [95.0, 20, 10], [95.0, 45, 30]), KINDS)
        is None
    )
    # Nothing to compare against: no gradient attack, or no gradient-free one.
    assert check_gradient_free_stronger(table, {"Square": "gradient-free"}) is None
    assert check_gradient_free_stronger(table, {"PGD": "iterative"}) is None


def test_gradient_free_gains_in_a_cascade():
    kinds = {"APGD-CE": "iterative", "APGD-DLR": "iterative", "Square": "gradient-free"}
    warning = gradient_free_gains(
        {"APGD-CE": 500, "APGD-DLR": 10, "Square": 60}, kinds, 1000, epsilon=8 / 255
    )
    assert warning.check == "gradient-free-stronger" and "Square fooled 60 of 1000 images (6.0%)" in warning
    assert warning.evidence["gain"] == 60 and warning.evidence["allowance"] == pytest.approx(20.0)
    assert warning.evidence["gradient_attacks_before"] == ["APGD-CE", "APGD-DLR"]
    # Within 2% of the images; or first in the cascade (no gradient attack to be stronger than).
    assert gradient_free_gains({"APGD-CE": 500, "Square": 20}, kinds, 1000) is None
    assert gradient_free_gains({"Square": 600, "APGD-CE": 0}, kinds, 1000) is None
    # On few images two standard errors of the gain dominate: 3 of 50 is within 2 * sqrt(3 * 0.94) = 3.4.
    assert gradient_free_gains({"APGD-CE": 10, "Square": 3}, kinds, 50) is None
    assert gradient_free_gains({"APGD-CE": 10, "Square": 8}, kinds, 50).evidence["gain"] == 8


def test_suite_warnings_read_the_table_attrs():
    table = named_norm(suite_table(fgsm=[95.0, 40.0, 20.0], pgd=[95.0, 60.0, 21.0], square=[95.0, 30.0, 2.0]))
    assert "Epsilon (L-inf)" in table.columns  # as the CLI hands it over
    found = checks(suite_warnings(table))
    assert set(found) == {"iterative-weaker", "gradient-free-stronger"}
    cascade = suite_table(fgsm=[95.0, 40.0, 20.0], pgd=[95.0, 35.0, 15.0], square=[95.0, 30.0, 2.0])
    cascade.attrs.update(
        protocol="cascade",
        gains={
            0.0: {"FGSM": 0, "PGD": 0, "Square": 0},
            0.01: {"FGSM": 550, "PGD": 50, "Square": 50},
            0.03: {"FGSM": 750, "PGD": 50, "Square": 130},
        },
    )
    (warning,) = suite_warnings(cascade)
    assert warning.check == "gradient-free-stronger" and warning.evidence["epsilon"] == 0.03
    assert warning.evidence["gain"] == 130


# ---------------------------------------------------------------------------- one attack's sweep
def test_non_monotonic():
    warning = check_non_monotonic(sweep([95.0, 40.0, 70.0], examples=1000, attack="FGSM"))
    assert (
        warning.check == "non-monotonic"
        and "accuracy rose from 40.00% to 70.00% as eps grew to 0.2" in warning
    )
    assert warning.evidence["epsilon"] == 0.2 and warning.evidence["lowest_before"] == 40.0
    assert warning.evidence["attack"] == "FGSM"
    assert check_non_monotonic(sweep([95.0, 40.0, 40.5], examples=1000)) is None  # noise


def test_non_monotonic_from_the_first_attacked_row_at_its_noise_bound():
    # A rise right after the clean row counts (50% clean, 70% at 0.1); the attack named "the attack".
    first = check_non_monotonic(sweep([50.0, 70.0, 60.0], examples=10_000))
    assert str(first) == (
        "non-monotonic: accuracy rose from 50.00% to 70.00% as eps grew to 0.1: a correct attack only gets "
        "stronger with eps, so the attack is not converging or the gradients are masked; evaluate with an "
        "iterative (PGD) and a gradient-free attack"
    )
    assert first.evidence == {
        "attack": "the attack",
        "epsilon": 0.1,
        "accuracy": 70.0,
        "lowest_before": 50.0,
        "noise": 1.0,
        "examples": 10_000,
    }
    # A second clean row is no attack: its accuracy may differ (70% and 50% at eps 0).
    assert check_non_monotonic(sweep([50.0, 70.0, 40.0], eps=(0, 0, 0.1), examples=1000)) is None
    # 10,000 images: the noise is exactly 1 point, and a rise of exactly 1 point is noise.
    assert check_non_monotonic(sweep([95.0, 40.0, 41.0], examples=10_000)) is None
    assert check_non_monotonic(sweep([95.0, 40.0, 41.5], examples=10_000)).evidence["noise"] == 1.0


def test_non_monotonic_reads_rows_of_one_eps_in_the_tables_order():
    # Two rows at eps 0.2 (two runs, say) given as 50% then 30%: read in that order accuracy only
    # falls. NumPy's default (unstable) sort swaps that pair in this table and would report a rise.
    table = sweep(
        [60.0, 55.0, 50.0, 30.0, 95.0, 95.0, 30.0, 30.0],
        loss=[0.1] * 8,
        eps=(0.1, 0.1, 0.2, 0.2, 0.0, 0.0, 0.2, 0.2),
        examples=1000,
    )
    assert check_non_monotonic(table) is None
    risen = table.copy()
    risen.loc[3, "Accuracy (%)"], risen.loc[2, "Accuracy (%)"] = 50.0, 30.0  # now 30% then 50%
    assert check_non_monotonic(risen).evidence["accuracy"] == 50.0


def test_no_convergence_beyond_chance_plus_ten_points_with_its_whole_message_and_evidence():
    # 10,000 images: two standard errors are 1 point, so the allowance is its floor of 10 points.
    at_bound = sweep([95.0, 60.0], loss=(0.1, 1.0), eps=(0, 0.3), examples=10_000)
    assert check_no_convergence(at_bound, 2) is None  # 50% chance + 10 points: not above it
    above = sweep([95.0, 60.5], loss=(0.1, 1.0), eps=(0, 0.3), examples=10_000, attack="PGD")
    warning = check_no_convergence(above, 2)
    assert str(warning) == (
        "no-convergence: accuracy is 60.50% at eps 0.3, far above chance (50%): an L-inf budget that large "
        "can turn any image into mid-grey, so an attack that converges should reach chance; PGD is too "
        "weak here or the gradients are masked: give it more steps and restarts and add a gradient-free attack"
    )
    assert warning.evidence == {
        "attack": "PGD",
        "epsilon": 0.3,
        "accuracy": 60.5,
        "chance": 50.0,
        "allowance": 10.0,
    }
    assert check_no_convergence(above, 2, attack="APGD").evidence["attack"] == "APGD"
    above.attrs.pop("attack")
    assert check_no_convergence(above, 2).evidence["attack"] == "the attack"


def test_no_convergence_at_a_large_linf_eps():
    stuck = sweep([95.0, 80.0, 75.0], eps=(0, 0.3, 0.5), examples=1000, norm="L-inf")
    warning = check_no_convergence(stuck, 3)
    assert warning.check == "no-convergence" and "far above chance (33%)" in warning
    assert warning.evidence["epsilon"] == 0.3 and warning.evidence["accuracy"] == 80.0
    assert check_no_convergence(sweep([95.0, 80.0, 40.0], eps=(0, 0.1, 0.3)), 3) is None  # near chance at 0.3
    stuck.attrs["norm"] = "L2"
    assert check_no_convergence(stuck, 3) is None  # an L2 eps of 0.5 is small


def test_loss_unchanged():
    warning = check_loss_unchanged(sweep([95.0, 95.0, 95.0], loss=(0.25, 0.25, 0.25), attack="FGSM"))
    assert warning.check == "loss-unchanged" and "FGSM did not change the loss" in warning
    assert warning.evidence["attacked_losses"] == [0.25, 0.25] and warning.evidence["max_epsilon"] == 0.2
    assert check_loss_unchanged(sweep([95.0, 90.0, 80.0])) is None


def test_loss_unchanged_within_a_millionth_of_the_clean_loss_with_its_whole_message_and_evidence():
    # The tolerance is 1e-6 of the clean loss, or 1e-6 below a loss of 1, and every attacked eps is
    # compared with the clean row's loss (the first), not with its neighbour.
    big = (1000.0, 1000.0009, 999.9991)
    warning = check_loss_unchanged(sweep([95.0] * 3, loss=big, eps=(0, 0.1, 0.3), attack="PGD"))
    assert warning.evidence == {
        "attack": "PGD",
        "clean_loss": 1000.0,
        "attacked_losses": [1000.0009, 999.9991],
        "max_epsilon": 0.3,
    }
    small = check_loss_unchanged(sweep([95.0] * 3, loss=(0.25, 0.2500009, 0.25), attack="FGSM"))
    assert str(small) == (
        "loss-unchanged: FGSM did not change the loss (0.25) at any eps up to 0.2: the gradients are zero "
        "or masked (a stop_gradient, a rounding or otherwise non-differentiable input transform); check "
        "with a gradient-free attack"
    )
    assert small.evidence["clean_loss"] == 0.25
    # Just beyond the tolerance at one eps: the attack moved the loss.
    assert check_loss_unchanged(sweep([95.0] * 3, loss=(1000.0, 1000.0, 1000.002))) is None
    assert check_loss_unchanged(sweep([95.0] * 3, loss=(0.25, 0.25, 0.2500015))) is None
    assert check_loss_unchanged(sweep([95.0] * 3, loss=(-1000.0, -1000.0005, -1000.0))) is not None
    # The tolerance scales with the clean loss, not an attacked one: 999.9991 would make it 9.999991e-4.
    assert check_loss_unchanged(sweep([95.0] * 3, loss=(1000.0, 999.9991, 1000.00099999955))) is not None
    # Exactly at it (a clean loss of 0, a change of 1e-6): still unchanged.
    assert check_loss_unchanged(sweep([95.0] * 3, loss=(0.0, 1e-6, 0.0))) is not None
    # No attacked eps, nothing to judge.
    assert check_loss_unchanged(sweep([95.0], loss=(0.25,), eps=(0,))) is None


def test_loss_unchanged_names_the_attack_given_else_the_tables_else_the_attack():
    flat = sweep([95.0] * 3, loss=(0.25, 0.25, 0.25), attack="Square")
    assert check_loss_unchanged(flat, attack="PGD").evidence["attack"] == "PGD"
    assert check_loss_unchanged(flat).evidence["attack"] == "Square"
    unnamed = check_loss_unchanged(sweep([95.0] * 3, loss=(0.25, 0.25, 0.25)))
    assert unnamed.evidence["attack"] == "the attack" and str(unnamed).startswith(
        "loss-unchanged: the attack did not change"
    )


class _Evidence:
    def warnings(self):
        return [SanityWarning("zero-gradients", "a model check", {})]


def test_evaluation_warnings_are_the_table_checks_then_the_models_when_there_is_evidence():
    table = sweep([95.0, 80.0, 90.0], loss=(0.3, 0.3, 0.3), eps=(0, 0.3, 0.5))
    assert evaluation_warnings(table, 3) == sanity_warnings(table, 3) != []
    assert evaluation_warnings(table, 3, _Evidence()) == [
        *sanity_warnings(table, 3),
        "zero-gradients: a model check",
    ]


def test_sanity_warnings_names_the_table_checks():
    found = sanity_warnings(
        sweep([95.0, 80.0, 90.0], loss=(0.3, 0.3, 0.3), eps=(0, 0.3, 0.5)), 3, examples=1000
    )
    assert [w.check for w in found] == ["non-monotonic", "loss-unchanged", "no-convergence"]
    assert all(isinstance(w, SanityWarning) and w.startswith(f"{w.check}: ") for w in found)


# ---------------------------------------------------------------------------- model and gradient checks
def test_gradient_shares_and_zero_gradients():
    gradient = np.zeros((4, 2, 2))
    gradient[1, 0, 0], gradient[2, 1, 1], gradient[3] = 1e-15, -1e-3, 1.0
    assert gradient_shares(gradient) == (25.0, 25.0)  # one exactly zero, one vanishing
    warning = check_zero_gradients(*gradient_shares(gradient), attack="PGD")
    assert (
        warning.check == "zero-gradients" and "25.0% of images have an exactly zero input gradient" in warning
    )
    assert warning.evidence["zero_share"] == 25.0 and warning.evidence["vanishing_share"] == 25.0
    assert check_zero_gradients(3.0, 1.0) is None


def test_zero_gradients_through_a_stop_gradient(tiny_data):
    x, y = tiny_data
    inputs = keras.Input((12, 12, 3))
    masked = keras.layers.Lambda(lambda t: tf.stop_gradient(t))(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(masked)))
    with pytest.warns(RuntimeWarning) as record:
        result = robustmask.Evaluator(FGSM(), [0.05]).evaluate(model, (x, y), details=True)
    assert [str(w.message) for w in record] == result.warnings  # each issued as a RuntimeWarning
    found = checks(result.warnings)
    assert found["zero-gradients"].startswith("zero-gradients: 100.0% of images have an exactly zero")
    assert {"zero-gradients", "loss-unchanged"} <= set(found)
    assert found["zero-gradients"].evidence["zero_share"] == result.zero_gradient_share == 100.0
    assert checks(model_sanity_warnings(PGD(), model, x, y))["zero-gradients"].evidence["zero_share"] == 100.0


@pytest.fixture(scope="module")
def saturated_model(tiny_model, tiny_data):
    """tiny_model with its logits scaled (a softmax at a tiny temperature) so every image saturates."""
    x, _ = tiny_data
    weights = tiny_model.get_weights()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Keras: a Sequential's inputs are a list
        features = keras.Model(tiny_model.inputs, tiny_model.layers[-2].output)(x).numpy()
    logits = features @ weights[-2] + weights[-1]
    top2 = np.sort(logits, axis=1)[:, -2:]
    scale = 30.0 / np.min(top2[:, 1] - top2[:, 0])  # every top-two gap >= 30: p_top > 1 - 1e-13
    model = keras.models.clone_model(tiny_model)
    model.set_weights(weights[:-2] + [weights[-2] * scale, weights[-1] * scale])
    assert saturated_rows(model.predict(x, verbose=0)).all()
    return model


def test_saturated_loss_with_the_keras_loss(saturated_model, tiny_data):
    x, y = tiny_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = robustmask.Evaluator(FGSM(loss="keras"), [0.05]).evaluate(
            saturated_model, (x, y), details=True
        )
    found = checks(result.warnings)
    assert found["saturated-loss"].evidence == {
        "attack": "FGSM",
        "saturated_share": 100.0,
        "keras_loss": True,
        "saturation": 1 - 1e-7,
        "threshold": 5.0,
    }
    assert "loss='keras'" in found["saturated-loss"]
    # Keras' clipped loss is flat on every saturated image: its gradients are exactly zero.
    assert found["zero-gradients"].evidence["zero_share"] == result.zero_gradient_share == 100.0


def test_saturated_loss_whatever_the_loss(saturated_model, tiny_data):
    x, y = tiny_data
    warning = checks(model_sanity_warnings(FGSM(), saturated_model, x, y))["saturated-loss"]
    assert warning.evidence["keras_loss"] is False and warning.evidence["saturated_share"] == 100.0
    assert warning.evidence["threshold"] == 25.0 and "is not clipped and still works" in warning
    assert check_saturated_loss(20.0, keras_loss=False) is None and check_saturated_loss(6.0, keras_loss=True)


def test_probabilities_taken_for_logits(tiny_model, tiny_data):
    x, y = tiny_data
    with pytest.warns(RuntimeWarning, match="probabilities-as-logits"):
        result = robustmask.Evaluator(FGSM(from_logits=True), [0.02]).evaluate(
            tiny_model, (x, y), details=True
        )
    warning = checks(result.warnings)["probabilities-as-logits"]
    assert warning.evidence["rows"] == warning.evidence["probability_rows"] == len(x)
    assert probability_rows(np.array([[0.2, 0.8], [0.5, 0.5001], [-0.1, 1.1]])).tolist() == [
        True,
        True,
        False,
    ]
    assert check_probabilities_as_logits(119, 120) is None  # one row is not probabilities: logits
    assert check_probabilities_as_logits(120, 120, output="probabilities") is None


# ---------------------------------------------------------------------------- honest: nothing fires
def test_an_honest_evaluation_trips_no_check(tiny_model, tiny_logits_model, tiny_data):
    x, y = tiny_data
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # any sanity warning fails the test
        for attack in (FGSM(), PGD(steps=5, seed=0)):
            result = robustmask.Evaluator(attack, [0.01, 0.03, 0.1]).evaluate(
                tiny_model, (x, y), details=True
            )
            assert result.warnings == [] and result.zero_gradient_share == 0.0
        assert (
            robustmask.Evaluator(FGSM(), [0.01, 0.1])
            .evaluate(tiny_logits_model, (x, y), details=True)
            .warnings
            == []
        )
    assert (
        model_sanity_warnings(FGSM(loss="keras"), tiny_model, x, y) == []
    )  # not saturated: the paper's loss is fine
    from robustmask.attacks.square import SquareAttack

    suite = {"FGSM": FGSM(), "PGD": PGD(steps=5, seed=0), "Square": SquareAttack(steps=30)}
    table = robustness_table(tiny_model, (x, y), suite, [0.01, 0.03, 0.1])
    assert table.attrs["kinds"] == {name: attack_kind(attack) for name, attack in suite.items()} == KINDS
    assert suite_warnings(table, num_classes=3) == []
    cascade = robustness_table(
        tiny_model, (x, y), {"PGD": suite["PGD"], "Square": suite["Square"]}, [0.03, 0.1], protocol="cascade"
    )
    assert suite_warnings(cascade, num_classes=3) == []
    evidence = ModelEvidence()
    assert evidence.warnings() == [] and evidence.zero_share is None  # nothing gathered, nothing to say


# ---------------------------------------------------------------------------- suite-stronger
def mixed_table(pgd, apgd_ce, apgd_dlr, eps=(0.009, 8 / 255), examples=180):
    """FGSM and PGD run individually, then APGD-CE and APGD-DLR as a cascade (cumulative columns)."""
    table = pd.DataFrame(
        {"Epsilon": list(eps), "Clean (%)": 87.2, "FGSM (%)": 80.0, "PGD (%)": pgd}
        | {"APGD-CE (%)": apgd_ce, "APGD-DLR (%)": apgd_dlr}
    )
    table["Worst case (%)"] = table[["FGSM (%)", "PGD (%)", "APGD-DLR (%)"]].min(axis=1)
    table.attrs.update(
        protocol="mixed",
        examples=examples,
        kinds={"FGSM": "single-step", "PGD": "iterative", "APGD-CE": "iterative", "APGD-DLR": "iterative"},
        protocols={"FGSM": "individual", "PGD": "individual", "APGD-CE": "cascade", "APGD-DLR": "cascade"},
        attacks={"FGSM": "FGSM", "PGD": "PGD-20 (3 restarts)", "APGD-CE": "APGD-CE (100 iterations)"}
        | {"APGD-DLR": "APGD-DLR (100 iterations)"},
        gains={},
    )
    return table


def test_suite_stronger_fires_when_pgd_is_well_above_apgd():
    # the numbers: PGD-20 leaves 57.1% at 8/255, APGD-CE 46.8%
    table = mixed_table(pgd=[84.4, 57.1], apgd_ce=[84.0, 46.8], apgd_dlr=[84.0, 46.8])
    warning = check_suite_stronger(
        table, table.attrs["kinds"], table.attrs["protocols"], descriptions=table.attrs["attacks"]
    )
    assert warning.check == "suite-stronger"
    assert str(warning).startswith(
        "suite-stronger: PGD-20 overestimates robustness: APGD-CE is 10.3 points lower at eps 8/255 "
        "(46.8% against 57.1%)"
    )
    assert warning.evidence["stronger"] == ["APGD-CE"] and warning.evidence["gap"] == pytest.approx(10.3)
    assert json.loads(json.dumps(warning.evidence))["epsilon"] == pytest.approx(8 / 255)
    assert [w.check for w in suite_warnings(table)] == ["suite-stronger"]  # and nothing else fires
    # APGD-CE alone within the allowance, the cascade beyond it: both attacks are named
    both = mixed_table(pgd=[84.4, 57.1], apgd_ce=[84.0, 54.0], apgd_dlr=[84.0, 50.0])
    assert "APGD-CE then APGD-DLR are 7.1 points lower" in str(suite_warnings(both)[0])


def test_suite_stronger_stays_silent_within_the_allowance_or_without_a_suite():
    close = mixed_table(pgd=[84.4, 57.1], apgd_ce=[84.0, 57.1 - SUITE_GAP], apgd_dlr=[84.0, 57.1 - SUITE_GAP])
    assert suite_warnings(close) == []
    # a stronger PGD than the suite is no warning either (the suite's own checks are elsewhere)
    assert suite_warnings(mixed_table(pgd=[80.0, 40.0], apgd_ce=[84.0, 50.0], apgd_dlr=[84.0, 48.0])) == []
    individual_only = suite_table([80.0, 50.0, 30.0], [80.0, 40.0, 20.0], [80.0, 45.0, 25.0])
    assert check_suite_stronger(individual_only, KINDS, dict.fromkeys(KINDS, "individual")) is None
    # one image of 10 is 10 points: a lead of one image is within the allowance
    tiny = mixed_table(pgd=[80.0, 50.0], apgd_ce=[80.0, 40.0], apgd_dlr=[80.0, 40.0], examples=10)
    assert suite_warnings(tiny) == []


# ---------------------------------------------------------------------------------------------- below chance
def test_below_chance_means_beyond_two_standard_errors_below_100_over_classes():
    # 2 classes, 100 images: chance 50%, noise 2 * 100 * sqrt(0.25 / 100) = 10 points: warned below 40.
    assert check_below_chance(40.0, 2, 100) is None and check_below_chance(45.0, 2, 100) is None
    assert check_below_chance(55.0, 2, 100) is None
    warning = check_below_chance(39.9, 2, 100, model="mobilenetv2")
    assert str(warning) == (
        "below-chance: mobilenetv2's clean accuracy is 39.90%, below chance (50% for 2 classes): "
        "the labels or the class names are probably in another order than the model's outputs; "
        "pass --class-names (class_names=) in the model's label order"
    )
    assert warning.evidence == {
        "accuracy": 39.9,
        "chance": 50.0,
        "noise": 10.0,
        "examples": 100,
        "model": "mobilenetv2",
    }
    # Many images: the noise floor of 1 point; no count: the floor too. No model: "the".
    assert check_below_chance(48.9, 2, 1_000_000).evidence["noise"] == 1.0
    assert str(check_below_chance(20.0, 3)).startswith(
        "below-chance: the clean accuracy is 20.00%, below chance (33% for 3 classes)"
    )


@pytest.mark.parametrize(
    "epsilons, accuracies, warned",
    [
        ([0.1, 0.0], [90.0, 10.0], True),  # the clean row is found wherever it is
        ([0.0, 0.1], [90.0, 10.0], False),
        ([0.1, 0.2], [10.0, 5.0], False),  # no clean row: nothing to judge, no error
    ],
)
def test_sanity_warnings_judge_chance_on_the_clean_row(epsilons, accuracies, warned):
    table = pd.DataFrame({"Epsilon": epsilons, "Accuracy (%)": accuracies, "Loss": [1.0, 2.0]})
    table.attrs["norm"] = "L2"
    for given in (table, named_norm(table)):  # "Epsilon (L2)" is the eps column too
        codes = [str(w).split(":")[0] for w in sanity_warnings(given, 2, 100)]
        assert ("below-chance" in codes) is warned


def test_a_table_without_an_epsilon_column_is_refused_by_name():
    for name in ("epsilon", "Epsilons", "EPSILON", "eps"):
        table = pd.DataFrame({name: [0.0, 0.1], "Accuracy (%)": [90.0, 10.0], "Loss": [1.0, 2.0]})
        expected = (
            "a robustness table needs an Epsilon column (one row per eps); this one has "
            f"['{name}', 'Accuracy (%)', 'Loss']"
        )
        for check in (check_non_monotonic, check_loss_unchanged, lambda t: sanity_warnings(t, 2, 100)):
            with pytest.raises(RobustmaskError) as caught:
                check(table)
            assert str(caught.value) == expected


@pytest.mark.parametrize(
    "code, classes, epsilons, accuracies, examples",
    [
        ("non-monotonic", 3, [0.0, 0.1, 0.2], [90.0, 50.0, 55.0], 100),  # a 5-point rise; noise 10 points
        ("no-convergence", 3, [0.0, 0.3], [90.0, 50.0], 25),  # 50% at 0.3, chance 33%; noise 20 points
        ("below-chance", 2, [0.0, 0.1], [45.0, 40.0], 100),  # 45% against chance 50%; noise 10 points
    ],
)
def test_the_noise_allowance_follows_the_number_of_images(code, classes, epsilons, accuracies, examples):
    table = pd.DataFrame(
        {"Epsilon": epsilons, "Accuracy (%)": accuracies, "Loss": np.arange(len(epsilons)) + 1.0}
    )

    def codes(*count):
        return [str(w).split(":")[0] for w in sanity_warnings(table, classes, *count)]

    assert code not in codes(examples)  # within the noise of that many images
    assert code in codes()  # no count: the 1-point floor
    table.attrs["examples"] = examples
    assert code not in codes()  # the count read from the table
