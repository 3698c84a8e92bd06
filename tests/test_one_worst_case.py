"""One worst case per model and eps, everywhere a report shows one (issue 17, section 2).

Two attack sets whose worst cases differ: set A (run on every image) fools images 0 and 1, set B
(the suite, a cascade) fools image 2. The worst case is the per-image minimum over both, so images
0, 1 and 2 all count as fooled: 3 of 6 robust (50%), where the smaller column says 4 of 6 (66.7%).
`reproduce` and `defend` run with these stub sets on an "oracle" model (it classifies every image by
its brightest channel) and every place they report, the table, the log, summary.json and
report.html, must show 50.0 and never 66.7 as a worst case.
"""

from __future__ import annotations

import json
import re
import types

import keras
import numpy as np
import pandas as pd
import pytest

import robustmask.reproduce as reproduce
from robustmask.attacks.base import Attack
from robustmask.cli.main import main

SIZE = 8
WORST, SMALLER_COLUMN = "50.0", "66.7"


def oracle_images(n_per_class: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is their brightest channel, each tagged with its index in pixel (0, 0)."""
    y = np.tile(np.arange(3), n_per_class)
    x = np.full((len(y), SIZE, SIZE, 3), 0.2, np.float32)
    x[np.arange(len(y)), :, :, y] = 0.8
    x[:, 0, 0, :] = (start + np.arange(len(y)))[:, None] / 255.0
    return x, y


def tag(image: np.ndarray) -> int:
    return round(float(image[0, 0, 1]) * 255)


def oracle_model() -> keras.Model:
    model = keras.Sequential(
        [keras.Input((SIZE, SIZE, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)]
    )
    model.layers[-1].set_weights([np.eye(3, dtype=np.float32) * 40, np.zeros(3, np.float32)])
    model = keras.Sequential([model, keras.layers.Softmax()])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


class Fool(Attack):
    """Fools the images with the given tags: their channels rolled, the oracle reads another class."""

    eps_bounded = True

    def __init__(self, fooled):
        super().__init__()
        self.fooled = set(fooled)

    def generate(self, model, x, y, epsilons):  # never reached: __call__ is the attack
        raise AssertionError("not used")

    def __call__(self, model, images, labels=None, eps=None):
        out = images.copy()
        for j, image in enumerate(images):
            if tag(image) in self.fooled:
                out[j] = np.roll(image, 1, axis=-1)
        return out


class StubDefense:
    """A 'defence' that returns the oracle, so both models of a comparison see the same images."""

    epochs = 1

    def __init__(self, *args, **kwargs):
        pass

    def fit(self, model, data, **kwargs):
        return oracle_model(), types.SimpleNamespace(history={"loss": [0.5]})


def tiny_classifier(num_classes: int) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


class StubTrainer:
    """Stands in for Algorithm 2 (tested in its own files): the 'defended' model is the model."""

    labels = "predicted"

    def __init__(self, *args, **kwargs):
        pass

    def fit(self, model, data, **kwargs):
        return model, types.SimpleNamespace(history={"loss": [0.5]})


@pytest.fixture
def two_sets(monkeypatch):
    """The robust stage's data, models and attacks replaced: 6 test images, set A fools 0 and 1, set B 2."""
    import robustmask.defenses.comparison as comparison
    import robustmask.defenses.presets as presets
    import robustmask.evaluation.worst_case as worst_case

    def data(source=None, *, image_size=48, n_per_class=500, seed=0):
        (x_train, y_train), (x_test, y_test) = oracle_images(4, start=100), oracle_images(2)
        return x_train, x_test, y_train, y_test

    monkeypatch.setattr(presets, "robust_data", data)
    import robustmask.cli._data as cli_data  # defend's own split (--test-data, the test share)

    monkeypatch.setattr(
        cli_data,
        "defend_data",
        lambda args, size: (data(), ["incorrect_mask", "with_mask", "without_mask"], []),
    )
    monkeypatch.setattr(presets, "train_undefended", lambda *args, **kwargs: oracle_model())
    monkeypatch.setattr(presets, "robust_presets", lambda names, **kw: {n: StubDefense() for n in names})
    monkeypatch.setattr(presets, "robust_preset", lambda name, **kwargs: StubDefense())
    # Every module that bound the name at import (comparison does): an earlier test may have imported it.
    for module in (worst_case, comparison):
        monkeypatch.setattr(module, "standard_attacks", lambda **kwargs: {"A": Fool({0, 1})})
    monkeypatch.setattr(worst_case, "standard_suite", lambda **kwargs: {"B": Fool({2})})


def check_table(table: pd.DataFrame) -> None:
    assert list(table.columns[-4:]) == ["Clean (%)", "A (%)", "B (%)", "Worst case (%)"]
    assert (table["Clean (%)"] == 100).all() and np.allclose(table["A (%)"], 100 * 4 / 6)
    assert np.allclose(table["B (%)"], 100 * 5 / 6) and np.allclose(table["Worst case (%)"], 50.0)


def check_headline(headline: dict, models: list[str]) -> None:
    assert headline["covers"] == "A, B" and headline["examples"] == 6
    assert [row["model"] for row in headline["rows"]] == models
    assert all(row["worst_case"] == pytest.approx(50.0) for row in headline["rows"])


def check_report(page: str) -> None:
    summary = page[page.index('id="summary"') : page.index('id="warnings"')]
    assert "Worst case over A, B on 6 images" in summary
    assert re.findall(r"<strong>([\d.]+)</strong>", summary) == ["50.00"] * summary.count("<strong>")
    assert SMALLER_COLUMN not in summary and "66.67" not in summary


def test_reproduce_shows_the_per_image_worst_case_everywhere_and_saves_every_model(
    tmp_path, monkeypatch, two_sets
):
    # the paper's part on a tiny model, Algorithm 2 a stub (as tests/test_overwrite.py does)
    monkeypatch.setattr(reproduce, "_build_model", lambda config, n, chosen: tiny_classifier(n))
    monkeypatch.setattr("robustmask.defenses.MultiEpsilonAdversarialTrainer", StubTrainer)
    config = reproduce.StudyConfig.quick(
        weights="none", image_size=16, epochs=1, n_per_class=20, defense_epochs=1, robust_epsilons=(4 / 255,)
    )
    logged: list[str] = []
    summary = reproduce.run_study(config, tmp_path / "run", progress=False, log=logged.append)
    out = tmp_path / "run"
    table = pd.read_csv(out / "tables" / "robust_comparison.csv")
    check_table(table)
    assert not (out / "tables" / "standard_suite.csv").exists()  # no second table, no second worst case
    saved = json.loads((out / "summary.json").read_text())
    for records in (summary["results"]["robust_comparison"], saved["results"]["robust_comparison"]):
        assert [row["Worst case (%)"] for row in records] == pytest.approx([50.0, 50.0])
    check_headline(saved["headline"], ["undefended", "pgd-at"])
    check_report((out / "report.html").read_text())
    log = "\n".join(logged)
    assert "| undefended | 4/255 | 100.0 | 66.7 | 83.3 | 50.0 |" in log
    assert "  undefended: clean 100.0%, worst case 50.0% at 4/255" in log
    assert f"worst case {SMALLER_COLUMN}" not in log
    # every model it trained is saved and listed: the robust stage's too
    assert set(saved["models"]) == {
        "undefended.keras",
        "defended.keras",
        "robust-undefended.keras",
        "robust-pgd-at.keras",
    }
    robust = keras.models.load_model(out / "robust-pgd-at.keras")
    x, y = oracle_images(2)
    assert (np.argmax(robust.predict(x, verbose=0), axis=1) == y).all()


def test_defend_shows_the_per_image_worst_case_everywhere(tmp_path, two_sets, capsys):
    out = tmp_path / "defend"
    assert main(["defend", "--defense", "pgd-at", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    check_table(pd.read_csv(out / "tables" / "comparison.csv"))
    assert "  pgd-at: clean 100.0%, worst case 50.0% at 0.009, 50.0% at 2/255, 50.0% at 4/255" in printed
    assert f"worst case {SMALLER_COLUMN}" not in printed
    saved = json.loads((out / "summary.json").read_text())
    check_headline(saved["headline"], ["undefended"] * 4 + ["pgd-at"] * 4)
    check_report((out / "report.html").read_text())
    # --suite none: only set A ran, so the worst case is A's own
    assert main(["defend", "--suite", "none", "--no-progress", "--out", str(tmp_path / "a")]) == 0
    assert pd.read_csv(tmp_path / "a" / "tables" / "comparison.csv")["Worst case (%)"].round(1).eq(66.7).all()


def test_defend_refuses_a_bad_suite_parameter_before_training(tmp_path, capsys):
    out = tmp_path / "defend"
    assert main(["defend", "--suite-param", "apgd_iters=3", "--out", str(out)]) == 2
    assert "--suite-param" in capsys.readouterr().err and not out.exists()
