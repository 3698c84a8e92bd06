"""The paper's architecture, defended: a robust MobileNetV2 judged by AutoAttack's standard suite.

One command fine-tunes the paper's MobileNetV2 (alpha 1.0, ImageNet base, 96 px) on the embedded
synthetic faces, clean (the undefended twin) and then with PGD adversarial training (Madry et al.
2018) from the twin, attacks both on faces neither saw and writes docs/defences.md's MobileNetV2
section (``--base scratch --alpha 0.35`` trains the small width from nothing instead):

    python benchmarks/robust_mobilenetv2.py --ship      # train, judge, write the doc, ship the zoo model
    python benchmarks/robust_mobilenetv2.py --n-per-class 40 --test-per-class 10 --epochs 1 \\
        --clean-epochs 1 --apgd-iter 5 --square-queries 20 --shards 1 --no-write --out runs/mnv2-smoke  # a smoke run

The worst case per eps is counted per image over every attack run at that eps (one number): at the
headline budgets (0.009, the paper's largest, and 8/255) AutoAttack's cascade (APGD-CE, APGD-DLR,
Square) at full strength plus PGD-20 with 3 restarts and FGSM; at the paper's other epsilons (Table
5's rows) PGD-20 (one restart) and FGSM. Each stage is kept in --out (the twin, the training
checkpoints, the robust model, each model's evaluation), so a command started again resumes where it
stopped. The full suite on the robust model takes hours on 2 CPU cores (Square's 5,000 queries: about
3-4 hours for 300 faces with ART's Square, docs/defences.md; the native SquareAttack it runs now took
0.38x of ART's time in benchmarks/bench_square.py), so it runs in --shards shards of 64 faces, each written
when it finishes (robustmask.evaluation.shards): rerun the command to go on, or give each task of a
job array its own --only-shard I.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from robustmask import paper  # noqa: E402
from robustmask.attacks import FGSM, PGD  # noqa: E402
from robustmask.datasets import synthetic_face_masks  # noqa: E402
from robustmask.defenses import run_history  # noqa: E402
from robustmask.evaluation import robustness_table, standard_suite  # noqa: E402
from robustmask.evaluation.shards import RobustnessSpec, evaluate_shard, merge_shards, shard_file  # noqa: E402
from robustmask.zoo import facemask_mobilenetv2  # noqa: E402

from _mobilenetv2_card import make_card, section_text, ship, write_section  # noqa: E402

HEADLINE_EPS = (0.009, 8 / 255)
PAPER_EPS = tuple(float(e) for e in paper.TABLE5["Epsilon"] if e > 0)
CHUNK = 64  # faces attacked together; shards are whole chunks
SAMPLE = 60  # test faces of the card's sample check (tests/test_zoo_robust.py recomputes it)
HEAD = {"head": (64,), "dropout": (0.2,)}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", choices=("imagenet", "scratch"), default="imagenet")
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--n-per-class", type=int, default=1000, help="training faces per class")
    parser.add_argument("--test-per-class", type=int, default=100, help="test faces per class (unseen)")
    parser.add_argument("--val-per-class", type=int, default=40, help="robust-validation faces per class")
    parser.add_argument("--clean-epochs", type=int, default=5)
    parser.add_argument("--clean-learning-rate", type=float, default=1e-4)
    parser.add_argument("--epochs", type=int, default=21, help="adversarial-training epochs")
    parser.add_argument("--eps-ramp", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--trainer", choices=("pgd-at", "trades"), default="pgd-at")
    parser.add_argument(
        "--train-steps", type=int, default=10, help="PGD steps of the inner attack in training"
    )
    parser.add_argument("--apgd-iter", type=int, default=100)
    parser.add_argument("--square-queries", type=int, default=5000)
    parser.add_argument(
        "--shards", type=int, default=5, help=f"shards of the suite's evaluation ({CHUNK}-face chunks)"
    )
    parser.add_argument(
        "--only-shard", type=int, help="run only this shard (0-based), e.g. one task of a job array"
    )
    parser.add_argument("--out", default="runs/robust_mobilenetv2", help="keeps every stage (resumable)")
    parser.add_argument("--ship", action="store_true", help="write the model and its card into the zoo")
    parser.add_argument("--no-write", action="store_true", help="leave docs/defences.md alone")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_data(args)
    twin, twin_s = train_twin(args, data, out)
    robust, robust_s, history = train_robust(args, data, twin, out)
    results = {
        name: evaluated(args, model, data, out, name)
        for name, model in (("undefended", twin), ("robust", robust))
    }
    if any(result is None for result in results.values()):
        return 0  # shards still to run: said above
    seconds = {"undefended": twin_s, "robust": robust_s}
    card = make_card(args, data, results, history, seconds, robust, retrain_command(args))
    # This command's own time; a resumed run reuses earlier stages, so the card's attack_seconds
    # (summed over every shard and run) is what the suite cost.
    card["total_seconds"] = round(time.perf_counter() - started, 1)
    (out / "card.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    text = section_text(card)
    print(text)
    if args.ship:
        ship(robust, card)
    if not args.no_write:
        write_section(text)
    return 0


def load_data(args: argparse.Namespace) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    size = args.image_size
    return {
        "train": synthetic_face_masks(n_per_class=args.n_per_class, image_size=size, seed=0),
        "validation": synthetic_face_masks(n_per_class=args.val_per_class, image_size=size, seed=2),
        "test": synthetic_face_masks(n_per_class=args.test_per_class, image_size=size, seed=1),
    }


def build(args: argparse.Namespace) -> keras.Model:
    """The twin's architecture: MobileNetV2 (ImageNet base, or from nothing) and a small head.

    BatchNorm momentum 0.9 either way: with Keras' 0.999 the moving statistics of a from-scratch base
    stay at chance, and those of the ImageNet base adapt to faces only after thousands of updates.
    """
    imagenet = args.base == "imagenet"
    model = facemask_mobilenetv2(
        (args.image_size, args.image_size, 3),
        weights="imagenet" if imagenet else None,
        alpha=args.alpha,
        freeze_base=False,
        mobilenet_preprocessing=imagenet,
        batchnorm_momentum=0.9,
        compile=False,
        **HEAD,
    )
    steps = -(-3 * args.n_per_class // args.batch_size) * args.clean_epochs
    rate = args.clean_learning_rate if imagenet else 1e-3
    model.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(rate, max(1, steps))),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def train_twin(args: argparse.Namespace, data: dict, out: Path) -> tuple[keras.Model, float]:
    """The undefended twin: the same architecture and data, trained on clean images only."""
    path, times = out / "undefended.keras", out / "seconds.json"
    if path.is_file():
        print(f"undefended twin: reusing {path}")
        return keras.models.load_model(path), json.loads(times.read_text())["undefended"]
    keras.utils.set_random_seed(0)
    model = build(args)
    started = time.perf_counter()
    model.fit(*data["train"], epochs=args.clean_epochs, batch_size=args.batch_size, verbose=2)
    seconds = round(time.perf_counter() - started, 1)
    model.save(path)
    times.write_text(json.dumps({"undefended": seconds}))
    return model, seconds


RUN_ONLY = ("out", "shards", "only_shard", "ship", "no_write")  # where and how, not what is trained


def retrain_command(args: argparse.Namespace) -> str:
    """The command that trains and judges this model again: every recipe setting not at its default."""
    defaults = vars(parse([]))
    changed = [
        f"--{name.replace('_', '-')} {value}"
        for name, value in vars(args).items()
        if name not in RUN_ONLY and value != defaults[name]
    ]
    return " ".join(["python benchmarks/robust_mobilenetv2.py", *changed, "--ship"])


def trainer(args: argparse.Namespace):
    from robustmask.defenses import PGDAdversarialTrainer, TRADESTrainer

    settings = dict(
        eps=8 / 255,
        steps=args.train_steps,
        epochs=args.epochs,
        batch_size=args.batch_size,
        layers="all",
        batchnorm="train",
        learning_rate=args.learning_rate,
        eps_ramp=args.eps_ramp,
        seed=0,
    )
    return (PGDAdversarialTrainer if args.trainer == "pgd-at" else TRADESTrainer)(**settings)


def train_robust(
    args: argparse.Namespace, data: dict, twin: keras.Model, out: Path
) -> tuple[keras.Model, float, dict]:
    path, times = out / "robust.keras", out / "seconds.json"
    recorded = json.loads(times.read_text())
    if path.is_file() and "robust" in recorded:
        print(f"robust model: reusing {path}")
        return keras.models.load_model(path), recorded["robust"], recorded.get("history", {})
    robust, _ = trainer(args).fit(
        twin, data["train"], validation_data=data["validation"], checkpoint_dir=out / "checkpoints", verbose=2
    )
    robust.save(path)
    # Every epoch, those of earlier (killed or stopped) starts included: fit's History has this start's only.
    record = run_history(out / "checkpoints")
    seconds = round(sum(record.pop("seconds")), 1)
    record.pop("epoch")
    logs = {k: [round(float(v), 4) for v in values] for k, values in record.items()}
    times.write_text(json.dumps({**recorded, "robust": seconds, "history": logs}))
    return robust, seconds, logs


def evaluated(args: argparse.Namespace, model: keras.Model, data: dict, out: Path, name: str) -> dict | None:
    """evaluate(), kept in --out; None while shards of its suite are still to run (rerun to go on)."""
    path = out / f"evaluation-{name}.json"
    if path.is_file():
        print(f"evaluation: reusing {path}")
        return json.loads(path.read_text())
    headline = headline_table(args, model, data, out / f"shards-{name}")
    if headline is None:
        return None
    results = evaluate(model, data, headline)
    path.write_text(json.dumps(results, indent=2, default=float))
    return results


def headline_table(
    args: argparse.Namespace, model: keras.Model, data: dict, folder: Path
) -> pd.DataFrame | None:
    """The full suite's cascade at the headline epsilons, run as --shards shards of CHUNK-image chunks.

    Each shard is a file in `folder` (robustmask.evaluation.shards), written when it finishes, so the
    hours this takes on 2 CPU cores can be spread over runs, or over the tasks of a job array
    (--only-shard I); the table is merged once every shard is there.
    """
    x, y = data["test"]
    strong = {"FGSM": FGSM(), "PGD-20": PGD(steps=20, restarts=3, seed=0)}
    suite = standard_suite(num_classes=3, apgd_iter=args.apgd_iter, square_queries=args.square_queries)
    spec = RobustnessSpec({**suite, **strong}, HEADLINE_EPS, protocol="cascade", chunk_size=CHUNK)
    for shard in range(args.shards):
        path = shard_file(folder, shard, args.shards)
        if path.is_file() or args.only_shard not in (None, shard):
            continue
        started = time.perf_counter()
        keras.utils.set_random_seed(
            shard
        )  # APGD's random start and Square draw from NumPy's global generator
        evaluate_shard(spec, model, (x, y), shard=shard, num_shards=args.shards, out=folder)
        print(
            f"{folder.name}: shard {shard} of {args.shards} in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    missing = [i for i in range(args.shards) if not shard_file(folder, i, args.shards).is_file()]
    if missing:
        print(f"{folder.name}: shards {missing} of {args.shards} still to run; rerun the command to go on")
        return None
    return merge_shards([folder])


def evaluate(model: keras.Model, data: dict, headline: pd.DataFrame) -> dict:
    """Clean accuracy, each attack's own accuracy, and the per-image worst case, per eps."""
    x, y = data["test"]
    strong = {"FGSM": FGSM(), "PGD-20": PGD(steps=20, restarts=3, seed=0)}
    cheap = {"FGSM": FGSM(), "PGD-20": PGD(steps=20, seed=0)}  # Table 5's other rows: one restart
    alone = robustness_table(model, (x, y), strong, HEADLINE_EPS)
    middle = PAPER_EPS[:-1]
    alone_middle = robustness_table(model, (x, y), cheap, middle)  # its worst case is per image too
    alone = pd.concat([alone, alone_middle], ignore_index=True)
    rows = []
    for eps in HEADLINE_EPS + middle:
        own = alone[np.isclose(alone["Epsilon"], eps)].iloc[0]
        source = headline if eps in HEADLINE_EPS else alone_middle
        cascade = source[np.isclose(source["Epsilon"], eps)].iloc[0]
        rows.append(
            {
                "Epsilon": eps,
                "Clean (%)": own["Clean (%)"],
                "FGSM (%)": own["FGSM (%)"],
                "PGD-20 (%)": own["PGD-20 (%)"],
                "APGD-CE (%)": cascade["APGD-CE (%)"] if eps in HEADLINE_EPS else None,
                "Worst case (%)": cascade["Worst case (%)"],
                "attacks": list(source.attrs["kinds"]),
            }
        )
    return {"rows": rows, "seconds": {**headline.attrs["seconds"]}, "sample": sample_check(model, data)}


def sample_check(model: keras.Model, data: dict) -> dict:
    """Counts a test can recompute in seconds: the first SAMPLE test faces, clean and under PGD-20."""
    x, y = data["test"][0][:SAMPLE], data["test"][1][:SAMPLE]
    pgd = PGD(steps=20, seed=0)
    counts = {"images": SAMPLE, "clean_correct": correct(model, x, y)}
    for eps in HEADLINE_EPS:
        counts[f"pgd20_correct_at_{eps:.6f}"] = correct(model, pgd(model, x, y, eps=eps), y)
    return counts


def correct(model: keras.Model, x: np.ndarray, y: np.ndarray) -> int:
    return int(np.sum(np.argmax(model.predict(x, verbose=0), axis=1) == y))


if __name__ == "__main__":
    sys.exit(main())
