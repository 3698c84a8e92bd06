"""``robustmask universal``'s results folder, through `ResultsWriter`: the learnt universal.npy and
patch.png (printable), the fooling rates (``tables/transfer.csv``), summary.json and report.html."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

FILES = ("universal.npy", "patch.png", "tables/transfer.csv", "summary.json", "report.html")
FOOLING_RATE = "share of images whose predicted class changes (Moosavi-Dezfooli et al. 2017)"


def write_outputs(
    args: argparse.Namespace,
    pattern: np.ndarray,
    patch: np.ndarray,
    table: pd.DataFrame,
    model_note: str,
    target: str | None,
    seconds: float,
) -> None:
    """The results folder: the patterns, the fooling-rate table and figure, report.html, summary.json."""
    from robustmask._io import replaced_folder
    from robustmask.evaluation.printable import (
        print_size_cm,
        save_printable_patch,
        save_universal_perturbation,
    )

    with replaced_folder(args.out, overwrite=args.overwrite) as folder:
        save_universal_perturbation(pattern, folder / "universal.npy")
        save_printable_patch(patch, folder / "patch.png", width_cm=args.width_cm, dpi=args.dpi)
        size_cm = print_size_cm(folder / "patch.png")
        writer = _report(args, folder, pattern, patch, table, model_note, target)
        extra = {
            "model": model_note,
            "fooling_rate_definition": FOOLING_RATE,
            **_rates(table, target),
            "patch": _patch_summary(args, patch, target, size_cm),
            "universal": {
                "file": "universal.npy",
                "eps": args.eps,
                "norm": "L-inf",
                "shape": list(pattern.shape),
            },
            "seconds": round(seconds, 1),
        }
        writer.finish(extra)
    print(
        f"wrote {args.out}/ ({', '.join(FILES)}); print patch.png at {size_cm[0]:.1f} x {size_cm[1]:.1f} cm"
    )


def _report(
    args: argparse.Namespace,
    folder: Any,
    pattern: np.ndarray,
    patch: np.ndarray,
    table: pd.DataFrame,
    model_note: str,
    target: str | None,
) -> Any:
    """A ResultsWriter holding report.html's sections (finished by the caller with summary.json's extras)."""
    from robustmask.evaluation import plots
    from robustmask.evaluation.results import ResultsWriter

    writer = ResultsWriter(
        folder,
        title="A universal perturbation and a printable patch: fooling rates on unseen faces",
        kind="universal",
        command=shlex.join(["robustmask", *sys.argv[1:]]),
        seed=args.seed,
        settings={k: v for k, v in vars(args).items() if k not in ("func", "overwrite")},
    )
    writer.section("Fooling rates", _text(args, table, model_note, target))
    writer.table("transfer", table, "Fooling rates (%) of each pattern on each set of faces")
    writer.figure("patterns", plots.image_row(_shown(pattern, patch)), "The learnt patterns")
    writer.note("A digital test: the effect of a printed patch depends on printing, lighting and pose.")
    return writer


def _patch_summary(
    args: argparse.Namespace, patch: np.ndarray, target: str | None, size_cm: tuple[float, float]
) -> dict[str, Any]:
    return {
        "file": "patch.png",
        "pixels": list(patch.shape[:2]),
        "target": target,
        "print_width_cm": round(size_cm[0], 2),
        "print_height_cm": round(size_cm[1], 2),
        "dpi": args.dpi,
        "region": "mask region of a centred face (robustmask.attacks.art.patch.MASK_REGION)",
    }


def _rates(table: pd.DataFrame, target: str | None) -> dict[str, dict[str, Any]]:
    """summary.json's fooling rates ("attack / set" -> %) and target rates (-> [clean %, patched %])."""
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
    return {"fooling_rates_percent": rates, "target_rates_percent": targets}


def _text(args: argparse.Namespace, table: pd.DataFrame, model_note: str, target: str | None) -> str:
    """What was learnt and measured, and the rates on the unseen faces: learnt against random."""
    aim = "any other class" if target is None else f"the class {target}"
    *others, last = dict.fromkeys(str(name) for name in table["Set"])
    sets = f"{', '.join(others)} and {last}" if others else last
    unseen = table[table["Set"] == "unseen faces"]
    rates = "; ".join(
        f"{attack} {rate:.1f}%" for attack, rate in zip(unseen["Attack"], unseen["Fooling rate (%)"])
    )
    return (
        f"Model: {model_note}. A universal perturbation (L-inf {args.eps:g}, Shafahi et al. 2020) and a patch on "
        f"the mask region pushing faces to {aim} (Brown et al. 2017) were learnt on the train faces, and tested "
        f"on {sets}, next to random sign noise of the same size and a random patch in the same place. The "
        f"fooling rate is the {FOOLING_RATE}.\n\nOn the unseen faces: {rates}."
    )


def _shown(pattern: np.ndarray, patch: np.ndarray) -> dict[str, np.ndarray]:
    """The perturbation scaled to fill [0, 1] around grey (0), and the patch as it is."""
    import numpy as np

    peak = float(np.max(np.abs(pattern)))
    scale = 0.5 / peak if peak > 0 else 0.0
    return {
        f"universal perturbation (x {scale:.3g}, grey = 0)": np.clip(0.5 + scale * pattern, 0.0, 1.0),
        "mask patch": np.clip(patch, 0.0, 1.0),
    }
