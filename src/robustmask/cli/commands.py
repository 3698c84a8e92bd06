"""What each `robustmask` sub-command does; `main.py` parses, these run."""

from __future__ import annotations

import argparse
import ast
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robustmask._io import write_atomically
from robustmask.errors import RobustmaskError

if TYPE_CHECKING:  # pragma: no cover - the commands import TensorFlow only when they run
    from collections.abc import Iterable

    import keras

    from robustmask.attacks.base import Attack


def reproduce(args: argparse.Namespace) -> int:
    import robustmask
    from robustmask.reproduce import StudyConfig, run_study

    overrides = {
        key: value
        for key, value in {
            "data": args.data,
            "seed": args.seed,
            "weights": args.weights,
            "architecture": args.architecture,
            "attack": args.attack,
            "clip": not args.no_clip,
            "image_size": args.image_size,
            "epochs": args.epochs,
            "n_per_class": args.n_per_class,
            "subset": args.subset,
            "defense_epochs": args.defense_epochs,
            "defense_source": args.defense_source,
            "robust": False if args.no_robust else None,
            "robust_defense": args.robust_defense,
            "robust_epochs": args.robust_epochs,
        }.items()
        if value is not None
    }
    config = StudyConfig.full(**overrides) if args.full else StudyConfig.quick(**overrides)
    robustmask.attacks.get(config.attack)  # a typo fails now, not after the model has trained
    run_study(config, args.out, overwrite=args.overwrite, progress=not args.no_progress)
    return 0


def attack(args: argparse.Namespace) -> int:
    from robustmask.attacks import attack_report
    from robustmask.evaluation import named_norm

    if args.save:
        refuse_existing_file(args.save, "--save", args.overwrite)  # before the attack's time is spent
    attacker = _attacker(args)  # a typo fails before the model loads
    model = load_model(args)
    x, y, names = _data_for(model, args)
    eps = None if not attacker.eps_bounded else (args.eps if len(args.eps) != 1 else args.eps[0])
    # One run: the images saved are the ones reported (a random attack run again would give others).
    report, images = attack_report(attacker, model, x, y, eps=eps, return_adversarial=True)
    print(
        f"{attacker.name} ({attacker.norm.label}) on {args.model}: {len(x)} images, classes {', '.join(names)}"
    )
    print(_clean_accuracy_line(model, attacker, x, y))
    print(named_norm(report).to_string(index=False))
    print(
        "success rate: the share of all images the attack made the model predict as their target"
        if attacker.targeted
        else "success rate: the share of the images the model classified correctly before the attack "
        "whose class the attack changed (misclassified images are not counted)"
    )
    if args.save:
        adversarial = images[0] if eps is None or np.ndim(eps) == 0 else np.stack(images)
        write_atomically(
            args.save,
            lambda tmp: np.savez_compressed(
                tmp,
                adversarial=adversarial,
                clean=x,
                labels=y,
                class_names=np.asarray(names),
                epsilons=np.atleast_1d(np.asarray(eps if eps is not None else np.nan, np.float64)),
            ),
            suffix=".npz",
        )
        print(f"saved {args.save}")
    return 0


def _clean_accuracy_line(model: keras.Model, attacker: Attack, x: np.ndarray, y: np.ndarray) -> str:
    """Clean accuracy: the images the attack's success rate is counted on are the correct ones."""
    predicted = attacker.predict_labels(model, x)
    correct = int(np.sum(predicted == y))
    return (
        f"clean accuracy: {100 * correct / len(y):.2f}% ({correct} of {len(y)} images correctly classified)"
    )


def _attacker(args: argparse.Namespace) -> Attack:
    """The attack the command line names, with its --param values and --norm."""
    import robustmask

    params = _params(args.param)
    if args.norm is not None:
        if "norm" in params:
            raise RobustmaskError("give the norm once: --norm or --param norm=..., not both")
        params["norm"] = args.norm
    return robustmask.attacks.get(args.attack, **params)


def attacks(args: argparse.Namespace) -> int:
    """Every attack name with what it is and the --param keys it takes (plug-ins included)."""
    from robustmask._registry import parameter_names
    from robustmask.attacks import available, describe
    from robustmask.attacks.registry import resolve
    from robustmask.errors import AttackError

    for name in available():
        try:
            factory = resolve(name)
            info = describe(name)
        except AttackError as error:  # a missing package or a broken plug-in: say so, list the rest
            print(f"{name:<14} (cannot be loaded: {error})")
            continue
        summary = ((factory.__doc__ or "").strip().splitlines() or [""])[0]
        print(f"{name:<14} {summary}")
        print(f"{'':<14} --param keys: {', '.join(parameter_names(factory)) or '(none)'}")
        print(f"{'':<14} kind: {info.kind}, norm: {info.norm}, {info.steps}")
    return 0


def seed_weights(args: argparse.Namespace) -> int:
    from robustmask import zoo

    # The library call keeps an existing cache file and returns it: the command refuses instead of
    # printing "wrote" over a file it did not write.
    folder = Path(args.cache_dir).expanduser() if args.cache_dir else zoo.keras_models_cache_dir()
    target = folder / zoo.imagenet_weights_filename(224)
    if target.is_file() and not args.overwrite:
        raise RobustmaskError(f"{target} exists; pass --overwrite to replace it (nothing was written)")
    path = zoo.seed_imagenet_weights(cache_dir=args.cache_dir, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0


def synthetic(args: argparse.Namespace) -> int:
    from robustmask.datasets import write_synthetic_face_mask_directory

    from robustmask.cli._data import synthetic_names

    names = synthetic_names(args.classes)
    path = write_synthetic_face_mask_directory(
        args.out,
        n_per_class=args.n_per_class,
        image_size=args.image_size,
        seed=args.seed,
        overwrite=args.overwrite,
        classes=names,
    )
    print(f"wrote {len(names) * args.n_per_class} images of {', '.join(names)} to {path}")
    return 0


# ---------------------------------------------------------------------------------------------- helpers
def load_model(args: argparse.Namespace) -> keras.Model:
    """The model at --model through `robustmask.zoo.load_model` (.keras, SavedModel, Keras 2 HDF5),
    taking [0, 1] pixels; prints the input convention chosen so that a wrong guess is seen."""
    from robustmask.zoo import load_model as zoo_load_model

    model = zoo_load_model(args.model, inputs=args.inputs, safe_mode=not args.unsafe)
    print(f"{args.model}: {model.input_convention}")
    return model


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--inputs and --unsafe, for every command that takes --model."""
    parser.add_argument(
        "--inputs",
        default="auto",
        choices=["auto", "unit", "pixels", "mobilenet_v2"],
        help="pixel range the saved model expects: auto (from its first layers, else [0, 1]), unit [0, 1], "
        "pixels [0, 255], mobilenet_v2 [-1, 1]; robustmask always attacks [0, 1] images (default: auto)",
    )
    parser.add_argument(
        "--unsafe",
        action="store_true",
        help="allow Lambda layers stored as Python code in the model file (runs that code: trusted files only)",
    )


def _data_for(model: keras.Model, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images at the model's input size, their labels and class names (`robustmask.cli._data.data_for`)."""
    from robustmask.cli._data import data_for

    return data_for(model, args)


def _params(pairs: Iterable[str]) -> dict[str, Any]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RobustmaskError(f"--param {pair!r}: expected KEY=VALUE, e.g. --param steps=20")
        try:
            params[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key.strip()] = value
    return params


def refuse_existing_file(path: str | os.PathLike[str], option: str, overwrite: bool) -> None:
    """Refuse to write over an existing `path` unless --overwrite was given (and it is a file)."""
    path = Path(path)
    if path.is_dir():
        raise RobustmaskError(f"{path} is a folder; give a file path to {option}")
    if path.exists() and not overwrite:
        raise RobustmaskError(
            f"{path} exists; pass --overwrite to replace it, or choose another {option} (nothing was written)"
        )
