"""Figures of the paper (Sheikh & Zafar 2023) as `matplotlib.figure.Figure` objects.

Built on `Figure` directly, never on pyplot: nothing global changes (no backend switch, no open-figure
registry) and no display is needed; `save_figure` renders PNGs with Agg.

    >>> table = robustmask.Evaluator(FGSM(), eps=[0.0, 0.001, 0.002]).evaluate(model, (x, y))
    >>> save_figure(accuracy_and_loss_vs_eps({"undefended": table}), "fig13.png")
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from robustmask._deprecation import renamed_parameters
from robustmask.errors import RobustmaskError
import robustmask.evaluation._plot_inputs as check
from robustmask.evaluation._plot_inputs import ACCURACY_KEYS as ACCURACY_KEYS  # (re-exported)
from robustmask.evaluation.labels import eps_label

DPI = 150


def accuracy_and_loss_vs_eps(tables: Mapping[str, pd.DataFrame], title: str | None = None) -> Figure:
    """Accuracy (%) and loss against epsilon, one line per table (the paper's Fig. 13 and 17).

    `tables` maps a model or attack name to a table with columns "Epsilon", "Accuracy (%)" and,
    optionally, "Loss" (a table without it gets no line in the loss panel; with no loss at all there
    is no loss panel). Rows are plotted in
    increasing epsilon; the x-axis names the norm from ``table.attrs["norm"]`` when set.

        >>> accuracy_and_loss_vs_eps({"undefended": table4, "defended": table5}, title="FGSM")
    """
    curves = {name: check.eps_table(name, table) for name, table in check.non_empty("tables", tables).items()}
    norm_of = {name: str(tables[name].attrs.get("norm") or "") for name in curves}
    norms = sorted(set(norm_of.values()) - {""})
    with_loss = any("Loss" in table for table in curves.values())  # no empty loss panel
    figure = _grid(1, 2, (11, 4.2)) if with_loss else _grid(1, 1, (6, 4.2))
    acc_ax, loss_ax = figure.axes if with_loss else (figure.axes[0], None)
    for name, table in curves.items():
        label = f"{name} ({norm_of[name]})" if len(norms) > 1 and norm_of[name] else name
        line = acc_ax.plot(table["Epsilon"], table["Accuracy (%)"], marker="o", label=label)[0]
        if "Loss" in table and loss_ax is not None:
            loss_ax.plot(table["Epsilon"], table["Loss"], marker="o", label=label, color=line.get_color())
    xlabel = f"epsilon ({', '.join(norms)})" if norms else "epsilon"
    _decorate(acc_ax, xlabel, "accuracy (%)", "Accuracy")
    if loss_ax is not None:
        _decorate(loss_ax, xlabel, "loss", "Loss")
    if title:
        figure.suptitle(title)
    return figure


def adversarial_examples(
    x: np.ndarray,
    x_adv: np.ndarray,
    labels: np.ndarray,
    clean_probs: np.ndarray,
    adversarial_probs: np.ndarray,
    class_names: Sequence[str],
    eps: float,
    n: int = 4,
) -> Figure:
    """Clean image, perturbation and adversarial image, one row per image (the paper's Fig. 7, 12, 15, 18).

    Images are floats in [0, 1], shape (N, H, W, 3) or (N, H, W, 1); `labels` are class indices (or
    one-hot rows); the probabilities are (N, classes). The first `n` images are shown. The
    perturbation is shown as ``0.5 + scale * (x_adv - x)`` with one scale for the column,
    ``0.5 / max|x_adv - x|``, so it fills [0, 1] with grey for "unchanged"; a zero perturbation is grey.

        >>> adversarial_examples(x, x_adv, y, model.predict(x), model.predict(x_adv), CLASSES, eps=0.004)
    """
    names, eps = check.class_names(class_names), check.number("eps", eps)
    x, x_adv = check.images("x", x), check.images("x_adv", x_adv)
    if x.shape != x_adv.shape:
        raise RobustmaskError(f"x has shape {x.shape} but x_adv has shape {x_adv.shape}: they must match")
    count = check.count("n", n, len(x))
    clean = check.probabilities("clean_probs", clean_probs, len(x), len(names))[:count]
    adversarial = check.probabilities("adversarial_probs", adversarial_probs, len(x), len(names))[:count]
    labels = check.labels(labels, len(x), len(names))[:count]
    shown, scale = _perturbation_display(x[:count], x_adv[:count])
    figure = _grid(count, 3, (9, 3.1 * count))
    for row in range(count):
        clean_ax, delta_ax, adv_ax = figure.axes[3 * row : 3 * row + 3]
        _show(clean_ax, x[row], f"clean, true {names[labels[row]]}\n{_verdict(clean[row], names)}")
        _show(delta_ax, shown[row], f"perturbation x {scale:.3g}" if scale else "perturbation (zero)")
        _show(adv_ax, x_adv[row], f"adversarial\n{_verdict(adversarial[row], names)}")
    figure.suptitle(f"eps = {_eps(eps)}")
    return figure


@renamed_parameters({"epsilons": "eps"})
def image_across_eps(
    image: np.ndarray,
    adversarial: np.ndarray,
    eps: Sequence[float],
    predictions: Sequence[str],
    confidences: Sequence[float],
) -> Figure:
    """The clean image, then its adversarial version at each epsilon, in a row (the paper's Fig. 8).

    `adversarial` is (len(eps), H, W, C) with the image's shape; `confidences` are the top
    probabilities in [0, 1]. Titles read "eps 0.004: with_mask 87%".

        >>> image_across_eps(x[0], np.stack([fgsm(model, x[:1], y[:1], eps=e)[0] for e in eps]),
        ...                  eps, ["with_mask", "incorrect_mask"], [0.87, 0.99])
    """
    if check.numeric("image", image).ndim != 3:
        raise RobustmaskError(
            f"image must be one image of shape (H, W, 3) or (H, W, 1), got {np.shape(image)}"
        )
    clean = check.images("image", np.asarray(image)[None])[0]
    frames = check.images("adversarial", adversarial)
    budgets = [check.number("eps", e) for e in check.sequence("eps", eps)]
    labels, confidence = (
        check.sequence("predictions", predictions),
        check.sequence("confidences", confidences),
    )
    check.same_lengths(
        adversarial=len(frames), eps=len(budgets), predictions=len(labels), confidences=len(confidence)
    )
    if frames.shape[1:] != clean.shape:
        raise RobustmaskError(
            f"adversarial images have shape {frames.shape[1:]} but image has shape {clean.shape}"
        )
    confidence = [check.number("confidences", c) for c in confidence]
    if not all(0.0 <= c <= 1.0 for c in confidence):
        raise RobustmaskError("confidences must be probabilities in [0, 1] (divide percentages by 100)")
    figure = _grid(1, len(budgets) + 1, (2.4 * (len(budgets) + 1), 2.8))
    _show(figure.axes[0], clean, "clean")
    for ax, frame, e, label, c in zip(figure.axes[1:], frames, budgets, labels, confidence):
        _show(ax, frame, f"eps {_eps(e)}: {label} {100 * c:.0f}%")
    return figure


def image_row(images: Mapping[str, np.ndarray], title: str | None = None) -> Figure:
    """Images side by side, each under its name: a scanned frame and its perturbed copy, a learnt patch.

    Each image is (H, W, 3) or (H, W, 1), floats in [0, 1] or uint8; shown as it is (not rescaled).

        >>> image_row({"clean": frame, "attacked": attacked_frame}, title="frame 0")
    """
    shown = {
        name: check.image(f"image {name!r}", value)
        for name, value in check.non_empty("images", images).items()
    }
    width = sum(image.shape[1] / image.shape[0] for image in shown.values())
    figure = _grid(1, len(shown), (min(3.2 * width + 0.4, 16.0), 3.6))
    for ax, (name, image) in zip(figure.axes, shown.items()):
        _show(ax, image, name)
    if title:
        figure.suptitle(title)
    return figure


def learning_curves(histories: Mapping[str, Mapping[str, Sequence[float]]]) -> Figure:
    """Accuracy and loss per epoch, train and validation, for each run (the paper's Fig. 10 and 16).

    `histories` maps a run name to a Keras ``History.history`` dict (or the History itself); "val_"
    curves are drawn dashed in the run's colour when present.

        >>> learning_curves({"undefended": model.fit(...).history, "defended": retrain.history})
    """
    runs = {
        name: check.history(name, getattr(history, "history", history))
        for name, history in check.non_empty("histories", histories).items()
    }
    figure = _grid(1, 2, (11, 4.2))
    for ax, metric in zip(figure.axes, ("accuracy", "loss")):
        for name, curves in runs.items():
            color = None
            for prefix, style in (("", "-"), ("val_", "--")):
                values = curves.get(prefix + metric)
                if values is not None:
                    part = "train" if not prefix else "validation"
                    epochs = np.arange(1, len(values) + 1)
                    color = ax.plot(
                        epochs, values, style, marker="o", markersize=3, color=color, label=f"{name} {part}"
                    )[0].get_color()
        _decorate(ax, "epoch", metric, metric.capitalize())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def predictions_per_eps(counts: pd.DataFrame) -> Figure:
    """Share (%) of images predicted as each class, one stacked bar per epsilon.

    `counts` is `EvaluationResult.predicted_classes`: rows are epsilons, columns class names, values
    image counts. It shows where the attack pushes predictions (the paper: mostly `incorrect_mask`).

        >>> predictions_per_eps(Evaluator(FGSM(), eps).evaluate(model, data, details=True).predicted_classes)
    """
    shares = check.shares(counts)
    figure = _grid(1, 1, (1.0 + 0.7 * len(shares) + 2.0, 4.2))
    ax = figure.axes[0]
    positions, bottom = np.arange(len(shares)), np.zeros(len(shares))
    for name in shares.columns:
        ax.bar(positions, shares[name].to_numpy(), bottom=bottom, label=str(name))
        bottom += shares[name].to_numpy()
    ax.set_xticks(
        positions,
        [_eps(float(v)) if isinstance(v, (int, float, np.number)) else str(v) for v in shares.index],
    )
    ax.set_ylim(0, 100)
    ax.set(xlabel=counts.index.name or "Epsilon", ylabel="share of predictions (%)", title="Predicted class")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return figure


def save_figure(figure: Figure, path: str | os.PathLike[str]) -> Path:
    """Write `figure` as a PNG at `path` (folders created, any file there replaced) and return the path.

    Atomic: rendered into a temporary file in the same folder, then moved onto `path`.

        >>> save_figure(learning_curves({"run": history.history}), "results/fig10.png")
    """
    if not isinstance(figure, Figure):
        raise RobustmaskError(f"save_figure needs a matplotlib Figure, got {type(figure).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # mode 0o666 & ~umask, as open() gives
    try:
        with os.fdopen(fd, "wb") as stream:
            figure.savefig(stream, format="png", dpi=DPI)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# --- steps ------------------------------------------------------------------------------------------------------


def _perturbation_display(x: np.ndarray, x_adv: np.ndarray) -> tuple[np.ndarray, float]:
    """``(0.5 + scale * (x_adv - x), scale)`` with ``scale = 0.5 / max|x_adv - x|`` (0 when nothing changed)."""
    delta = np.asarray(x_adv, dtype=np.float64) - np.asarray(x, dtype=np.float64)
    peak = float(np.max(np.abs(delta))) if delta.size else 0.0
    scale = 0.5 / peak if peak > 0 else 0.0
    return 0.5 + scale * delta, scale


def _grid(rows: int, cols: int, size: tuple[float, float]) -> Figure:
    figure = Figure(figsize=size, layout="constrained")
    figure.subplots(rows, cols, squeeze=False)
    return figure


def _decorate(ax: Axes, xlabel: str, ylabel: str, title: str) -> None:
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(True, alpha=0.3)
    if ax.lines:
        ax.legend(fontsize="small")


def _show(ax: Axes, image: np.ndarray, title: str) -> None:
    gray = image.shape[-1] == 1
    ax.imshow(image[..., 0] if gray else image, cmap="gray" if gray else None, vmin=0.0, vmax=1.0)
    ax.set_title(title, fontsize="small")
    ax.axis("off")


def _verdict(probs: np.ndarray, names: list[str]) -> str:
    top = int(np.argmax(probs))
    return f"{names[top]} {100 * probs[top]:.1f}%"


def _eps(value: float) -> str:
    """An epsilon as tables write it: 8/255 where it is whole levels, else a short decimal."""
    return "0" if value == 0 else eps_label(value)
