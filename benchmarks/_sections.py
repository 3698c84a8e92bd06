"""The tasks of benchmarks/run.py, one function each, returning rows of the table (see _verdicts).

A row pairs a robustmask figure with its comparison from the same run: a bare limit (judged by
_verdicts.limit_verdict: never beaten by more than the noise, at most the target above it), ART, or
another setting of robustmask itself.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

import _bench
import _limits
from _extras import gpu_section, loader, xla_row
from _trainers import memory, trainers
from _verdicts import judged, row, row_line, row_markdown, tracing_verdict

PAPER_EPSILONS = [0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009]


@dataclass
class Context:
    args: Any
    model: Any
    x: np.ndarray
    y: np.ndarray
    notes: list[str] = field(default_factory=list)
    sweep_ips: float = 0.0  # images/s of the Table-4 sweep: what an evaluation consumes


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

    # Two races: the library against its limit alone, then against ART (whose long NumPy-heavy run
    # would otherwise sit between the library's and the limit's turns and tilt the pair).
    times = _bench.race(
        {
            "limit": _limits.sweep_limit(model, batches, PAPER_EPSILONS),
            "reused": lambda: evaluator.evaluate(model, (x, y)),
            "fresh": lambda: robustmask.Evaluator(FGSM(), PAPER_EPSILONS, batch_size=a.batch).evaluate(
                model, (x, y)
            ),
        },
        a.repeats,
    )
    versus_art = _bench.race(
        {"reused": lambda: evaluator.evaluate(model, (x, y)), "art": art_loop}, a.repeats, cold=["art"]
    )
    table = evaluator.evaluate(model, (x, y))
    gap = float(np.max(np.abs(table["Accuracy (%)"].to_numpy() - np.array(art_accuracy))))
    ctx.notes.append(
        f"Sweep: robustmask's and ART's accuracies differ by at most {gap:.2f} points over the 11 rows "
        "(same attack, same images). ART's loop runs FastGradientMethod once per epsilon and predicts "
        "in batches cut by the benchmark (ART's predict ignores its batch_size)."
    )
    tracing = _tracing_row(ctx, x, y)
    ips = ctx.sweep_ips = len(x) / times["reused"]
    rows = [
        row(
            "Table-4 sweep, one Evaluator reused",
            times["reused"],
            "bare limit",
            times["limit"],
            kind="limit",
            target=1.15,
            ips=ips,
        ),
        row(
            "Table-4 sweep, a fresh Evaluator(FGSM()) per call",
            times["fresh"],
            "bare limit",
            times["limit"],
            kind="limit",
            target=1.15,
            ips=len(x) / times["fresh"],
        ),
        row(
            "Table-4 sweep vs ART FastGradientMethod looped over the epsilons",
            versus_art["reused"],
            "ART loop",
            versus_art["art"],
            kind="faster",
            target=5,
            ips=len(x) / versus_art["reused"],
        ),
    ]
    return rows + [tracing, xla_row(ctx, batches[0])]


def _tracing_row(ctx: Context, x: np.ndarray, y: np.ndarray) -> dict:
    """Every function of the shared compiled caches, traced once for all the timed sweeps, and a new
    batch size (a fresh Evaluator, a direct FGSM call) adding no trace and no function."""
    import robustmask
    from robustmask.attacks import FGSM

    before = _bench.shared_traces(ctx.model)
    odd = max(1, ctx.args.batch // 2 + 1)
    robustmask.Evaluator(FGSM(), PAPER_EPSILONS, batch_size=odd).evaluate(
        ctx.model, (x[: 2 * odd], y[: 2 * odd])
    )
    FGSM(batch_size=odd)(ctx.model, x[:odd], y[:odd], eps=0.004)
    after = _bench.shared_traces(ctx.model)
    added = sum(after.values()) - sum(before.values())
    return judged(
        f"Tracing: a new batch size ({odd}) after the timed sweeps, over the shared compiled caches",
        tracing_verdict(before, after),
        "each traced once; +0",
        f"{len(before)} function(s), {sum(before.values())} trace(s); then +{added} trace(s), "
        f"+{len(set(after) - set(before))} function(s)",
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
        step = eps if steps == 1 else native.rel_stepsize * eps
        limit = _limits.attack_limit(
            model,
            x_t,
            y_t,
            steps=steps,
            eps=eps,
            step=step,
            random_start=getattr(native, "random_start", False),
        )

        def call(native: Any = native) -> object:
            return native(model, x, labels, eps=eps)

        times = _bench.race({"native": call, "limit": limit}, a.repeats)  # the pair alone (see sweep)
        versus_art = _bench.race(
            {"native": call, "art": functools.partial(art.generate, x, onehot)}, a.repeats, cold=["art"]
        )
        ips = len(x) / times["native"]
        rows.append(
            row(
                f"{name} on one batch vs ART",
                versus_art["native"],
                f"ART {type(art).__name__}",
                versus_art["art"],
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
                kind="limit",
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
