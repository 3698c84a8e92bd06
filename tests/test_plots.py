"""The paper's figures plot exactly their inputs; save_figure writes real PNGs atomically; bad input is one line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from robustmask.errors import RobustmaskError
from robustmask.evaluation import plots
from robustmask.evaluation.plots import (
    accuracy_and_loss_vs_eps,
    adversarial_examples,
    image_across_eps,
    image_row,
    learning_curves,
    predictions_per_eps,
    save_figure,
)

CLASSES = ["incorrect_mask", "with_mask", "without_mask"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def one_line_error(match: str, function, *args, **kwargs) -> str:
    with pytest.raises(RobustmaskError, match=match) as info:
        function(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message
    return message


def table(eps, accuracy, loss=None, norm=None) -> pd.DataFrame:
    frame = pd.DataFrame({"Epsilon": eps, "Accuracy (%)": accuracy})
    if loss is not None:
        frame["Loss"] = loss
    if norm:
        frame.attrs["norm"] = norm
    return frame


TABLE4 = table(
    [0.0, 0.001, 0.002, 0.003], [95.83, 75.12, 59.54, 45.20], [0.1339, 1.2533, 2.7042, 3.9079], "L-inf"
)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 0.9, size=(5, 8, 8, 3))
    sizes = np.array([0.002, 0.009, 0.004, 0.001, 0.05]).reshape(-1, 1, 1, 1)  # image 4's is not shown at n=4
    x_adv = np.clip(x + sizes * np.sign(rng.normal(size=x.shape)), 0, 1)
    clean, adversarial = rng.dirichlet(np.ones(3), 5), rng.dirichlet(np.ones(3), 5)
    return x, x_adv, np.array([0, 1, 2, 1, 0]), clean, adversarial


# --- accuracy and loss against epsilon (Fig. 13, 17) -------------------------------------------------------------


def test_lines_equal_the_tables_and_a_table_without_loss_only_gets_an_accuracy_line():
    shuffled = table([0.002, 0.0, 0.001], [92.79, 93.79, 92.87])  # no Loss column, rows out of order
    figure = accuracy_and_loss_vs_eps({"undefended": TABLE4, "defended": shuffled}, title="FGSM")
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    accuracy, loss = figure.axes
    assert [line.get_label() for line in accuracy.lines] == ["undefended", "defended"]
    np.testing.assert_array_equal(
        accuracy.lines[0].get_xydata(), TABLE4[["Epsilon", "Accuracy (%)"]].to_numpy()
    )
    np.testing.assert_array_equal(
        accuracy.lines[1].get_xydata(), [[0.0, 93.79], [0.001, 92.87], [0.002, 92.79]]
    )
    assert [line.get_label() for line in loss.lines] == ["undefended"]
    np.testing.assert_array_equal(loss.lines[0].get_xydata(), TABLE4[["Epsilon", "Loss"]].to_numpy())
    assert accuracy.lines[0].get_marker() not in (None, "None", "")
    assert accuracy.get_xlabel() == loss.get_xlabel() == "epsilon (L-inf)"
    assert figure.get_suptitle() == "FGSM"


def test_x_label_names_the_norm_only_when_known_and_mixed_norms_are_told_apart():
    plain = accuracy_and_loss_vs_eps({"a": table([0.0, 0.1], [90.0, 50.0], [0.1, 2.0])})
    assert plain.axes[0].get_xlabel() == "epsilon" and not plain.get_suptitle()
    mixed = accuracy_and_loss_vs_eps({"fgsm": TABLE4, "fgm": table([0.0, 1.0], [95.0, 40.0], norm="L2")})
    assert mixed.axes[0].get_xlabel() == "epsilon (L-inf, L2)"
    assert [line.get_label() for line in mixed.axes[0].lines] == ["fgsm (L-inf)", "fgm (L2)"]


@pytest.mark.parametrize(
    ("tables", "match"),
    [
        ({}, "non-empty mapping"),
        ([TABLE4], "non-empty mapping"),
        ({"a": pd.DataFrame(columns=["Epsilon", "Accuracy (%)"])}, "'a' must be a non-empty DataFrame"),
        ({"a": pd.DataFrame({"Epsilon": [0.0], "Acc": [90.0]})}, r"lacks column\(s\) \['Accuracy \(%\)'\]"),
        ({"a": table([0.0, "x"], [90.0, 80.0])}, "'Epsilon' of table 'a' must be numeric"),
        ({"a": table([0.0, np.nan], [90.0, 80.0])}, "NaN"),
    ],
)
def test_bad_tables_give_one_line(tables, match):
    one_line_error(match, accuracy_and_loss_vs_eps, tables)


# --- clean, perturbation, adversarial (Fig. 7, 12, 15, 18) -----------------------------------------------------


def test_rows_show_the_first_n_images_with_their_predictions(batch):
    x, x_adv, labels, clean, adversarial = batch
    figure = adversarial_examples(x, x_adv, labels, clean, adversarial, CLASSES, eps=0.009, n=4)
    assert len(figure.axes) == 12 and figure.get_suptitle() == "eps = 0.009"
    for row in range(4):
        clean_ax, _, adv_ax = figure.axes[3 * row : 3 * row + 3]
        np.testing.assert_array_equal(clean_ax.images[0].get_array(), x[row])
        np.testing.assert_array_equal(adv_ax.images[0].get_array(), x_adv[row])
        top, adv_top = clean[row].argmax(), adversarial[row].argmax()
        assert f"true {CLASSES[labels[row]]}" in clean_ax.get_title()
        assert f"{CLASSES[top]} {100 * clean[row, top]:.1f}%" in clean_ax.get_title()
        assert f"{CLASSES[adv_top]} {100 * adversarial[row, adv_top]:.1f}%" in adv_ax.get_title()
        assert "true" not in adv_ax.get_title()


def test_perturbation_is_scaled_by_one_factor_to_fill_the_unit_range(batch):
    x, x_adv, labels, clean, adversarial = batch
    figure = adversarial_examples(x, x_adv, labels, clean, adversarial, CLASSES, eps=0.009, n=4)
    delta = x_adv[:4] - x[:4]
    scale = 0.5 / np.abs(delta).max()  # the largest shown change (image 1's 0.009), not image 4's 0.05
    assert scale == pytest.approx(0.5 / 0.009)
    for row in range(4):
        shown = figure.axes[3 * row + 1]
        np.testing.assert_allclose(shown.images[0].get_array(), 0.5 + scale * delta[row])
        assert shown.get_title() == f"perturbation x {scale:.3g}"
    everything = np.concatenate([figure.axes[3 * row + 1].images[0].get_array().ravel() for row in range(4)])
    assert everything.min() == pytest.approx(0.0) and everything.max() == pytest.approx(1.0)


def test_zero_perturbation_is_grey_without_dividing_by_zero(batch, recwarn):
    x, _, labels, clean, _ = batch
    with np.errstate(all="raise"):
        figure = adversarial_examples(x, x, labels, clean, clean, CLASSES, eps=0.0, n=2)
    shown = figure.axes[1]
    np.testing.assert_array_equal(shown.images[0].get_array(), np.full(x[0].shape, 0.5))
    assert shown.get_title() == "perturbation (zero)"
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_grayscale_one_hot_labels_and_n_beyond_the_batch(batch):
    x, x_adv, labels, clean, adversarial = batch
    gray, gray_adv = x[..., :1], x_adv[..., :1]
    figure = adversarial_examples(
        gray, gray_adv, np.eye(3)[labels], clean, adversarial, CLASSES, eps=0.01, n=50
    )
    assert len(figure.axes) == 3 * len(x)
    image = figure.axes[0].images[0]
    assert image.get_array().shape == x.shape[1:3] and image.get_cmap().name == "gray"
    assert f"true {CLASSES[labels[0]]}" in figure.axes[0].get_title()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"x": lambda b: b[0] * 255}, r"x lies outside \[0, 1\]"),
        ({"x_adv": lambda b: b[1] - 0.2}, r"x_adv lies outside \[0, 1\]"),
        ({"x_adv": lambda b: b[1][:3]}, "x has shape .* but x_adv has shape"),
        (
            {"x": lambda b: b[0][..., :2], "x_adv": lambda b: b[1][..., :2]},
            r"\(n, H, W, 3\) or \(n, H, W, 1\)",
        ),
        ({"labels": lambda b: b[2][:4]}, "labels must be 5 class indices"),
        ({"labels": lambda b: b[2] + 3}, r"class indices in \[0, 3\)"),
        ({"clean_probs": lambda b: b[3][:, :2]}, r"clean_probs must have shape \(5, 3\)"),
        ({"adversarial_probs": lambda b: b[4] * 10 - 5}, "softmax"),
        ({"clean_probs": lambda b: np.where(b[3] > 0.5, np.nan, b[3])}, "NaN"),
        ({"class_names": lambda b: CLASSES[:2]}, r"must have shape \(5, 2\)"),
        ({"class_names": lambda b: "with_mask"}, "class_names must be a sequence"),
        ({"eps": lambda b: -0.1}, "eps must be finite and >= 0"),
        ({"n": lambda b: 0}, "n must be a positive integer"),
    ],
)
def test_bad_examples_give_one_line(batch, change, match):
    x, x_adv, labels, clean, adversarial = batch
    args = dict(
        x=x,
        x_adv=x_adv,
        labels=labels,
        clean_probs=clean,
        adversarial_probs=adversarial,
        class_names=CLASSES,
        eps=0.01,
        n=4,
    )
    args.update({name: make(batch) for name, make in change.items()})
    one_line_error(match, adversarial_examples, **args)


# --- one image across epsilons (Fig. 8) ------------------------------------------------------------------------


def test_one_panel_per_epsilon_after_the_clean_image(batch):
    x, x_adv = batch[0], batch[1]
    frames, eps = x_adv[:3], [0.001, 0.004, 0.0095]
    figure = image_across_eps(
        x[0], frames, eps, ["with_mask", "with_mask", "incorrect_mask"], [0.5, 0.87, 0.999]
    )
    assert len(figure.axes) == 4 and figure.axes[0].get_title() == "clean"
    assert [ax.get_title() for ax in figure.axes[1:]] == [
        "eps 0.001: with_mask 50%",
        "eps 0.004: with_mask 87%",
        "eps 0.0095: incorrect_mask 100%",
    ]
    np.testing.assert_array_equal(figure.axes[0].images[0].get_array(), x[0])
    for ax, frame in zip(figure.axes[1:], frames):
        np.testing.assert_array_equal(ax.images[0].get_array(), frame)


@pytest.mark.parametrize(
    ("predictions", "confidences", "frames", "match"),
    [
        (
            ["a", "b"],
            [0.5, 0.5, 0.5],
            3,
            "mismatched lengths: adversarial 3, eps 3, predictions 2, confidences 3",
        ),
        (["a", "b", "c"], [50.0, 87.0, 99.0], 3, "divide percentages by 100"),
        (["a", "b", "c"], [0.5, 0.5, 0.5], 0, r"\(n, H, W, 3\)"),
        ("abc", [0.5, 0.5, 0.5], 3, "predictions must be a sequence"),
    ],
)
def test_bad_series_give_one_line(batch, predictions, confidences, frames, match):
    x, x_adv = batch[0], batch[1]
    one_line_error(
        match, image_across_eps, x[0], x_adv[:frames], [0.001, 0.002, 0.003], predictions, confidences
    )


def test_image_shape_must_match_the_frames(batch):
    x, x_adv = batch[0], batch[1]
    one_line_error("one image of shape", image_across_eps, x[:1], x_adv[:1], [0.1], ["a"], [0.5])
    one_line_error(
        "adversarial images have shape", image_across_eps, x[0, :4], x_adv[:1], [0.1], ["a"], [0.5]
    )


# --- learning curves (Fig. 10, 16) ------------------------------------------------------------------------------


class FakeHistory:
    def __init__(self, history):
        self.history = history


def test_image_row_shows_each_image_as_it_is_under_its_name():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (30, 60, 3), dtype=np.uint8)  # a scanned frame: uint8, twice as wide
    patch = rng.uniform(0, 1, (10, 10, 1)).astype(np.float32)
    figure = image_row({"as scanned": frame, "patch": patch}, title="frame 0")
    assert [ax.get_title() for ax in figure.axes] == ["as scanned", "patch"]
    np.testing.assert_allclose(figure.axes[0].images[0].get_array(), frame / 255.0, atol=1e-7)
    np.testing.assert_array_equal(figure.axes[1].images[0].get_array(), patch[..., 0])
    assert figure.axes[1].images[0].get_cmap().name == "gray"
    assert figure.get_suptitle() == "frame 0"
    width, height = figure.get_size_inches()
    assert width > height  # wide enough for a frame twice as wide as high, beside a square


@pytest.mark.parametrize(
    "images, match",
    [
        ({}, "images must be a non-empty mapping"),
        ({"a": np.zeros((4, 4))}, r"image 'a' must be one image of shape \(H, W, 3\)"),
        ({"a": np.full((4, 4, 3), 2.0)}, r"image 'a' lies outside \[0, 1\]"),
        ({"a": np.zeros((4, 4, 2))}, r"image 'a' must be images of shape"),
    ],
)
def test_bad_images_give_one_line(images, match):
    one_line_error(match, image_row, images)


def test_curves_per_epoch_with_dashed_validation_in_the_run_colour():
    full = {
        "accuracy": [0.5, 0.7, 0.8],
        "val_accuracy": [0.4, 0.6, 0.7],
        "loss": [1.0, 0.6, 0.4],
        "val_loss": [1.1, 0.8, 0.6],
    }
    old_keras = {"acc": [0.6, 0.9], "loss": [0.9, 0.3]}
    figure = learning_curves({"undefended": full, "defended": FakeHistory(old_keras)})
    assert len(figure.axes) == 2
    for ax, metric, old_key in zip(figure.axes, ("accuracy", "loss"), ("acc", "loss")):
        assert [line.get_label() for line in ax.lines] == [
            "undefended train",
            "undefended validation",
            "defended train",
        ]
        train, val, other = ax.lines
        np.testing.assert_array_equal(train.get_xydata(), np.column_stack([[1, 2, 3], full[metric]]))
        np.testing.assert_array_equal(val.get_xydata(), np.column_stack([[1, 2, 3], full[f"val_{metric}"]]))
        np.testing.assert_array_equal(other.get_xydata(), np.column_stack([[1, 2], old_keras[old_key]]))
        assert train.get_linestyle() == "-" and val.get_linestyle() == "--"
        assert train.get_color() == val.get_color() != other.get_color()


@pytest.mark.parametrize(
    ("histories", "match"),
    [
        ({}, "histories must be a non-empty mapping"),
        ({"run": [0.5, 0.6]}, "history 'run' must be a History.history dict"),
        ({"run": {"precision": [0.5]}}, r"no accuracy or loss values; keys: \['precision'\]"),
        ({"run": {"accuracy": []}}, "no accuracy or loss values"),
        ({"run": {"accuracy": [0.5], "loss": [[1.0]]}}, "empty or non-flat curve"),
        ({"run": {"loss": [0.5, "nan?"]}}, "'loss' of history 'run' must be numeric"),
    ],
)
def test_bad_histories_give_one_line(histories, match):
    one_line_error(match, learning_curves, histories)


# --- predicted classes per epsilon -----------------------------------------------------------------------------


def test_stacked_bars_are_the_shares_of_each_class():
    counts = pd.DataFrame(
        [[350, 350, 353], [600, 200, 253], [1053, 0, 0]],
        index=pd.Index([0.0, 0.001, 0.009], name="Epsilon"),
        columns=CLASSES,
    )
    figure = predictions_per_eps(counts)
    (ax,) = figure.axes
    shares = counts.to_numpy() / counts.to_numpy().sum(axis=1, keepdims=True) * 100
    assert len(ax.containers) == len(CLASSES)
    bottoms = np.zeros(len(counts))
    for k, bars in enumerate(ax.containers):
        np.testing.assert_allclose([bar.get_height() for bar in bars], shares[:, k])
        np.testing.assert_allclose([bar.get_y() for bar in bars], bottoms, atol=1e-12)
        bottoms += shares[:, k]
    np.testing.assert_allclose(bottoms, 100.0)
    assert [text.get_text() for text in ax.get_legend().get_texts()] == CLASSES
    assert [label.get_text() for label in ax.get_xticklabels()] == ["0", "0.001", "0.009"]
    assert ax.get_xlabel() == "Epsilon"


@pytest.mark.parametrize(
    ("counts", "match"),
    [
        (pd.DataFrame(), "non-empty DataFrame"),
        ({"with_mask": [1]}, "non-empty DataFrame"),
        (pd.DataFrame({"a": [1, 0], "b": [2, 0]}, index=[0.0, 0.5]), r"row\(s\) \[0.5\] hold no predictions"),
        (pd.DataFrame({"a": [1, -1], "b": [2, 3]}), "counts must be >= 0"),
    ],
)
def test_bad_counts_give_one_line(counts, match):
    one_line_error(match, predictions_per_eps, counts)


# --- saving ------------------------------------------------------------------------------------------------------


def test_save_figure_writes_a_png_matplotlib_reads_back_at_the_expected_size(tmp_path):
    figure = Figure(figsize=(4, 3))
    figure.subplots().plot([0, 1], [1, 0])
    path = save_figure(figure, tmp_path / "new" / "folder" / "fig.png")
    assert path == tmp_path / "new" / "folder" / "fig.png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (3 * plots.DPI, 4 * plots.DPI)
    assert os.listdir(path.parent) == ["fig.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_save_figure_replaces_a_file_and_a_failed_save_leaves_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "fig.png"
    path.write_bytes(b"old")
    save_figure(accuracy_and_loss_vs_eps({"a": TABLE4}), path)
    first = path.read_bytes()
    assert first[:8] == PNG_SIGNATURE
    broken = Figure()

    def fail(*args, **kwargs):
        args[0].write(b"half")  # a partial write, then a crash
        raise OSError("disk full")

    monkeypatch.setattr(broken, "savefig", fail)
    with pytest.raises(OSError, match="disk full"):
        save_figure(broken, path)
    assert path.read_bytes() == first and os.listdir(tmp_path) == ["fig.png"]
    one_line_error("needs a matplotlib Figure, got str", save_figure, "figure", path)


def test_plots_leave_pyplot_and_the_backend_alone(tmp_path):
    """Run in a fresh interpreter: the module, loaded on its own, never imports pyplot or picks a backend."""
    source = Path(plots.__file__)
    script = textwrap.dedent(f"""
        import importlib.util, sys
        import matplotlib
        before = matplotlib.rcParams._get_backend_or_none()
        spec = importlib.util.spec_from_file_location("plots_alone", {str(source)!r})
        plots = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(plots)
        figure = plots.learning_curves({{"run": {{"loss": [1.0, 0.5]}}}})
        plots.save_figure(figure, {str(tmp_path / "alone.png")!r})
        assert "matplotlib.pyplot" not in sys.modules, "pyplot imported"
        assert matplotlib.rcParams._get_backend_or_none() == before, "backend changed"
    """)
    env = {key: value for key, value in os.environ.items() if key != "MPLBACKEND"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "alone.png").read_bytes()[:8] == PNG_SIGNATURE


def test_tables_without_any_loss_get_no_empty_loss_panel():
    frame = pd.DataFrame({"Epsilon": [0.0, 0.01], "Accuracy (%)": [90.0, 40.0]})
    figure = accuracy_and_loss_vs_eps(
        {"PGD": frame, "Square": frame.assign(**{"Accuracy (%)": [90.0, 70.0]})}
    )
    assert len(figure.axes) == 1 and figure.axes[0].get_title() == "Accuracy"
    np.testing.assert_array_equal(figure.axes[0].lines[1].get_xydata(), [[0.0, 90.0], [0.01, 70.0]])
