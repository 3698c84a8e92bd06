"""``robustmask universal``'s output folder: universal.npy, patch.png, transfer.csv and summary.json."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

FILES = ("universal.npy", "patch.png", "transfer.csv", "summary.json")


def write_outputs(
    args: argparse.Namespace,
    pattern: np.ndarray,
    patch: np.ndarray,
    table: pd.DataFrame,
    model_note: str,
    target: str | None,
    seconds: float,
) -> None:
    from robustmask._io import replaced_folder, write_text_atomically
    from robustmask.evaluation.printable import (
        print_size_cm,
        save_printable_patch,
        save_universal_perturbation,
    )
    from robustmask.evaluation.results import versions

    with replaced_folder(args.out, overwrite=args.overwrite) as folder:
        save_universal_perturbation(pattern, folder / "universal.npy")
        save_printable_patch(patch, folder / "patch.png", width_cm=args.width_cm, dpi=args.dpi)
        width_cm, height_cm = print_size_cm(folder / "patch.png")
        write_text_atomically(folder / "transfer.csv", table.to_csv(index=False))
        rates = {
            f"{attack} / {name}": round(float(rate), 2)
            for attack, name, rate in zip(table["Attack"], table["Set"], table["Fooling rate (%)"])
        }
        targets = {}  # share of faces predicted as the patch's target, clean -> patched
        if target is not None:
            for attack, name, clean, patched in zip(
                table["Attack"], table["Set"], table["Clean target rate (%)"], table["Target rate (%)"]
            ):
                if clean == clean:  # NaN for the untargeted rows
                    targets[f"{attack} / {name}"] = [round(float(clean), 2), round(float(patched), 2)]
        summary = {
            "title": "A universal perturbation and a printable patch: fooling rates on unseen faces",
            "kind": "universal",
            "command": shlex.join(["robustmask", *sys.argv[1:]]),
            "seed": args.seed,
            "settings": {k: v for k, v in vars(args).items() if k not in ("func", "overwrite")},
            "model": model_note,
            "fooling_rate_definition": "share of images whose predicted class changes (Moosavi-Dezfooli et al. 2017)",
            "fooling_rates_percent": rates,
            "target_rates_percent": targets,
            "patch": {
                "file": "patch.png",
                "pixels": list(patch.shape[:2]),
                "target": target,
                "print_width_cm": round(width_cm, 2),
                "print_height_cm": round(height_cm, 2),
                "dpi": args.dpi,
                "region": "mask region of a centred face (robustmask.attacks.art.patch.MASK_REGION)",
            },
            "universal": {
                "file": "universal.npy",
                "eps": args.eps,
                "norm": "L-inf",
                "shape": list(pattern.shape),
            },
            "seconds": round(seconds, 1),
            "versions": versions(),
            "notes": [
                "A digital test: the effect of a printed patch depends on printing, lighting and pose.",
            ],
        }
        write_text_atomically(folder / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    print(f"wrote {args.out}/ ({', '.join(FILES)}); print patch.png at {width_cm:.1f} x {height_cm:.1f} cm")
