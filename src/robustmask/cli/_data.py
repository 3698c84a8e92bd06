"""The model and the images a command runs on: --model, --data or the synthetic faces
(`robustmask.datasets.source.load_faces`, the one loader), --class-names, and the checks on them.

A label/class-count mismatch between the data and the model is refused here, before any attack or
training runs, with the flag that fixes it.
"""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robustmask.errors import ModelError, RobustmaskError

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import tensorflow as tf

    from robustmask.datasets import FaceMaskData, StreamedFaces

__all__ = [
    "check_class_count",
    "check_stream_data",
    "data_for",
    "defend_data",
    "defend_inputs",
    "defend_stream",
    "images_for",
    "load_model",
    "model_input_size",
    "stream_for",
    "stream_skips_warning",
    "test_size_note",
]

#: defend's test share of --data: 12% (the paper's 7% rounded up), more for small folders so that
#: the test set holds about 50 images (one image is then 2 points), at most a quarter of the data.
TEST_SHARE, TEST_IMAGES, MAX_TEST_SHARE = 0.12, 50, 0.25


def load_model(args: argparse.Namespace) -> keras.Model:
    """The model at --model through `robustmask.zoo.load_model` (.keras, SavedModel, Keras 2 HDF5),
    taking [0, 1] pixels; prints the input convention chosen so that a wrong guess is seen."""
    from robustmask.zoo import load_model as zoo_load_model

    model = zoo_load_model(args.model, inputs=args.inputs, safe_mode=not args.unsafe)
    print(f"{args.model}: {model.input_convention}")
    return model


def model_input_size(model: keras.Model) -> tuple[int, int]:
    """(height, width) of the model's images; a ModelError when it does not declare them."""
    shape = getattr(model, "input_shape", None)
    if not shape or shape[1] is None or shape[2] is None:
        raise ModelError(
            "the model does not declare its input size; robustmask needs (height, width, 3) inputs"
        )
    return int(shape[1]), int(shape[2])


def images_for(args: argparse.Namespace, image_size: int | tuple[int, int]) -> FaceMaskData:
    """Every image of --data (shuffled by --seed), else --n-per-class synthetic faces of --class-names,
    all in ``x_train``; a bad --class-names or a non-square size without --data names its flag."""
    from robustmask.datasets.source import load_faces

    if not args.data:
        synthetic_classes(args, image_size)
    return load_faces(
        args.data,
        image_size=image_size,
        n_per_class=args.n_per_class,
        seed=args.seed,
        class_names=args.class_names,
    )


def synthetic_classes(args: argparse.Namespace, image_size: int | tuple[int, int]) -> list[str]:
    """The synthetic classes of --class-names, refused in one line naming the flag (or --data), as
    are an --n-per-class below 1 and a non-square size."""
    from robustmask._validation import check_positive_int

    check_positive_int(args.n_per_class, "--n-per-class")
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    if height != width:
        raise RobustmaskError(f"synthetic faces are square; the model takes {height}x{width}: pass --data")
    return synthetic_names(args.class_names)


def data_for(model: keras.Model, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images at the model's input size, their labels and class names (--data, else synthetic faces).

    The class count is checked against the model before any synthetic face is drawn.
    """
    size = model_input_size(model)
    if not args.data:
        check_class_count(model, synthetic_classes(args, size), "the synthetic faces")
    faces = images_for(args, size)
    if args.data:
        check_class_count(model, faces.class_names, f"the folder {args.data}")
    return faces.x_train, faces.y_train, list(faces.class_names)


def stream_for(
    model: keras.Model, args: argparse.Namespace, batch_size: int
) -> tuple[tf.data.Dataset, list[str]]:
    """--data streamed from disk at the model's input size in batches of `batch_size`, and its class names.

    The class count is checked against the model here, from the folder listing, before any file is
    decoded or attacked. Bad files are met (and counted) as the stream is read: `stream_skips_warning`
    reports them afterwards.
    """
    from robustmask.datasets.streaming import stream_face_mask_directory, stream_report

    check_stream_data(args)
    stream = stream_face_mask_directory(
        args.data, image_size=model_input_size(model), batch_size=batch_size, class_names=args.class_names
    )
    names = list(stream_report(stream).class_names)
    check_class_count(model, names, f"the folder {args.data}")
    return stream, names


def check_stream_data(args: argparse.Namespace) -> None:
    """Refuse --stream without --data, in one line."""
    if not args.data:
        raise RobustmaskError("--stream reads a folder: give --data DIR (synthetic faces are made in memory)")


def stream_skips_warning(stream: tf.data.Dataset) -> None:
    """Warn of the files a read stream skipped, as the in-memory loader warns of its own."""
    from robustmask.datasets.directory import _MAX_LISTED
    from robustmask.datasets.streaming import stream_report

    report = stream_report(stream)
    skipped = report.skipped
    if skipped:
        listed = "; ".join(f"{p} ({why})" for p, why in skipped[:_MAX_LISTED])
        more = f"; and {len(skipped) - _MAX_LISTED} more" if len(skipped) > _MAX_LISTED else ""
        warnings.warn(f"skipped {len(skipped)} file(s) under {report.root}: {listed}{more}", stacklevel=2)


def synthetic_names(class_names: list[str] | None) -> list[str]:
    """The synthetic classes --class-names picks (all three without it); unknown names refused."""
    from robustmask.datasets import CLASS_NAMES

    unknown = [c for c in class_names or [] if c not in CLASS_NAMES]
    if unknown:
        raise RobustmaskError(
            f"--class-names {' '.join(unknown)}: the synthetic classes are {', '.join(CLASS_NAMES)}"
        )
    return list(class_names or CLASS_NAMES)


def check_class_count(model: keras.Model, names: tuple[str, ...] | list[str], source: str) -> None:
    """Refuse data whose class count is not the model's, naming the flag that fixes it."""
    from robustmask.modelinfo import inspect_model

    info = inspect_model(model)
    wanted, names = info.num_classes, list(names)
    if wanted == len(names):
        return
    outputs = "2 classes (one sigmoid unit)" if info.single_unit else f"{wanted} outputs"
    found = f"{source} has {len(names)} classes ({', '.join(names)}) but the model has {outputs}"
    if len(names) > wanted:
        pick = (
            ["with_mask", "without_mask"]
            if wanted == 2 and {"with_mask", "without_mask"} <= set(names)
            else names[:wanted]
        )
        raise RobustmaskError(
            f"{found}: pass --class-names {' '.join(pick)} (the model's classes in its label order)"
        )
    raise RobustmaskError(
        f"{found}: pass --class-names with the model's {wanted} class folders in its label order, "
        f"or --data with a folder of all {wanted} classes"
    )


def defend_data(
    args: argparse.Namespace, size: int
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], list[str], list[str]]:
    """``(x_train, x_test, y_train, y_test)``, the class names, and warnings about the test set.

    The test images are --test-data when given, else a stratified share of --data (or of the
    synthetic faces) of at least 12% and about 50 images.
    """
    from robustmask.datasets.source import load_faces

    warnings: list[str] = []
    faces = images_for(args, size)
    x, y, names = faces.x_train, faces.y_train, list(faces.class_names)
    if args.test_data:
        test = load_faces(args.test_data, image_size=size, seed=args.seed, class_names=names)
        x_train, y_train, x_test, y_test = x, y, test.x_train, test.y_train
        warnings += _same_images(args, x_train, x_test)
    else:
        x_train, x_test, y_train, y_test = _split(x, y, args.seed)
    note = test_size_note(len(x_test))
    if note:
        warnings.append(note)
    return (x_train, x_test, y_train, y_test), names, warnings


def defend_stream(args: argparse.Namespace, size: int) -> tuple[StreamedFaces, list[str]]:
    """--data's training images streamed from disk and the test images in memory, and warnings.

    The test images are --test-data when given, else a share of --data's files held out by the folder
    loader's rule (`robustmask.datasets.stream_faces`), as large as `defend_data`'s share of images.
    """
    import dataclasses

    from robustmask.datasets.source import load_faces, stream_faces
    from robustmask.datasets.streaming import stream_face_mask_directory, stream_report

    check_stream_data(args)
    warnings: list[str] = []
    settings: dict[str, Any] = dict(image_size=size, seed=args.seed, class_names=args.class_names)
    if args.test_data:
        faces = stream_faces(args.data, **settings)
        test = load_faces(args.test_data, image_size=size, seed=args.seed, class_names=faces.class_names)
        faces = dataclasses.replace(faces, x_test=test.x_train, y_test=test.y_train)
        if Path(args.data).resolve() == Path(args.test_data).resolve():  # streamed images are not compared
            warnings += _same_images(args, faces.x_test[:0], faces.x_test)
    else:
        listed = stream_face_mask_directory(args.data, size, class_names=args.class_names)
        files = len(stream_report(listed).files)
        faces = stream_faces(
            args.data, split=min(MAX_TEST_SHARE, max(TEST_SHARE, TEST_IMAGES / files)), **settings
        )
    note = test_size_note(len(faces.y_test))
    return faces, warnings + ([note] if note else [])


def defend_inputs(
    args: argparse.Namespace, model: keras.Model | None, size: int
) -> tuple[tuple[Any, np.ndarray, np.ndarray | None, np.ndarray], list[str], list[str]]:
    """defend's ``(x_train, x_test, y_train, y_test)``, class names and data warnings, printed with the
    counts; with --stream, x_train is --data's training stream and y_train None. The class count is
    checked against `model`."""
    data: tuple[Any, np.ndarray, np.ndarray | None, np.ndarray]
    if args.stream:
        faces, warnings = defend_stream(args, size)
        data, names = (faces.train, faces.x_test, None, faces.y_test), list(faces.class_names)
        train = f"{faces.report.readable} train files (streamed)"
    else:
        data, names, warnings = defend_data(args, size)
        train = f"{len(data[0])} train"
    if model is not None:
        check_class_count(model, names, f"the folder {args.data}" if args.data else "the synthetic faces")
        if not args.test_data:
            print(
                "note: the test images are a held-out share of --data; if --model was trained on those "
                "images, pass --test-data with images it never saw"
            )
    test_from = args.test_data or "held out"
    print(f"data: {train} / {len(data[1])} test ({test_from}) images at {size} px, {', '.join(names)}")
    for warning in warnings:
        print(f"warning: {warning}")
    return data, names, warnings


def _split(x: np.ndarray, y: np.ndarray, seed: int) -> list[np.ndarray]:
    from sklearn.model_selection import train_test_split

    share = min(MAX_TEST_SHARE, max(TEST_SHARE, TEST_IMAGES / len(x)))
    return train_test_split(x, y, test_size=share, stratify=y, random_state=seed)


def _same_images(args: argparse.Namespace, x_train: np.ndarray, x_test: np.ndarray) -> list[str]:
    """A warning when the test images are training images (the same folder, or identical arrays)."""
    if args.data and Path(args.data).resolve() == Path(args.test_data).resolve():
        return [
            f"--test-data is the --data folder ({args.test_data}): the models are tested on their "
            "training images, so every accuracy is optimistic; pass a folder of other images"
        ]
    seen = {image.tobytes() for image in x_train}
    shared = sum(image.tobytes() in seen for image in x_test)
    if not shared:
        return []
    return [
        f"{shared} of the {len(x_test)} --test-data images are also training images: those accuracies "
        "are optimistic; remove them from one of the folders"
    ]


def test_size_note(n: int) -> str | None:
    """For fewer than 50 test images: how much one image and the sampling noise weigh."""
    if n >= TEST_IMAGES:
        return None
    error = 100 * math.sqrt(0.25 / max(n, 1))
    return (
        f"only {n} test images: one image is {100 / max(n, 1):.1f} points of accuracy and the standard "
        f"error of an accuracy is up to {error:.1f} points; give more images (or --test-data) "
        "before comparing numbers closer than twice that"
    )
