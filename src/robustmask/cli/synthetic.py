"""``robustmask synthetic``: write the embedded synthetic faces as a Kaggle-layout folder of PNGs."""

from __future__ import annotations

import argparse

from robustmask._deprecation import add_deprecated_flags
from robustmask.cli.options import add_class_names_option, add_n_per_class_option

NAME = "synthetic"
#: The old spelling of --class-names here: still accepted, with a warning.
_RENAMED_FLAGS = {"--classes": "--class-names"}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    synthetic = commands.add_parser(
        NAME,
        help="write the embedded synthetic faces as a Kaggle-layout folder",
        description="Write the synthetic face-mask data set as PNG files in the Kaggle layout.",
    )
    synthetic.add_argument("--out", required=True, metavar="DIR", help="folder to write (created)")
    add_n_per_class_option(synthetic, 200, "images per class (default: %(default)s)")
    synthetic.add_argument(
        "--image-size",
        type=int,
        default=64,
        help="side of the square images in pixels (default: %(default)s)",
    )
    add_class_names_option(
        synthetic,
        help="only these classes, in this label order (default: incorrect_mask with_mask without_mask), "
        "e.g. --class-names with_mask without_mask for a 2-class set",
    )
    add_deprecated_flags(synthetic, _RENAMED_FLAGS)
    synthetic.add_argument(
        "--seed", type=int, default=0, help="the same seed writes the same images (default: %(default)s)"
    )
    synthetic.add_argument(
        "--overwrite", action="store_true", help="replace the class folders of an earlier write"
    )
    return synthetic


def run(args: argparse.Namespace) -> int:
    from robustmask.cli._data import synthetic_names
    from robustmask.datasets import write_synthetic_face_mask_directory

    names = synthetic_names(args.class_names)
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
