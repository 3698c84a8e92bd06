"""The worst case over several attacks: per image, against an independent count."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

from robustmask.attacks import FGSM, PGD, ARTAutoPGD, ARTSquareAttack, AutoPGD, SquareAttack
from robustmask.errors import RobustmaskError
from robustmask.evaluation import robustness_table, standard_attacks, standard_suite
from robustmask.evaluation.worst_case import predicted_classes


def test_predicted_classes_equal_keras_predict_in_any_batch_size(tiny_model, tiny_data):
    x, _ = tiny_data
    expected = np.argmax(tiny_model.predict(x, verbose=0), axis=1)
    for batch_size in (1, 7, len(x), 10 * len(x)):
        np.testing.assert_array_equal(predicted_classes(tiny_model, x, batch_size=batch_size), expected)
    assert predicted_classes(tiny_model, x[:0]).shape == (0,)


def test_table_equals_an_independent_per_image_count(tiny_model, tiny_data):
    x, y = tiny_data
    attacks = {"FGSM": FGSM(), "PGD": PGD(steps=5, seed=0)}
    epsilons = [0.02, 0.1]
    table = robustness_table(tiny_model, (x, y), attacks, epsilons)

    def correct(images):
        return np.argmax(tiny_model.predict(images, verbose=0), axis=1) == y

    clean = correct(x)
    assert list(table.columns) == ["Epsilon", "Clean (%)", "FGSM (%)", "PGD (%)", "Worst case (%)"]
    worst = []
    for row, eps in zip(table.itertuples(index=False), epsilons):
        # each attack on every image; an image wrong when clean counts as wrong under every attack
        fgsm = clean & correct(FGSM()(tiny_model, x, y, eps=eps))
        pgd = clean & correct(PGD(steps=5, seed=0)(tiny_model, x, y, eps=eps))
        assert row[1] == pytest.approx(100 * clean.mean())
        assert row[2] == pytest.approx(100 * fgsm.mean())
        # PGD's random start draws per call: on all images vs the clean ones the draws differ, so
        # PGD's share is compared within one image of the independent count
        assert abs(row[3] - 100 * pgd.mean()) <= 100 / len(y) + 1e-9
        assert row[4] <= min(row[2], row[3]) + 1e-9
        # the worst case: per image, correct under both attacks (within PGD's one image)
        assert abs(row[4] - 100 * (fgsm & pgd).mean()) <= 100 / len(y) + 1e-9
        worst.append(100 * (fgsm & pgd).mean())
    # the suite did work: at the larger eps FGSM takes most of the clean accuracy
    assert table["FGSM (%)"].iloc[-1] < table["Clean (%)"].iloc[-1] - 20
    assert worst[0] > 100 / len(y) + 1e-9  # some images resist both at the small eps: a zero worst case fails


def test_worst_case_is_per_image_not_the_smaller_column(tiny_model, tiny_data):
    """Two attacks that each fool a different third of the images: each column about 67%, the worst
    case about 33%: above 0 and below both columns, counted per image independently of the table."""
    from robustmask.attacks.base import Attack

    x, y = tiny_data
    assert (
        predicted_classes(tiny_model, x) == y
    ).all()  # every image correct when clean: the thirds are exact
    # for each image, one the model gives another class: its 'adversarial' replacement
    other = np.array([np.flatnonzero(y != label)[0] for label in y])

    class Replace(Attack):
        """Replaces the images at positions i % 3 == third (found by content) with an image of another
        class, whatever subset of `x` it is given."""

        eps_bounded = True

        def __init__(self, third):
            super().__init__()
            self.third = third

        def generate(
            self, model, x, y, epsilons
        ):  # never reached: __call__ below bypasses the eps projection
            raise AssertionError("not used")

        def __call__(self, model, images, labels=None, eps=None):
            out = images.copy()
            for j, image in enumerate(images):
                i = int(np.flatnonzero((x == image).reshape(len(x), -1).all(axis=1))[0])
                if i % 3 == self.third:
                    out[j] = x[other[i]]
            return out

    attacks = {"first": Replace(0), "second": Replace(1)}
    table = robustness_table(tiny_model, (x, y), attacks, [0.01])
    # independently: per image, correct when clean and under every attack's output
    correct = {
        name: predicted_classes(tiny_model, a(tiny_model, x, y, eps=0.01)) == y for name, a in attacks.items()
    }
    robust = (predicted_classes(tiny_model, x) == y) & correct["first"] & correct["second"]
    n = len(y)
    np.testing.assert_array_equal(robust, np.arange(n) % 3 == 2)
    assert table["first (%)"].iloc[0] == pytest.approx(100 * correct["first"].mean())
    assert table["second (%)"].iloc[0] == pytest.approx(100 * correct["second"].mean())
    worst = table["Worst case (%)"].iloc[0]
    assert worst == pytest.approx(100 * robust.mean()) and worst == pytest.approx(100 * (n // 3) / n)
    assert 0 < worst < min(table["first (%)"].iloc[0], table["second (%)"].iloc[0]) - 20  # not min(columns)
    assert table.attrs["robust"][0.01] == tuple(robust.tolist())


def test_bad_suites_are_one_line_errors(tiny_model, tiny_data):
    from robustmask.attacks.art.minimal import DeepFool

    empty = "attacks is empty: give at least one, e.g. {'PGD': robustmask.attacks.PGD(seed=0)}"
    with pytest.raises(RobustmaskError, match=f"^{re.escape(empty)}$"):
        robustness_table(tiny_model, tiny_data, {}, [0.01])
    with pytest.raises(RobustmaskError, match="'DeepFool' must be an eps-bounded"):
        robustness_table(tiny_model, tiny_data, {"DeepFool": DeepFool()}, [0.01])


def test_standard_attacks_are_fgsm_pgd_with_restarts_and_square():
    suite = standard_attacks(pgd_steps=7, pgd_restarts=2, square_queries=50, seed=3)
    assert list(suite) == ["FGSM", "PGD", "Square"]
    assert (suite["PGD"].steps, suite["PGD"].restarts) == (7, 2)
    assert isinstance(suite["Square"], SquareAttack)  # the native one, seeded as PGD is
    assert (suite["Square"].steps, suite["Square"].seed, suite["Square"].needs_gradients) == (50, 3, False)


# ---------------------------------------------------------------------------------------------- the cascade
class Counting:
    """Wraps an attack and records how many images each call receives."""

    def __init__(self, attack):
        self.attack, self.sizes = attack, []

    def wrap(self):
        outer = self

        class Wrapped(type(self.attack)):
            def __call__(self, model, x, y=None, eps=None):
                outer.sizes.append(len(x))
                return outer.attack(model, x, y, eps=eps)

        wrapped = Wrapped.__new__(Wrapped)
        wrapped.__dict__.update(self.attack.__dict__)
        return wrapped


def test_the_cascade_attacks_only_what_is_still_robust_and_matches_the_individual_worst_case(
    tiny_model, tiny_data
):
    from robustmask.attacks import BIM

    x, y = tiny_data
    epsilons = [0.05, 0.1]
    fgsm, bim = Counting(FGSM()), Counting(BIM(steps=5))  # deterministic: per image, whatever the batch
    cascade = robustness_table(
        tiny_model, (x, y), {"FGSM": fgsm.wrap(), "BIM": bim.wrap()}, epsilons, protocol="cascade"
    )
    individual = robustness_table(tiny_model, (x, y), {"FGSM": FGSM(), "BIM": BIM(steps=5)}, epsilons)
    correct = lambda images: np.argmax(tiny_model.predict(images, verbose=0), axis=1) == y  # noqa: E731
    clean = correct(x)
    for i, eps in enumerate(epsilons):
        survives_fgsm = clean & correct(FGSM()(tiny_model, x, y, eps=eps))
        survives_both = survives_fgsm & correct(BIM(steps=5)(tiny_model, x, y, eps=eps))
        # FGSM saw every clean-correct image, BIM only those FGSM left robust
        assert fgsm.sizes[i] == clean.sum() and bim.sizes[i] == survives_fgsm.sum()
        assert cascade["FGSM (%)"].iloc[i] == pytest.approx(100 * survives_fgsm.mean())
        assert cascade["BIM (%)"].iloc[i] == pytest.approx(100 * survives_both.mean())  # after both
        assert cascade["Worst case (%)"].iloc[i] == pytest.approx(individual["Worst case (%)"].iloc[i])
        gains = cascade.attrs["gains"][eps]
        assert gains == {
            "FGSM": int(clean.sum() - survives_fgsm.sum()),
            "BIM": int(survives_fgsm.sum() - survives_both.sum()),
        }
    assert bim.sizes[-1] < fgsm.sizes[-1], "the cascade must save work: BIM ran on fewer images"
    assert cascade.attrs["protocol"] == "cascade" and cascade.attrs["norm"] == "L-inf"
    assert cascade.attrs["kinds"] == {"FGSM": "single-step", "BIM": "iterative"}


def test_a_suite_that_mixes_norms_or_protocols_is_refused(tiny_model, tiny_data):
    with pytest.raises(
        RobustmaskError, match=r"^the attacks mix norms \(L-inf, L2\): one eps cannot bound them all$"
    ):
        robustness_table(tiny_model, tiny_data, {"Linf": FGSM(), "L2": FGSM(norm=2)}, [0.1])
    with pytest.raises(RobustmaskError, match="protocol must be one of"):
        robustness_table(tiny_model, tiny_data, {"FGSM": FGSM()}, [0.1], protocol="autoattack")


@pytest.mark.parametrize(
    "norm,classes,names",
    [
        ("inf", 3, ["APGD-CE", "APGD-DLR", "Square"]),
        ("inf", 2, ["APGD-CE", "Square"]),  # DLR needs a third class
        (2, 3, ["APGD-CE", "APGD-DLR", "Square"]),
        (1, 3, ["APGD-CE", "APGD-DLR"]),  # Square has no L1 form
    ],
)
def test_the_standard_suite_is_autoattacks(norm, classes, names):
    from robustmask.attacks.norms import get

    suite = standard_suite(norm=norm, num_classes=classes, apgd_iter=7, square_queries=30)
    assert list(suite) == names
    assert all(attack.norm == get(norm) for attack in suite.values())
    native = get(norm).name == "inf"  # native attacks in L-inf, ART's in L2 and L1
    apgd = suite["APGD-CE"]
    assert isinstance(apgd, AutoPGD if native else ARTAutoPGD) and apgd.loss_type == "ce"
    assert (apgd.steps if native else apgd.art_params["max_iter"]) == 7
    if native:  # seeded, as AutoAttack seeds its attacks: a shard gets the whole set's results
        assert all(attack.seed == 0 for attack in suite.values())
    if "Square" in suite:
        square = suite["Square"]
        assert isinstance(square, SquareAttack if native else ARTSquareAttack)
        assert (
            square.steps if native else square.art_params["max_iter"]
        ) == 30 and not square.needs_gradients


def test_the_standard_suite_runs_in_cascade_on_a_small_model(tiny_model, tiny_data):
    x, y = tiny_data[0][:30], tiny_data[1][:30]
    suite = standard_suite(apgd_iter=10, square_queries=50)
    table = robustness_table(tiny_model, (x, y), suite, [0.1], protocol="cascade")
    row = table.iloc[0]
    assert row["APGD-CE (%)"] >= row["APGD-DLR (%)"] >= row["Square (%)"] == row["Worst case (%)"]
    assert row["Worst case (%)"] < row["Clean (%)"] - 30  # eps 0.1 breaks the tiny model


# ---------------------------------------------------------------------------------------------- several sets
def fooling(x, fooled, other):
    """An eps-bounded stub attack that replaces the images of `x` at the `fooled` positions (found by
    content, whatever subset it is given) with an image of another class, `x[other[i]]`."""
    from robustmask.attacks.base import Attack

    class Fool(Attack):
        eps_bounded = True

        def generate(self, model, x, y, epsilons):  # never reached: __call__ below is the attack
            raise AssertionError("not used")

        def __call__(self, model, images, labels=None, eps=None):
            out = images.copy()
            for j, image in enumerate(images):
                i = int(np.flatnonzero((x == image).reshape(len(x), -1).all(axis=1))[0])
                if i in fooled:
                    out[j] = x[other[i]]
            return out

    return Fool()


def test_two_attack_sets_give_one_worst_case_per_image_not_the_smaller_column(tiny_model, tiny_data):
    """Set A (individual) fools images 0 and 1, set B (a cascade) fools image 2: each column leaves
    more than n - 3 images robust, the one worst case leaves exactly n - 3."""
    from robustmask.evaluation import AttackSet
    from robustmask.evaluation.worst_case import merge_worst_case

    x, y = tiny_data[0][:12], tiny_data[1][:12]
    assert (predicted_classes(tiny_model, x) == y).all()
    other = np.array([np.flatnonzero(y != label)[0] for label in y])
    a, b = fooling(x, {0, 1}, other), fooling(x, {2}, other)
    sets = [AttackSet({"A": a}), AttackSet({"B": b}, "cascade", label="suite")]
    table = robustness_table(tiny_model, (x, y), sets, [0.01, 0.02])
    n = len(y)
    assert list(table.columns) == ["Epsilon", "Clean (%)", "A (%)", "B (%)", "Worst case (%)"]
    assert table["A (%)"].tolist() == pytest.approx([100 * (n - 2) / n] * 2)
    assert table["B (%)"].tolist() == pytest.approx([100 * (n - 1) / n] * 2)
    assert table["Worst case (%)"].tolist() == pytest.approx([100 * (n - 3) / n] * 2)  # not min(A, B)
    mask = table.attrs["robust"][0.01]
    assert mask == tuple(i not in (0, 1, 2) for i in range(n))
    assert table.attrs["protocols"] == {"A": "individual", "B": "cascade"}
    assert table.attrs["protocol"] == "mixed" and table.attrs["gains"][0.01] == {"B": 1}
    # Measured apart and merged: the same table, the same exact worst case.
    apart = [
        robustness_table(tiny_model, (x, y), {"A": a}, [0.01, 0.02]),
        robustness_table(tiny_model, (x, y), {"B": b}, [0.01, 0.02], protocol="cascade"),
    ]
    merged = merge_worst_case(apart)
    assert merged.equals(table) and merged.attrs["robust"] == table.attrs["robust"]
    assert merged.attrs["norm"] == apart[0].attrs["norm"] and merged.attrs["examples"] == n
    for key in ("protocols", "kinds", "attacks", "seconds"):  # each attack's, from its own table
        assert merged.attrs[key] == {**apart[0].attrs[key], **apart[1].attrs[key]}, key
        assert set(merged.attrs[key]) == {"A", "B"}
    # Tables that cannot be of the same images, epsilons, model or norm are refused.
    more_eps = robustness_table(tiny_model, (x, y), {"B": b}, [0.01, 0.02, 0.03])  # same images, 3 rows
    other_eps = robustness_table(tiny_model, (x, y), {"B": b}, [0.01, 0.03])
    for other in (more_eps, other_eps):
        with pytest.raises(
            RobustmaskError, match="^merge_worst_case: the tables differ in images or epsilons$"
        ):
            merge_worst_case([apart[0], other])
    other_model = apart[1].copy()
    other_model.attrs = dict(apart[1].attrs)
    other_model["Clean (%)"] = other_model["Clean (%)"] - 10.0
    other_norm = apart[1].copy()
    other_norm.attrs = {**apart[1].attrs, "norm": "L2"}
    for other in (other_model, other_norm):
        with pytest.raises(
            RobustmaskError, match="^merge_worst_case: the tables are of different models or norms$"
        ):
            merge_worst_case([apart[0], other])
    with pytest.raises(RobustmaskError, match="column 'A \\(%\\)' is in two tables"):
        merge_worst_case([apart[0], apart[0]])
    with pytest.raises(RobustmaskError, match="images or epsilons"):
        merge_worst_case([apart[0], robustness_table(tiny_model, (x, y), {"B": b}, [0.05])])
    plain = apart[0].copy()
    plain.attrs = {key: value for key, value in apart[0].attrs.items() if key != "robust"}
    for tables in ([], [plain], [apart[0], plain]):  # no table, or one without its per-image masks
        with pytest.raises(
            RobustmaskError,
            match=r"^merge_worst_case needs robustness tables \(their attrs\['robust'\] masks\)$",
        ):
            merge_worst_case(tables)


def test_a_name_two_sets_share_is_renamed_and_every_attack_is_described(tiny_model, tiny_data):
    from robustmask.evaluation import AttackSet
    from robustmask.evaluation.attack_sets import covered_attacks, normalise_sets

    sets, descriptions = normalise_sets(
        [
            AttackSet(standard_attacks(pgd_restarts=3, square_queries=300)),
            AttackSet(standard_suite(), "cascade", label="suite"),
        ]
    )
    assert list(sets[1].attacks) == ["APGD-CE", "APGD-DLR", "Square (suite)"]
    assert covered_attacks(list(descriptions.values())) == (
        "FGSM, PGD-20 (3 restarts), Square (300 queries), APGD-CE, APGD-DLR (100 iterations), "
        "Square (5,000 queries)"
    )
    with pytest.raises(RobustmaskError, match="named 'FGSM \\(individual\\)'"):
        normalise_sets(
            [AttackSet({"FGSM": FGSM()}), AttackSet({"FGSM (individual)": FGSM(), "FGSM": FGSM()})]
        )


def test_seconds_sum_each_attacks_time_over_every_eps_and_the_bar_counts_every_attack(
    tiny_model, tiny_data, monkeypatch
):
    """With a clock that ticks once a reading, each attack spans one tick per eps: its seconds are
    the number of eps. The progress bar moves once per (eps, attack), by one."""
    from robustmask.evaluation import worst_case

    x, y = tiny_data
    ticks = iter(range(10_000))
    # worst_case's own clock only (a SimpleNamespace in place of its `time`), not the process's.
    monkeypatch.setattr(worst_case, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    updates = []

    class Bar:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            updates.append(n)

    monkeypatch.setattr(worst_case, "progress_bar", lambda *args, **kwargs: Bar())
    attacks = {"FGSM": FGSM(), "PGD": PGD(steps=2, seed=0)}
    for protocol in ("individual", "cascade"):
        updates.clear()
        table = robustness_table(tiny_model, (x[:20], y[:20]), attacks, [0.01, 0.05, 0.1], protocol=protocol)
        assert table.attrs["seconds"] == {"FGSM": 3.0, "PGD": 3.0}
        assert updates == [1] * 6


@pytest.mark.parametrize(
    "descriptions, phrase",
    [
        (["APGD-CE (100 iterations)", "APGD-DLR (100 iterations)"], "APGD-CE, APGD-DLR (100 iterations)"),
        (["FGSM", "Square (300 queries)", "Square (5,000 queries)"], "FGSM, Square (300 queries), Square (5,000 queries)"),
        # reproduce's quick preset: Square alone and again in the suite's cascade, at the same settings
        (
            ["FGSM", "PGD-20", "Square (300 queries)", "APGD-CE (100 iterations)", "APGD-DLR (100 iterations)",
             "Square (300 queries)"],
            "FGSM, PGD-20, Square (300 queries) twice, APGD-CE, APGD-DLR (100 iterations)",
        ),
        (["A (s)", "B (s)", "A (s)", "A (s)"], "A (s) 3 times, B (s)"),  # never "A, B (s) 3 times"
        (["A (s)", "B (s)", "B (s)"], "A (s), B (s) twice"),
        ([], ""),
    ],
)  # fmt: skip
def test_the_covered_attacks_name_each_attack_once(descriptions, phrase):
    from robustmask.evaluation.attack_sets import covered_attacks

    assert covered_attacks(descriptions) == phrase
