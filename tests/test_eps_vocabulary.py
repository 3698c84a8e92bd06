"""One vocabulary, the evaluation side: `Evaluator`, `robustness_table`, `RobustnessSpec`,
`compare_defenses`, `robust_comparison` and `plots.image_across_eps` take ``eps`` as attacks and
trainers do. ``epsilons=`` (and the ``.epsilons`` attributes) still work and warn; both at once is a
one-line error. The tables' column stays "Epsilon"."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pandas as pd
import pytest

from robustmask.attacks import FGSM
from robustmask.defenses.comparison import compare_defenses
from robustmask.defenses.presets import robust_comparison
from robustmask.evaluation import Evaluator, RobustnessSpec, robustness_table
from robustmask.evaluation.plots import image_across_eps

EPS = [0.03, 0.06]


def _no_warning(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return call()


def _old(call, where):
    """`call()` with the old keyword: exactly one DeprecationWarning, at this file, naming ``eps=``."""
    with pytest.warns(
        DeprecationWarning, match=rf"^{where}\(epsilons=\.\.\.\) is deprecated; use eps=\.\.\.$"
    ) as record:
        result = call()
    deprecations = [w for w in record if issubclass(w.category, DeprecationWarning)]
    assert len(deprecations) == 1 and deprecations[0].filename == __file__  # it points at the caller
    return result


def _both_is_one_line(call, where):
    with pytest.raises(TypeError, match=rf"^{where} got both 'epsilons' and 'eps'; give only 'eps'$") as info:
        call()
    assert "\n" not in str(info.value)


def _fgsm_accuracy(model, x, y, eps):
    """Accuracy (%) under FGSM at `eps`, computed without the evaluation code."""
    adversarial = FGSM()(model, x, y, eps=eps)
    return 100.0 * np.mean(np.argmax(model.predict(adversarial, verbose=0), 1) == y)


@pytest.fixture(scope="module")
def small(tiny_data):
    return tiny_data[0][:24], tiny_data[1][:24]


def test_the_signatures_say_eps():
    for function in (Evaluator, robustness_table, RobustnessSpec, compare_defenses, robust_comparison):
        parameters = inspect.signature(function).parameters
        assert "eps" in parameters and "epsilons" not in parameters, function
    assert list(inspect.signature(image_across_eps).parameters)[2] == "eps"


def test_evaluator_eps_and_epsilons_give_the_same_table_at_the_given_budgets(tiny_model, small):
    x, y = small
    new = _no_warning(lambda: Evaluator(FGSM(), eps=EPS, batch_size=len(x)))
    old = _old(lambda: Evaluator(FGSM(), epsilons=EPS, batch_size=len(x)), "Evaluator")
    assert new.eps == old.eps == [0.0, *EPS]
    table = new.evaluate(tiny_model, (x, y))
    pd.testing.assert_frame_equal(table, old.evaluate(tiny_model, (x, y)), check_exact=True)
    # The budgets given are the ones attacked at: the Epsilon column and an independent computation.
    assert table["Epsilon"].tolist() == [0.0, *EPS]
    expected = [_fgsm_accuracy(tiny_model, x, y, e) for e in EPS]
    np.testing.assert_allclose(table["Accuracy (%)"].iloc[1:], expected)
    assert expected[-1] < table["Accuracy (%)"].iloc[0]  # the attack moves this model
    # One float is one budget, positional still works without a warning.
    assert _no_warning(lambda: Evaluator(FGSM(), 0.03)).eps == [0.0, 0.03]
    with pytest.warns(DeprecationWarning, match=r"^Evaluator\.epsilons is deprecated; use Evaluator\.eps$"):
        assert new.epsilons == new.eps
    _both_is_one_line(lambda: Evaluator(FGSM(), epsilons=EPS, eps=EPS), "Evaluator")


def test_robustness_table_eps_and_epsilons_give_the_same_table(tiny_model, small):
    x, y = small
    new = _no_warning(lambda: robustness_table(tiny_model, (x, y), {"FGSM": FGSM()}, eps=EPS))
    old = _old(
        lambda: robustness_table(tiny_model, (x, y), {"FGSM": FGSM()}, epsilons=EPS), "robustness_table"
    )
    pd.testing.assert_frame_equal(new, old, check_exact=True)
    assert new["Epsilon"].tolist() == EPS
    np.testing.assert_allclose(new["FGSM (%)"], [_fgsm_accuracy(tiny_model, x, y, e) for e in EPS])
    _both_is_one_line(
        lambda: robustness_table(tiny_model, (x, y), {"FGSM": FGSM()}, epsilons=EPS, eps=EPS),
        "robustness_table",
    )


def test_robustness_spec_takes_eps_and_still_epsilons(tiny_model, small):
    attacks = {"FGSM": FGSM()}
    new = _no_warning(lambda: RobustnessSpec(attacks, eps=EPS, chunk_size=8))
    old = _old(lambda: RobustnessSpec(attacks, epsilons=EPS, chunk_size=8), "RobustnessSpec")
    assert new == old and new.eps == EPS
    assert _no_warning(lambda: RobustnessSpec(attacks, EPS)).eps == EPS  # positional
    with pytest.warns(
        DeprecationWarning, match=r"^RobustnessSpec\.epsilons is deprecated; use RobustnessSpec\.eps$"
    ):
        assert old.epsilons == EPS
    table = new.table(tiny_model, small)
    assert table["Epsilon"].tolist() == EPS
    pd.testing.assert_frame_equal(table, old.table(tiny_model, small), check_exact=True)
    _both_is_one_line(lambda: RobustnessSpec(attacks, epsilons=EPS, eps=EPS), "RobustnessSpec")


def _numbers(table):
    return table.drop(columns=["Train time (s)"])


def test_compare_defenses_and_robust_comparison_take_eps(tiny_model, small):
    x, y = small
    quiet = {"attacks": {"FGSM": FGSM()}, "log": lambda line: None}
    data = ((x, y), (x, y), {})  # no defence to train: the undefended model alone is attacked
    new, _ = _no_warning(lambda: compare_defenses(tiny_model, *data, eps=EPS, **quiet))
    old, _ = _old(lambda: compare_defenses(tiny_model, *data, epsilons=EPS, **quiet), "compare_defenses")
    pd.testing.assert_frame_equal(_numbers(new), _numbers(old), check_exact=True)
    assert new["Epsilon"].tolist() == EPS
    np.testing.assert_allclose(new["FGSM (%)"], [_fgsm_accuracy(tiny_model, x, y, e) for e in EPS])
    _both_is_one_line(
        lambda: compare_defenses(tiny_model, *data, epsilons=EPS, eps=EPS, **quiet), "compare_defenses"
    )

    arrays = (x, x, y, y)
    settings = {"model": tiny_model, "defenses": {}, **quiet}
    robust_new, _ = _no_warning(lambda: robust_comparison(*arrays, eps=EPS, **settings))
    robust_old, _ = _old(lambda: robust_comparison(*arrays, epsilons=EPS, **settings), "robust_comparison")
    pd.testing.assert_frame_equal(_numbers(robust_new), _numbers(new), check_exact=True)  # not its default
    pd.testing.assert_frame_equal(_numbers(robust_old), _numbers(new), check_exact=True)
    _both_is_one_line(
        lambda: robust_comparison(*arrays, epsilons=EPS, eps=EPS, **settings), "robust_comparison"
    )


def test_image_across_eps_takes_eps(small):
    x = small[0]
    frames, labels, confidences = x[1:3], ["a", "b"], [0.5, 0.9]
    new = _no_warning(
        lambda: image_across_eps(x[0], frames, eps=EPS, predictions=labels, confidences=confidences)
    )
    old = _old(
        lambda: image_across_eps(x[0], frames, epsilons=EPS, predictions=labels, confidences=confidences),
        "image_across_eps",
    )
    titles = [[ax.get_title() for ax in figure.axes] for figure in (new, old)]
    assert titles[0] == titles[1] == ["clean", "eps 0.03: a 50%", "eps 0.06: b 90%"]
    _both_is_one_line(
        lambda: image_across_eps(
            x[0], frames, eps=EPS, predictions=labels, confidences=confidences, epsilons=EPS
        ),
        "image_across_eps",
    )
