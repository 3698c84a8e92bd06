"""The tasks of benchmarks/run.py, one function each, returning rows of the table.

A row pairs a robustmask figure with its comparison from the same run. ``kind="slower"``: the
ratio is robustmask / comparison and the target an upper bound (a limit robustmask cannot beat);
``kind="faster"``: comparison / robustmask, a lower bound (how many times robustmask is faster).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

import _bench
from _extras import gpu_section, loader
from _trainers import memory, trainers

PAPER_EPSILONS = [0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009]


@dataclass
class Context:
    args: Any
    model: Any
    x: np.ndarray
    y: np.ndarray
    notes: list[str] = field(default_factory=list)
    trainer_peaks: dict[str, float] = field(default_factory=dict)  # MB, measured by the trainer task
    sweep_ips: float = 0.0  # images/s of the Table-4 sweep: what an evaluation consumes


def row(
    task: str,
    rm: float | None,
    comp_name: str,
    comp: float | None,
    *,
    kind: str = "slower",
    target: float | None = None,
    ips: float | None = None,
    rss: str = "",
    text: str = "",
) -> dict:
    ratio = None
    if rm is not None and comp is not None and rm > 0 and comp > 0:
        ratio = rm / comp if kind == "slower" else comp / rm
    met = (
        "n/a"
        if target is None or ratio is None
        else ("yes" if (ratio <= target if kind == "slower" else ratio >= target) else "no")
    )
    target_text = "—" if target is None else (f"<= {target:g}x" if kind == "slower" else f">= {target:g}x")
    return dict(
        task=task,
        rm=rm,
        comp_name=comp_name,
        comp=comp,
        ratio=ratio,
        kind=kind,
        target=target_text,
        met=met,
        ips=ips,
        rss=rss,
        text=text,
    )


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _ratio(r: dict) -> str:
    if r["text"]:
        return r["text"]
    if r["ratio"] is None:
        return "—"
    return f"{r['ratio']:.2f}x" + (" of it" if r["kind"] == "slower" else " faster")


def row_markdown(r: dict) -> str:
    ips = "—" if r["ips"] is None else f"{r['ips']:.0f}"
    cells = [
        r["task"],
        _num(r["rm"]),
        r["comp_name"],
        _num(r["comp"]),
        _ratio(r),
        r["target"],
        r["met"],
        ips,
        r["rss"] or "—",
    ]
    return "| " + " | ".join(cells) + " |"


def row_line(r: dict) -> str:
    return (
        f"{r['task']}: {_num(r['rm'])} s vs {r['comp_name']} {_num(r['comp'])} s -> {_ratio(r)} ({r['met']})"
    )


def _art_classifier(model: Any, train: bool = False) -> Any:
    import keras
    from art.estimators.classification import TensorFlowV2Classifier

    if train:  # ART trains its own copy, from the same weights
        model = keras.models.clone_model(model)
        model.set_weights(model.get_weights())
    return TensorFlowV2Classifier(
        model,
        nb_classes=3,
        input_shape=tuple(model.input_shape[1:]),
        loss_object=keras.losses.CategoricalCrossentropy(),
        optimizer=keras.optimizers.Adam(1e-3) if train else None,
        clip_values=(0.0, 1.0),
    )


# ---------------------------------------------------------------------------------------- sweep
def sweep(ctx: Context) -> list[dict]:
    """Table 4: FGSM at the paper's 10 epsilons + clean, against the bare limit and ART's loop."""
    import robustmask
    from art.attacks.evasion import FastGradientMethod
    from robustmask.attacks import FGSM

    a, model = ctx.args, ctx.model
    x, y = ctx.x[: a.images], ctx.y[: a.images]
    onehot = np.eye(3, dtype=np.float32)[y]
    batches = [
        (tf.constant(x[i : i + a.batch]), tf.constant(onehot[i : i + a.batch]))
        for i in range(0, len(x), a.batch)
    ]
    evaluator = robustmask.Evaluator(FGSM(), PAPER_EPSILONS, batch_size=a.batch)
    classifier = _art_classifier(model)
    art_accuracy: list[float] = []

    def art_loop() -> None:  # ART's predict ignores batch_size: batches are cut here
        art_accuracy.clear()
        for eps in [0.0, *PAPER_EPSILONS]:
            adv = (
                x
                if eps == 0
                else FastGradientMethod(classifier, eps=eps, batch_size=a.batch).generate(x, onehot)
            )
            predicted = np.concatenate(
                [classifier.predict(adv[i : i + a.batch]) for i in range(0, len(x), a.batch)]
            )
            art_accuracy.append(100.0 * float(np.mean(predicted.argmax(1) == y)))

    times = _bench.race(
        {
            "limit": _bench.sweep_limit(model, batches, PAPER_EPSILONS),
            "reused": lambda: evaluator.evaluate(model, (x, y)),
            "fresh": lambda: robustmask.Evaluator(FGSM(), PAPER_EPSILONS, batch_size=a.batch).evaluate(
                model, (x, y)
            ),
            "art": art_loop,
        },
        a.repeats,
        cold=["art"],
    )
    table = evaluator.evaluate(model, (x, y))
    gap = float(np.max(np.abs(table["Accuracy (%)"].to_numpy() - np.array(art_accuracy))))
    ctx.notes.append(
        f"Sweep: robustmask's and ART's accuracies differ by at most {gap:.2f} points over the 11 rows "
        "(same attack, same images). ART's loop runs FastGradientMethod once per epsilon and predicts "
        "in batches cut by the benchmark (ART's predict ignores its batch_size)."
    )
    _tracing_note(ctx, x, y)
    ips = ctx.sweep_ips = len(x) / times["reused"]
    rows = [
        row(
            "Table-4 sweep, one Evaluator reused",
            times["reused"],
            "bare limit",
            times["limit"],
            target=1.15,
            ips=ips,
        ),
        row(
            "Table-4 sweep, a fresh Evaluator(FGSM()) per call",
            times["fresh"],
            "bare limit",
            times["limit"],
            target=1.15,
            ips=len(x) / times["fresh"],
        ),
        row(
            "Table-4 sweep vs ART FastGradientMethod looped over the epsilons",
            times["reused"],
            "ART loop",
            times["art"],
            kind="faster",
            target=5,
            ips=ips,
        ),
    ]
    return rows + [_xla_row(ctx, batches[0])]


def _tracing_note(ctx: Context, x: np.ndarray, y: np.ndarray) -> None:
    import robustmask
    from robustmask.attacks import FGSM
    from robustmask.evaluation._scoring import compiled_scorer
    from robustmask.modelinfo import inspect_model

    batch = ctx.args.batch
    info = inspect_model(ctx.model, None, x[:batch])
    score = compiled_scorer(ctx.model, info, x.shape[1:]).score
    attack = FGSM().compiled_for(ctx.model, tf.TensorShape(x[:batch].shape), tf.TensorShape([batch, 3]))
    before = score.experimental_get_tracing_count(), attack.experimental_get_tracing_count()
    odd = max(1, batch // 2 + 1)
    robustmask.Evaluator(FGSM(), PAPER_EPSILONS, batch_size=odd).evaluate(
        ctx.model, (x[: 2 * odd], y[: 2 * odd])
    )
    after = score.experimental_get_tracing_count(), attack.experimental_get_tracing_count()
    ctx.notes.append(
        f"Tracing: the sweep's scorer and FGSM were traced {before[0]} and {before[1]} time(s) for all the "
        f"timed sweeps above (every Evaluator and FGSM instance shares them); a new batch size ({odd}) "
        f"added {after[0] - before[0]} and {after[1] - before[1]} traces."
    )


def _xla_row(ctx: Context, batch: tuple[tf.Tensor, tf.Tensor]) -> dict:
    model, (x, y) = ctx.model, batch

    def make(jit: bool) -> Any:
        fn = tf.function(
            lambda: (_bench.input_gradient(model, x, y), model(x, training=False)), jit_compile=jit
        )
        return lambda: [t.numpy() for t in fn()]

    try:
        times = _bench.race({"plain": make(False), "xla": make(True)}, 1)  # XLA is slow: once
    except Exception as err:  # XLA missing from this TensorFlow build, or a kernel it lacks
        ctx.notes.append(f"XLA: could not compile the model ({type(err).__name__}); row left empty.")
        return row("XLA (jit_compile) on one gradient + forward pass", None, "XLA", None, kind="faster")
    ctx.notes.append(
        "XLA: measured on one gradient + one forward pass of a batch; robustmask uses XLA only for "
        "the L-inf projection of the adversarial batches (elementwise, fused into one loop), "
        "where it paid; the model itself runs on TensorFlow's own kernels (see the row)."
    )
    return row(
        "one gradient + forward pass, TensorFlow kernels vs XLA (jit_compile)",
        times["plain"],
        "XLA",
        times["xla"],
        kind="faster",
        text=f"XLA {times['xla'] / times['plain']:.2f}x the time",
    )


# ---------------------------------------------------------------------------------------- attacks
def attacks(ctx: Context) -> list[dict]:
    """Native FGSM, BIM-10, PGD-20 against ART's on one batch, and against their own bare limit."""
    from art.attacks.evasion import BasicIterativeMethod, FastGradientMethod, ProjectedGradientDescent
    from robustmask.attacks import BIM, FGSM, PGD

    a, model, eps = ctx.args, ctx.model, 0.004
    x = ctx.x[: a.attack_batch]
    labels = np.argmax(model.predict(x, verbose=0), axis=1)
    onehot = np.eye(3, dtype=np.float32)[labels]
    classifier = _art_classifier(model)
    classifier.loss_gradient(x[:2], onehot[:2])  # ART's first call sets things up
    bim, pgd = BIM(steps=10, batch_size=a.attack_batch), PGD(steps=20, seed=0, batch_size=a.attack_batch)
    grad = tf.function(lambda xb, yb: _bench.input_gradient(model, xb, yb))
    x_t, y_t = tf.constant(x), tf.constant(onehot)
    pairs = [
        (
            "FGSM",
            1,
            FGSM(batch_size=a.attack_batch),
            FastGradientMethod(classifier, eps=eps, batch_size=a.attack_batch),
        ),
        (
            "BIM-10",
            10,
            bim,
            BasicIterativeMethod(
                classifier,
                eps=eps,
                eps_step=bim.rel_stepsize * eps,
                max_iter=10,
                batch_size=a.attack_batch,
                verbose=False,
            ),
        ),
        (
            "PGD-20",
            20,
            pgd,
            ProjectedGradientDescent(
                classifier,
                eps=eps,
                eps_step=pgd.rel_stepsize * eps,
                max_iter=20,
                num_random_init=1,
                batch_size=a.attack_batch,
                verbose=False,
            ),
        ),
    ]
    rows = []
    for name, steps, native, art in pairs:
        times = _bench.race(
            {
                "native": lambda native=native: native(model, x, labels, eps=eps),
                "art": lambda art=art: art.generate(x, onehot),
                "limit": lambda steps=steps: [grad(x_t, y_t).numpy() for _ in range(steps)],
            },
            a.repeats,
            cold=["art"],
        )
        ips = len(x) / times["native"]
        rows.append(
            row(
                f"{name} on one batch vs ART",
                times["native"],
                f"ART {type(art).__name__}",
                times["art"],
                kind="faster",
                target=3,
                ips=ips,
            )
        )
        rows.append(
            row(
                f"{name} on one batch vs its limit ({steps} x gradient)",
                times["native"],
                "bare limit",
                times["limit"],
                ips=ips,
            )
        )
    return rows


# ---------------------------------------------------------------------------------------- Algorithm 2
def multi_epsilon(ctx: Context) -> list[dict]:
    """Algorithm 2's adversarial data: FGSM copies at 10 epsilons against 1, made as the trainer makes them."""
    from robustmask.attacks import FGSM

    a, model = ctx.args, ctx.model
    x, y = ctx.x[: a.train_images], ctx.y[: a.train_images]
    batches = [(tf.constant(x[i : i + 32]), tf.one_hot(y[i : i + 32], 3)) for i in range(0, len(x), 32)]
    attack = FGSM()

    @tf.function(reduce_retracing=True)
    def copies(xb: tf.Tensor, yb: tf.Tensor, eps: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(attack.generate(model, xb, yb, eps))  # in a graph, as in the train_step

    def make(eps: list[float]) -> Any:
        e = tf.constant(eps, tf.float32)
        return lambda: [float(copies(xb, yb, e)) for xb, yb in batches]

    times = _bench.race({"ten": make(PAPER_EPSILONS + [0.01]), "one": make([0.004])}, a.repeats)
    return [
        row(
            "Algorithm 2 data: FGSM copies at 10 epsilons vs 1",
            times["ten"],
            "1 epsilon",
            times["one"],
            target=1.2,
            ips=10 * len(x) / times["ten"],
        )
    ]


SECTIONS = [sweep, attacks, multi_epsilon, trainers, memory, loader]
__all__ = ["SECTIONS", "Context", "gpu_section", "row", "row_line", "row_markdown"]
