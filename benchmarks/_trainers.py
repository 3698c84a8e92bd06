"""benchmarks/run.py's trainer and memory tasks.

A trainer's time is its steady epoch: `fit` runs 1 + repeats epochs and the best epoch after the
first counts (the first holds the model copy and the tracing, one-off costs). Its limit is a bare
compiled step making the same passes (_limits.trainer_limit). Against ART, both sides do one whole
fit of one epoch from scratch, setup included, since that is what ART's fit always pays.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import _bench
import _limits
from _verdicts import MEMORY_SHARE, MIN_DATA_GROWTH_MB, judged, memory_verdict, row

ALGORITHM2_EPSILONS = [0.001, 0.002, 0.003]
EPOCHS = 3  # per fit: the first traces, the best of the other two is the steady epoch
MEMORY_EPOCHS = 2  # per memory probe: the second shows what an epoch keeps for the next
EPS = 8 / 255


@dataclass
class Spec:
    name: str
    make: Callable[[], Any]  # the robustmask trainer
    limit: dict  # _limits.trainer_limit's keywords
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
    from _sections import _art_classifier

    a, model = ctx.args, ctx.model
    x, y = ctx.x[: a.train_images], ctx.y[: a.train_images]
    onehot = np.eye(3, dtype=np.float32)[y]
    rows = []
    for spec in specs():
        clock = _EpochClock()
        spec.make().fit(model, (x, y), epochs=EPOCHS, callbacks=[clock], verbose=0)
        steady = min(clock.epochs[1:])
        print(f"    ({spec.name}: fit, epochs {', '.join(f'{t:.1f}' for t in clock.epochs)} s)", flush=True)
        limit = _bench.race({"limit": _limits.trainer_limit(model, x, y, **spec.limit)}, a.repeats)["limit"]
        print(f"    ({spec.name}: bare limit {limit:.1f} s)", flush=True)
        rows.append(
            row(
                f"{spec.name}: one epoch vs its bare limit",
                steady,
                "bare limit",
                limit,
                kind="limit",
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


class KeepsItsData:
    """The control of the memory verdict: a trainer that copies its training data and holds the copy
    while it trains. Its peak grows with the data: the verdict must fail it."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer

    def fit(self, model: Any, data: tuple[np.ndarray, np.ndarray], **kwargs: Any) -> Any:
        self.held = (np.array(data[0], copy=True), np.array(data[1], copy=True))  # written: resident
        try:
            return self.trainer.fit(model, data, **kwargs)
        finally:
            del self.held


def memory(ctx: Any) -> list[dict]:
    """Peak memory of the Evaluator and of every trainer at two data sizes, against the data's growth.

    A task that streams its data holds one batch whatever the data's size: its peak does not grow.
    One that holds a copy grows by the data's bytes at least. The control (fast AT that keeps a copy
    of its data) shows that the verdict tells the two apart.
    """
    import robustmask
    from _sections import PAPER_EPSILONS
    from robustmask.attacks import FGSM

    a, model = ctx.args, ctx.model
    evaluator = robustmask.Evaluator(FGSM(), PAPER_EPSILONS, batch_size=min(a.batch, a.memory_images))
    evaluator.evaluate(model, (ctx.x[:4], ctx.y[:4]))  # its compiled functions are shared: traced here
    # (name, probe(m images), images at 1x). At 1x a trainer still fills its batch (32 clean images
    # at most), or its peak would grow with the batch, not the data.
    probes: list[tuple[str, Callable[[int], Any], int]] = [
        ("Evaluator", lambda m: evaluator.evaluate(model, (ctx.x[:m], ctx.y[:m])), a.memory_images)
    ]
    trainers = [(spec.name, spec.make) for spec in specs()]
    fast_at = next(make for name, make in trainers if name.startswith("fast AT"))
    trainers.append(
        ("control, fast AT keeping a copy of its data (must fail)", lambda: KeepsItsData(fast_at()))
    )
    for name, make in trainers:

        def fit(m: int, make: Callable[[], Any] = make) -> Any:
            return make().fit(model, (ctx.x[:m], ctx.y[:m]), epochs=MEMORY_EPOCHS, verbose=0)

        probes.append((name, fit, max(1, a.train_images // 2)))
    rows, how = [], ""
    for name, probe, base in probes:
        sizes = (base, a.memory_scale * base)
        peaks: list[float | None] = [None, None]
        data = tuple((ctx.x[:m].nbytes + ctx.y[:m].nbytes) / 2**20 for m in sizes)
        if data[1] - data[0] < MIN_DATA_GROWTH_MB:  # the verdict fails unread: spare the probes
            rows.append(_memory_row(name, sizes, peaks, data))
            continue
        try:
            # Unmeasured first: one-off costs (a first trace of a kind, lazy imports) land here and
            # not on the small probe, where they hid up to 32 MB of growth in a trial run.
            probe(base)
            for i, m in enumerate(sizes):
                peaks[i], how = _bench.peak_increase_mb(functools.partial(probe, m))
        except Exception as err:  # a failed probe is a failed measurement, never a pass
            ctx.notes.append(f"Peak memory, {name}: the probe failed ({type(err).__name__}: {err}).")
        rows.append(_memory_row(name, sizes, peaks, data))
    ctx.notes.append(_memory_note(a.memory_scale, how))
    return rows


def _memory_note(scale: int, how: str) -> str:
    return (
        "Peak memory: the increase of this process's peak resident memory over its level before "
        f"each probe ({how}), in MB, at {scale}x the images of the small probe, after one unmeasured "
        "run of the small probe; the data arrays exist before the probe. The verdict compares the "
        f"peak's growth with the data's own growth (images and labels): at most {MEMORY_SHARE:g}x of "
        "it passes. A task holding one batch at a time grows by about nothing, one holding a copy of "
        "its data by 1x of it or more; a probe that failed or read no increase fails, and so does "
        f"data growing by less than {MIN_DATA_GROWTH_MB:g} MB, which the probe's noise would decide. "
        "The Evaluator is warmed up first (its compiled functions are shared); every trainer fit "
        f"copies the model and traces its own train step, at both sizes alike, and runs "
        f"{MEMORY_EPOCHS} epochs."
    )


def _memory_row(
    name: str, sizes: tuple[int, int], peaks: list[float | None], data: tuple[float, ...]
) -> dict:
    met, share = memory_verdict((peaks[0], peaks[1]), (data[0], data[1]))
    control = name.startswith("control")
    if control:  # the control must fail: the row is met when the verdict caught it
        met = "yes" if met == "no" else ("failed" if met == "failed" else "no")
    grown = data[1] - data[0]
    if share is not None:
        text = f"peak grew {share:.2f}x of the data's {grown:.1f} MB growth"
    elif grown < MIN_DATA_GROWTH_MB:
        text = (
            f"data grew {grown:.1f} MB, under the {MIN_DATA_GROWTH_MB:g} MB the probe resolves: not measured"
        )
    else:
        text = f"probe failed (data grew {grown:.1f} MB)"
    measured_any = any(p is not None for p in peaks)
    return judged(
        f"peak memory, {name}: {sizes[0]} / {sizes[1]} images",
        met,
        f"must fail (> {MEMORY_SHARE:g}x)" if control else f"<= {MEMORY_SHARE:g}x",
        text,
        comp_name="data growth",
        rss=" / ".join("failed" if p is None else f"{p:.0f}" for p in peaks) if measured_any else "",
    )
