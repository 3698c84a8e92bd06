"""benchmarks/run.py's trainer and memory tasks.

A trainer's time is its steady epoch: `fit` runs 1 + repeats epochs and the best epoch after the
first counts (the first holds the model copy and the tracing, one-off costs). Its limit is a bare
compiled step making the same passes (_bench.trainer_limit). Against ART, both sides do one whole
fit of one epoch from scratch, setup included, since that is what ART's fit always pays.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import _bench

ALGORITHM2_EPSILONS = [0.001, 0.002, 0.003]
EPOCHS = 3  # per fit: the first traces, the best of the other two is the steady epoch
EPS = 8 / 255


@dataclass
class Spec:
    name: str
    make: Callable[[], Any]  # the robustmask trainer
    limit: dict  # _bench.trainer_limit's keywords
    art: Callable[[Any], Any] | None  # classifier -> a fitted-by-call ART trainer, or None


def specs() -> list[Spec]:
    from art.attacks.evasion import FastGradientMethod

    from robustmask.defenses import (
        FastAdversarialTrainer,
        MultiEpsilonAdversarialTrainer,
        PGDAdversarialTrainer,
        TRADESTrainer,
    )

    def art_fgsm(epsilons: list[float], ratio: float, random_init: int = 0) -> Callable[[Any], Any]:
        def make(classifier: Any) -> Any:
            from art.defences.trainer import AdversarialTrainer

            attacks = [FastGradientMethod(classifier, eps=e, num_random_init=random_init) for e in epsilons]
            return AdversarialTrainer(classifier, attacks, ratio=ratio)

        return make

    def art_madry(classifier: Any) -> Any:
        from art.defences.trainer import AdversarialTrainerMadryPGD

        return AdversarialTrainerMadryPGD(
            classifier, nb_epochs=1, batch_size=32, eps=EPS, eps_step=2.5 * EPS / 7, max_iter=7
        )

    n = len(ALGORITHM2_EPSILONS)
    return [
        Spec(
            f"Algorithm 2 ({n} epsilons)",
            lambda: MultiEpsilonAdversarialTrainer(ALGORITHM2_EPSILONS, batch_size=32),
            dict(clean_per_step=8, gradients=1, epsilons=ALGORITHM2_EPSILONS, keep_clean=True),
            art_fgsm(ALGORITHM2_EPSILONS, n / (n + 1)),
        ),
        Spec(
            "PGD-AT (7 steps)",
            lambda: PGDAdversarialTrainer(eps=EPS, steps=7, batch_size=32),
            dict(clean_per_step=32, gradients=7, epsilons=[EPS], keep_clean=False),
            art_madry,
        ),
        Spec(
            "fast AT (FGSM, random start)",
            lambda: FastAdversarialTrainer(eps=EPS, guard=False, batch_size=32),
            dict(clean_per_step=32, gradients=1, epsilons=[EPS], keep_clean=False),
            art_fgsm([1.25 * EPS], 1.0, random_init=1),
        ),
        Spec(
            "TRADES (7 steps)",
            lambda: TRADESTrainer(eps=EPS, steps=7, batch_size=32),
            dict(clean_per_step=16, gradients=7, epsilons=[EPS], keep_clean=True, soft_labels=True),
            None,
        ),
    ]


class _EpochClock:
    """Keras callback: wall time of every epoch, and of the fit's start to the end of epoch 1."""

    def __new__(cls) -> Any:
        import keras

        class Clock(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.created, self.epochs, self.first_done = time.perf_counter(), [], 0.0

            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                self.epochs.append(time.perf_counter() - self.start)
                if epoch == 0:
                    self.first_done = time.perf_counter() - self.created

        return Clock()


def trainers(ctx: Any) -> list[dict]:
    """Every adversarial trainer: steady epoch vs its bare limit, and one-epoch fit vs ART's."""
    from _sections import _art_classifier, row

    a, model = ctx.args, ctx.model
    x, y = ctx.x[: a.train_images], ctx.y[: a.train_images]
    onehot = np.eye(3, dtype=np.float32)[y]
    rows = []
    for spec in specs():
        clock = _EpochClock()
        # Also the 2x probe of the memory task (its 1x and 4x run there): one fit fewer to trace.
        peak, _ = _bench.peak_increase_mb(
            lambda: spec.make().fit(model, (x, y), epochs=EPOCHS, callbacks=[clock], verbose=0)
        )
        ctx.trainer_peaks[spec.name] = peak
        steady = min(clock.epochs[1:])
        print(f"    ({spec.name}: fit, epochs {', '.join(f'{t:.1f}' for t in clock.epochs)} s)", flush=True)
        limit = _bench.race({"limit": _bench.trainer_limit(model, x, y, **spec.limit)}, a.repeats)["limit"]
        print(f"    ({spec.name}: bare limit {limit:.1f} s)", flush=True)
        rows.append(
            row(
                f"{spec.name}: one epoch vs its bare limit",
                steady,
                "bare limit",
                limit,
                target=1.2,
                ips=len(x) / steady,
            )
        )
        if spec.art is None:
            ctx.notes.append(f"{spec.name}: ART has no TensorFlow trainer for it (only a PyTorch one).")
            continue
        start = time.perf_counter()
        spec.art(_art_classifier(model, train=True)).fit(x, onehot, batch_size=32, nb_epochs=1)
        art_time = time.perf_counter() - start
        rows.append(
            row(
                f"{spec.name}: one-epoch fit from scratch vs ART",
                clock.first_done,
                "ART",
                art_time,
                kind="faster",
                target=1.0,
                ips=len(x) / clock.first_done,
            )
        )
    ctx.notes.append(
        "Trainers: Algorithm 2 against ART's AdversarialTrainer with one FastGradientMethod per epsilon "
        "(ART uses one of them per batch, robustmask all of them: ART does less work); PGD-AT against "
        "AdversarialTrainerMadryPGD; fast AT against AdversarialTrainer(FastGradientMethod with a "
        "random start, ratio 1). Fast AT runs without its PGD guard here (the guard is an extra "
        "evaluation per epoch, not training)."
    )
    return rows


def memory(ctx: Any) -> list[dict]:
    """Peak RSS increase of the Evaluator and of every trainer as the data grows 1x, 2x, 4x."""
    import robustmask
    from _sections import PAPER_EPSILONS, row
    from robustmask.attacks import FGSM

    a, model = ctx.args, ctx.model
    evaluator = robustmask.Evaluator(FGSM(), PAPER_EPSILONS, batch_size=min(a.batch, a.memory_images))
    evaluator.evaluate(model, (ctx.x[:4], ctx.y[:4]))  # its compiled functions are shared: traced here
    # (name, probe(m images), images at 1x, the 2x peak when the trainer task measured it). At 1x a
    # trainer still fills its batch (32 clean images at most), or its peak would grow with the batch.
    probes: list[tuple[str, Callable[[int], Any], int, float | None]] = [
        ("Evaluator", lambda m: evaluator.evaluate(model, (ctx.x[:m], ctx.y[:m])), a.memory_images, None)
    ]
    for spec in specs():

        def fit(m: int, spec: Spec = spec) -> Any:
            return spec.make().fit(model, (ctx.x[:m], ctx.y[:m]), epochs=EPOCHS, verbose=0)

        probes.append((spec.name, fit, max(1, a.train_images // 2), ctx.trainer_peaks.get(spec.name)))
    rows, how = [], ""
    for name, probe, base, at_2x in probes:
        peaks = []
        for scale in (1, 2, 4):
            if scale == 2 and at_2x is not None:
                peaks.append(max(at_2x, 1e-3))
                continue
            peak, how = _bench.peak_increase_mb(lambda: probe(scale * base))
            peaks.append(max(peak, 1e-3))
        ratio = peaks[2] / peaks[0]
        rows.append(
            row(
                f"peak memory, {name}: data 1x / 2x / 4x ({base} images at 1x)",
                None,
                "1x",
                None,
                target=1.15,
                rss=" / ".join(f"{p:.0f}" for p in peaks),
                text=f"{ratio:.2f}x (4x vs 1x)",
            )
        )
        rows[-1]["ratio"], rows[-1]["met"] = ratio, "yes" if ratio <= 1.15 else "no"
    ctx.notes.append(
        f"Peak RSS: the increase of this process's peak resident memory over its level before each "
        f"probe ({how}), in MB; the data arrays exist before the probe. The Evaluator is warmed up "
        "first (its compiled functions are shared); every trainer fit copies the model and traces "
        f"its own train step, at every size alike, and runs {EPOCHS} epochs; a trainer's 2x probe "
        "is its fit in the trainer task. In one process, memory an earlier probe freed can be reused "
        "without showing (malloc_trim returns most of it first): read the ratio 4x/1x, not the MB."
    )
    return rows
