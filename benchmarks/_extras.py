"""benchmarks/run.py's loader, XLA and GPU tasks."""

from __future__ import annotations

import tempfile
from typing import Any

import tensorflow as tf

import _bench
import _limits


# ---------------------------------------------------------------------------------------- loader
def loader(ctx: Any) -> list[dict]:
    """The Kaggle-folder loader's images/s against the model's (a compiled forward pass, batch by batch)."""
    from _verdicts import row
    from robustmask.datasets import load_face_mask_directory, write_synthetic_face_mask_directory

    a, model = ctx.args, ctx.model
    forward = tf.function(lambda xb: model(xb, training=False), reduce_retracing=True)
    x = ctx.x[: a.images]

    def consume() -> None:
        for i in range(0, len(x), a.batch):
            forward(tf.constant(x[i : i + a.batch])).numpy()

    with tempfile.TemporaryDirectory() as folder:
        # Stored at twice the size, so that loading resizes, as the Kaggle photos need.
        write_synthetic_face_mask_directory(
            folder, n_per_class=max(2, a.loader_images // 3), image_size=2 * a.image_size
        )
        n_files = 3 * max(2, a.loader_images // 3)
        times = _bench.race(
            {"load": lambda: load_face_mask_directory(folder, image_size=a.image_size), "model": consume},
            a.repeats,
        )
    loader_ips, model_ips = n_files / times["load"], len(x) / times["model"]
    ctx.notes.append(
        f"Loader: {n_files} PNG files at {2 * a.image_size} px, decoded and resized to {a.image_size} px by "
        "load_face_mask_directory (Pillow in a thread pool); the files are in the page cache after the "
        "warm-up, as they are from the second epoch on."
    )
    rows = [
        row(
            "Kaggle-folder loader vs the model's clean forward pass (s per image)",
            1.0 / loader_ips,
            "forward pass",
            1.0 / model_ips,
            kind="faster",
            target=1.0,
            ips=loader_ips,
            text=f"{loader_ips / model_ips:.2f}x the model's images/s",
        )
    ]
    if ctx.sweep_ips:
        rows.append(
            row(
                "Kaggle-folder loader vs the Table-4 sweep's consumption (s per image)",
                1.0 / loader_ips,
                "sweep",
                1.0 / ctx.sweep_ips,
                kind="faster",
                target=1.0,
                ips=loader_ips,
                text=f"{loader_ips / ctx.sweep_ips:.2f}x the sweep's images/s",
            )
        )
    return rows


# ---------------------------------------------------------------------------------------- XLA
XLA_TASK = "one gradient + forward pass, TensorFlow kernels vs XLA (jit_compile)"


def xla_row(ctx: Any, batch: tuple[tf.Tensor, tf.Tensor]) -> dict:
    """One gradient + forward pass of a batch with TensorFlow's kernels against XLA (jit_compile)."""
    from _verdicts import row

    model, (x, y) = ctx.model, batch
    info = _limits.model_info(model, x)

    def make(jit: bool) -> Any:
        fn = tf.function(
            lambda: (_limits.input_gradient(model, info, x, y), model(x, training=False)), jit_compile=jit
        )
        return lambda: [t.numpy() for t in fn()]

    try:
        times = _bench.race({"plain": make(False), "xla": make(True)}, 1)  # XLA is slow: once
    except Exception as err:  # XLA missing from this TensorFlow build, or a kernel it lacks
        ctx.notes.append(f"XLA: could not compile the model ({type(err).__name__}); row left empty.")
        return row(XLA_TASK, None, "XLA", None, kind="faster")
    ctx.notes.append(
        "XLA: measured on one gradient + one forward pass of a batch; robustmask uses XLA only for "
        "the L-inf projection of the adversarial batches (elementwise, fused into one loop), "
        "where it paid; the model itself runs on TensorFlow's own kernels (see the row)."
    )
    return row(
        XLA_TASK,
        times["plain"],
        "XLA",
        times["xla"],
        kind="faster",
        text=f"XLA {times['xla'] / times['plain']:.2f}x the time",
    )


# ---------------------------------------------------------------------------------------- GPU
def gpu_section(ctx: Any, rows: list[dict]) -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "No GPU here (`tf.config.list_physical_devices('GPU')` is empty): section skipped."
    import robustmask
    from _sections import PAPER_EPSILONS
    from robustmask.attacks import FGSM

    a, model = ctx.args, ctx.model
    x, y = ctx.x[: a.images], ctx.y[: a.images]
    lines = [
        f"Every figure above ran on {len(gpus)} GPU(s) ({gpus[0].name}). Sweep images/s by batch size:",
        "",
    ]
    for batch in (a.batch, 4 * a.batch):
        evaluator = robustmask.Evaluator(FGSM(), PAPER_EPSILONS, batch_size=batch)
        t = _bench.race({"sweep": lambda evaluator=evaluator: evaluator.evaluate(model, (x, y))}, a.repeats)
        lines.append(f"- batch {batch}: {len(x) / t['sweep']:.0f} images/s ({t['sweep']:.3f} s)")
    return "\n".join(lines)
