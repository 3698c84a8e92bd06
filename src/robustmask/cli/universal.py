"""``robustmask universal``: one universal perturbation and one printable mask patch, tested on unseen faces.

Learns a universal perturbation (Shafahi et al. 2020, `robustmask.attacks.universal`) and an
adversarial patch on the mask region (Brown et al. 2017, `robustmask.attacks.AdversarialPatch`) on
one set of faces, and reports how often each changes the model's prediction on faces it never saw
(and on video frames, with --frames), next to random noise of the same L-inf size and a random
patch in the same place. Writes ``universal.npy``, ``patch.png`` (printable) and a results folder's
``tables/transfer.csv``, ``summary.json`` and ``report.html`` (`robustmask.cli._universal_output`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustmask.cli._universal_output import FILES  # noqa: F401  (the files it writes)
from robustmask.cli.options import add_class_names_option, eps_value
from robustmask.errors import RobustmaskError

if TYPE_CHECKING:  # pragma: no cover - the command imports TensorFlow only when it runs
    import keras
    import numpy as np


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    universal = commands.add_parser(
        "universal",
        help="learn one universal perturbation and one printable mask patch; fooling rates on unseen faces",
        description="Learn one universal perturbation (L-inf, sign-SGD, Shafahi et al. 2020) and one adversarial "
        "patch on the mask region (Brown et al. 2017) on a set of faces, and report their fooling rates "
        "(share of predictions changed) on unseen faces, next to random noise and a random patch. Writes "
        "universal.npy, patch.png (printable), tables/transfer.csv, summary.json and report.html to --out.",
    )
    universal.add_argument("--out", required=True, metavar="DIR", help="output folder")
    universal.add_argument(
        "--model",
        metavar="PATH",
        help="a saved classifier (.keras, SavedModel, Keras 2 .h5); default: train robustmask's small CNN here",
    )
    universal.add_argument(
        "--data", metavar="PATH", help="Kaggle-layout image folder (default: the embedded synthetic faces)"
    )
    universal.add_argument(
        "--frames",
        metavar="DIR",
        help="also test on the image files of DIR: face crops, e.g. cut from video frames (unlabelled)",
    )
    universal.add_argument(
        "--patch-target",
        default="with_mask",
        metavar="CLASS|none",
        help="class the patch pushes faces to (default: with_mask); none: any other class (untargeted)",
    )
    add_class_names_option(universal)
    kind: Any
    for flag, kind, default, text in (
        ("--eps", eps_value, 0.05, "L-inf size of the universal perturbation, e.g. 0.05 or 8/255"),
        ("--n-train", int, 200, "faces the perturbation and the patch learn from"),
        ("--n-test", int, 200, "unseen faces they are tested on"),
        ("--uap-epochs", int, 10, "passes of the universal perturbation over its faces"),
        ("--patch-steps", int, 50, "optimisation passes of the patch"),
        ("--width-cm", float, 5.0, "printed width of patch.png in cm"),
        ("--dpi", int, 300, "print resolution of patch.png"),
        ("--image-size", int, 48, "without --model: image size"),
        ("--epochs", int, 15, "without --model: training epochs"),
        ("--n-per-class", int, 300, "without --model: synthetic training faces per class"),
    ):
        universal.add_argument(flag, type=kind, default=default, help=f"{text} (default: {default})")
    universal.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    universal.add_argument("--seed", type=int, default=0)


def universal(args: argparse.Namespace) -> int:
    from robustmask._io import refuse_filled_folder

    refuse_filled_folder(args.out, args.overwrite)  # before any time is spent
    _check_args(args)
    import keras

    from robustmask.evaluation.patterns import learn_and_compare

    keras.utils.set_random_seed(args.seed)
    started = time.time()
    model = _model(args)
    size = (args.image_size,) * 2 if model is None else _input_size(model)
    faces, names = _faces(args, size)
    if model is not None:
        from robustmask.cli._data import check_class_count

        check_class_count(model, names, f"the folder {args.data}" if args.data else "the synthetic faces")
    target = _target(args.patch_target, names)
    frames = _frames(args.frames, size) if args.frames else None  # a bad folder fails before training
    if model is None:
        model, model_note = _train_cnn(args, *faces.pop("fit"), num_classes=len(names))
    else:
        model_note = args.model
    (x_train, y_train), (x_test, y_test) = faces["train"], faces["unseen faces"]
    sets: dict[str, Any] = {"train": (x_train, y_train), "unseen faces": (x_test, y_test)}
    if frames is not None:
        sets["video frames"] = frames
    print(
        f"model: {model_note}; {len(x_train)} training faces, {len(x_test)} unseen faces at {size[0]}x{size[1]}"
    )

    learnt = learn_and_compare(
        model,
        x_train,
        sets,
        eps=args.eps,
        epochs=args.uap_epochs,
        patch_epochs=args.patch_steps,
        jitter=max(1, size[0] // 24),
        target=target,
        class_names=names,
        seed=args.seed,
    )
    print(learnt.table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    target_name = None if target is None else names[target]
    from robustmask.cli._universal_output import write_outputs

    seconds = time.time() - started
    write_outputs(args, learnt.perturbation, learnt.patch, learnt.table, model_note, target_name, seconds)
    return 0


#: What `robustmask.cli.main` dispatches through: the command's name and what runs it.
NAME, run = "universal", universal


def _check_args(args: argparse.Namespace) -> None:
    from robustmask._validation import check_positive_int, check_positive_number

    if args.eps <= 0:  # above 1: refused with the units it probably meant (robustmask.cli.options)
        raise RobustmaskError(f"--eps must be positive, got {args.eps:g}")
    for option in ("n_train", "n_test", "uap_epochs", "patch_steps", "dpi", "epochs", "n_per_class"):
        check_positive_int(getattr(args, option), "--" + option.replace("_", "-"))
    check_positive_number(args.width_cm, "--width-cm")
    if args.model is None and (args.image_size < 8 or args.image_size % 8):
        raise RobustmaskError(
            f"--image-size must be a multiple of 8 (the CNN pools 3 times), got {args.image_size}"
        )


def _model(args: argparse.Namespace) -> keras.Model | None:
    """The model of --model (RGB [0, 1] inputs), or None: a CNN is trained here."""
    if not args.model:
        return None
    from robustmask.zoo import load_model

    return load_model(args.model)


def _input_size(model: keras.Model) -> tuple[int, int]:
    shape = getattr(model, "input_shape", None)
    if not isinstance(shape, tuple) or len(shape) != 4 or shape[1] is None or shape[2] is None:
        raise RobustmaskError(
            f"the model takes inputs {shape}; robustmask universal needs (height, width, 3) images"
        )
    return int(shape[1]), int(shape[2])


def _faces(
    args: argparse.Namespace, size: tuple[int, int]
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    """Faces to train a model on ("fit"), faces the patterns learn from ("train"), unseen faces; class names.

    The unseen faces are seen by neither the patterns nor a model trained here.
    """
    from robustmask.cli._data import synthetic_names
    from robustmask.datasets.source import load_faces

    n_train, n_test = args.n_train, args.n_test
    if not args.data:
        if size[0] != size[1]:
            raise RobustmaskError(
                f"synthetic faces are square; the model takes {size[0]}x{size[1]}: pass --data"
            )
        names = synthetic_names(args.class_names)
        k = len(names)

        def draw(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
            drawn = load_faces(
                None, image_size=size, n_per_class=n_per_class, seed=seed, class_names=args.class_names
            )
            return drawn.x_train, drawn.y_train

        # Three seeds, three independent draws of the same distribution.
        x, y = draw(-(-n_train // k), args.seed + 1)
        xt, yt = draw(-(-n_test // k), args.seed + 2)
        faces = {"train": (x[:n_train], y[:n_train]), "unseen faces": (xt[:n_test], yt[:n_test])}
        if args.model is None:
            faces["fit"] = draw(args.n_per_class, args.seed)
        return faces, names
    loaded = load_faces(args.data, image_size=size, seed=args.seed, class_names=args.class_names)
    x, y = loaded.x_train, loaded.y_train  # split=0: every image, shuffled with the seed
    if len(x) < n_train + n_test + 1:
        raise RobustmaskError(
            f"{args.data} holds {len(x)} images; --n-train {n_train} and --n-test {n_test} need more"
        )
    # The first n_test images are the unseen ones; the model trained here (if any) gets all the others.
    faces = {
        "unseen faces": (x[:n_test], y[:n_test]),
        "train": (x[n_test : n_test + n_train], y[n_test : n_test + n_train]),
        "fit": (x[n_test:], y[n_test:]),
    }
    return faces, list(loaded.class_names)


def _target(name: str, names: list[str]) -> int | None:
    """The class index of --patch-target, or None for an untargeted patch."""
    if name.lower() == "none":
        return None
    if name not in names:
        raise RobustmaskError(f"--patch-target {name!r}: the classes are {', '.join(names)} (or none)")
    return names.index(name)


def _train_cnn(
    args: argparse.Namespace, x: np.ndarray, y: np.ndarray, num_classes: int
) -> tuple[keras.Model, str]:
    from robustmask.defenses.presets import train_undefended

    # BatchNorm statistics of the trained network, not running averages
    model = train_undefended(
        x, y, epochs=args.epochs, seed=args.seed, num_classes=num_classes, recalibrate=True
    )
    note = f"robustmask.zoo.facemask_cnn trained here on {len(x)} images ({args.data or 'synthetic faces'}, "
    return model, note + f"{args.epochs} epochs)"


def _frames(folder: str, size: tuple[int, int]) -> np.ndarray:
    import numpy as np

    from robustmask.datasets import load_image

    suffixes = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
    files = (
        sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in suffixes)
        if Path(folder).is_dir()
        else []
    )
    if not files:
        raise RobustmaskError(
            f"--frames {folder}: no image files (.png, .jpg, .jpeg, .bmp, .webp) in that folder"
        )
    return np.stack([load_image(f, image_size=size) for f in files])
