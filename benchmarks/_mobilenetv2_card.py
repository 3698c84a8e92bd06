"""The robust MobileNetV2's card, its docs/defences.md section and its zoo files, from one run.

Split from robust_mobilenetv2.py (which trains and attacks): everything here reads the card only, so
the doc, the zoo card and `robustmask reproduce`'s "Table 5, as it should read" cannot disagree.
"""

from __future__ import annotations

import json
import math
import warnings

import keras
import pandas as pd

from robustmask.defenses._run_plan import plan_ramp
from robustmask.evaluation.results import markdown_table
from robustmask.zoo.robust import SHIPPED_MODELS, WEIGHTS_DIR

BEGIN, END = "<!-- mobilenetv2 table: begin -->", "<!-- mobilenetv2 table: end -->"


def ramp_epochs(args, n_train: int) -> str:
    """The eps ramp the trainer ran (``plan_ramp`` cuts one longer than half the run), in words."""
    steps = math.ceil(n_train / args.batch_size)
    with warnings.catch_warnings():  # the trainer already warned when it cut the ramp
        warnings.simplefilter("ignore")
        epochs = plan_ramp(args.eps_ramp, steps, args.epochs) / steps
    return f"{epochs:g} epoch{'' if epochs == 1 else 's'}"


def make_card(args, data, results, history, seconds, robust, retrain: str) -> dict:
    """The card: data, recipe, times, every table row, the targets' verdicts, what was not tested."""
    rows = {name: result["rows"] for name, result in results.items()}
    twin_clean = rows["undefended"][0]["Clean (%)"]
    by_eps = {round(r["Epsilon"], 6): r for r in rows["robust"]}
    robust_009, robust_8 = by_eps[round(0.009, 6)], by_eps[round(8 / 255, 6)]
    targets = {  # plain bools: NumPy bools are not JSON
        "clean within 5 points of the twin": bool(robust_009["Clean (%)"] >= twin_clean - 5),
        "worst case >= 75% at 0.009": bool(robust_009["Worst case (%)"] >= 75),
        "worst case >= 45% at 8/255": bool(robust_8["Worst case (%)"] >= 45),
        "worst case within 3 points of APGD-CE": bool(
            all(r["APGD-CE (%)"] - r["Worst case (%)"] <= 3 for r in (robust_009, robust_8))
        ),
    }
    return {
        "name": "robust_mobilenetv2",
        "architecture": f"MobileNetV2 alpha {args.alpha} (Keras applications; "
        + (
            "ImageNet base fine-tuned, inputs mapped to [-1, 1] inside the model"
            if args.base == "imagenet"
            else "from scratch"
        )
        + f"; BatchNorm momentum 0.9), global average pooling, Dense(64, relu), Dropout(0.2), Dense(3, softmax); "
        f"{args.image_size}x{args.image_size}x3 inputs in [0, 1]",
        "alpha": args.alpha,
        "classes": ["incorrect_mask", "with_mask", "without_mask"],
        "parameters": int(robust.count_params()),
        "data": {
            "train": f"synthetic_face_masks(n_per_class={args.n_per_class}, image_size={args.image_size}, seed=0)",
            "validation": f"synthetic_face_masks(n_per_class={args.val_per_class}, image_size={args.image_size}, seed=2)",
            "test": f"synthetic_face_masks(n_per_class={args.test_per_class}, image_size={args.image_size}, seed=1)",
        },
        "recipe": {
            "undefended twin": f"every layer, clean images, Adam "
            f"{args.clean_learning_rate if args.base == 'imagenet' else 1e-3} cosine to 0, batch {args.batch_size}, "
            f"{args.clean_epochs} epochs",
            "defense": f"{args.trainer} from the twin: eps 8/255, PGD-{args.train_steps} "
            f"(step 2.5 eps / {args.train_steps}, random start), "
            f"true labels, {args.epochs} epochs, eps ramp {ramp_epochs(args, len(data['train'][1]))}, Adam {args.learning_rate} "
            f"cosine to 0, batch {args.batch_size}, every layer trained, BatchNorm in training mode",
        },
        "training_seconds_2_cpu_cores": seconds,
        "history": history,
        "results": rows,
        "attack_seconds": {name: result["seconds"] for name, result in results.items()},
        "evaluation": f"{len(data['test'][1])} test faces; at 0.009 and 8/255 the worst case is per image "
        f"over APGD-CE and APGD-DLR ({args.apgd_iter} iterations), Square ({args.square_queries} queries), "
        "PGD-20 with 3 restarts and FGSM (AutoAttack's cascade); at Table 5's other epsilons over "
        "PGD-20 (one restart) and FGSM",
        "targets": targets,
        "sample_check": results["robust"]["sample"],
        "not_tested_against": [
            "real photographs (only robustmask's synthetic faces)",
            "physical attacks: printed perturbations, patches, stickers, lighting",
            "L2, L1 or other threat models; eps above 8/255",
            "adaptive attacks beyond AutoAttack's standard suite",
        ],
        "retrain": retrain,
    }


def section_text(card: dict) -> str:
    """docs/defences.md's marked MobileNetV2 section, from the card alone."""
    frames = []
    for name, rows in card["results"].items():
        frame = pd.DataFrame([{k: v for k, v in row.items() if k != "attacks"} for row in rows])
        frame.insert(0, "Model", name)
        frames.append(frame.sort_values("Epsilon", kind="stable"))
    table = pd.concat(frames, ignore_index=True)
    table.attrs["norm"] = "L-inf"
    seconds = card["training_seconds_2_cpu_cores"]
    attack = {name: sum(times.values()) for name, times in card["attack_seconds"].items()}
    robust_times = card["attack_seconds"]["robust"]
    slowest = max(robust_times, key=robust_times.get)  # the attack that dominates the cost
    verdicts = "\n".join(f"- {k}: {'met' if ok else 'MISSED'}" for k, ok in card["targets"].items())
    return (
        f"{markdown_table(table, percent_digits=1)}\n{card['evaluation']}.\n\n"
        f"Recipe: {card['recipe']['defense']}. Undefended twin: {card['recipe']['undefended twin']}. "
        f"Training time on 2 CPU cores: twin {seconds['undefended']:.0f} s, defence {seconds['robust']:.0f} s; "
        f"attacks (summed over shards and runs): undefended {attack['undefended']:.0f} s, robust "
        f"{attack['robust']:.0f} s ({slowest} {robust_times[slowest]:.0f} s of it).\n\n"
        f"Targets (issue 17):\n{verdicts}\n\n"
        f"`{card['retrain']}`\n"
    )


def ship(robust: keras.Model, card: dict) -> None:
    """Write the model (without its optimizer) and its card where `robustmask.zoo` loads them."""
    stem = SHIPPED_MODELS["robust_mobilenetv2"]
    WEIGHTS_DIR.mkdir(exist_ok=True)
    # Without the optimizer's state (Adam's moments would triple the file: 28 MB against 9 for alpha 1.0).
    path = WEIGHTS_DIR / f"{stem}.keras"
    robust.save(path)
    keras.models.load_model(path, compile=False).save(path)
    (WEIGHTS_DIR / f"{stem}.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(f"shipped {WEIGHTS_DIR / stem}.keras ({(WEIGHTS_DIR / f'{stem}.keras').stat().st_size} bytes)")


def write_section(text: str) -> None:
    from defences import write_between  # the one writer of docs/defences.md's marked tables

    write_between(BEGIN, END, text)
