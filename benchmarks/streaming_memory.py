"""Peak memory of an evaluation, and of one epoch of Algorithm 2, over a streamed folder against the
same over the in-memory loader.

Issue 19, item 3: reading 16x the images may raise the stream's peak memory by no more than 1.2x.
Two synthetic Kaggle-layout folders are written (N and 16N faces at 96 px, two classes); then, each in
a fresh Python process, one pass of the Evaluator (FGSM at one eps, an untrained
``robustmask.zoo.facemask_cnn``) reads a folder either through ``stream_face_mask_directory`` or
through ``load_face_mask_directory`` (the control: it holds the data, so it must fail the 1.2x test,
or the benchmark is too small to tell). The same for one epoch of Algorithm 2 on the whole folder
(``MultiEpsilonAdversarialTrainer``, subset 1.0, FGSM copies at two epsilons made against the
undefended model, batch 32): from ``stream_faces`` (the training stream) or from the loaded arrays. Peak memory is the process's resident high-water mark
(``ru_maxrss``, the same as VmHWM in /proc/self/status), with TensorFlow, the model and its traced
functions in it; the data's own size (float32) is printed beside it, since a 1.2x ratio means little
when the data are small against TensorFlow's few hundred MB.

Throughput ("the loader keeps up"): images/s of a bare pass over the stream (decoding, batching;
no model) against images/s of the model's forward pass alone on in-memory arrays, both at 16N.

    python benchmarks/streaming_memory.py                      # N=250, 16N=4000: a few minutes
    python benchmarks/streaming_memory.py --n 1000             # 16,000 images at 16N
    python benchmarks/streaming_memory.py --only train         # Algorithm 2 only (or: --only evaluate)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZE = 96
CLASSES = ("with_mask", "without_mask")
TARGET = 1.2
TRAIN_EPSILONS = (0.002, 0.004)
TRAIN_BATCH = 32
MODES = {"evaluate": ("stream", "memory"), "train": ("train-stream", "train-memory")}


def _status_mb(field: str) -> float:
    """VmRSS or VmHWM of this process in MB (NaN where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def child(mode: str, folder: str, batch_size: int, eps: float) -> dict[str, float]:
    """One pass of the Evaluator over `folder` read by `mode` ("stream" or "memory"), in this process;
    one epoch of Algorithm 2 for "train-stream" and "train-memory"."""
    import warnings

    import keras
    import numpy as np
    import tensorflow as tf

    import robustmask
    from robustmask.datasets import load_face_mask_directory
    from robustmask.datasets.streaming import stream_face_mask_directory

    warnings.simplefilter("ignore")
    keras.utils.set_random_seed(0)
    model = robustmask.zoo.facemask_cnn((SIZE, SIZE, 3), num_classes=len(CLASSES))
    if mode.startswith("train"):
        return train_child(mode, folder, model)
    evaluator = robustmask.Evaluator(robustmask.attacks.FGSM(), [eps], batch_size=batch_size)
    baseline = _status_mb("VmRSS")  # TensorFlow and the model, no data yet
    start = time.perf_counter()
    if mode == "stream":
        data = stream_face_mask_directory(folder, SIZE, batch_size)
        table = evaluator.evaluate(model, data)
    else:
        loaded = load_face_mask_directory(folder, SIZE, split=0.0)
        table = evaluator.evaluate(model, (loaded.x_train, loaded.y_train))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    result = {
        "images": int(table.attrs["examples"]),
        "baseline_mb": baseline,
        "peak_mb": peak,
        "hwm_mb": _status_mb("VmHWM"),
        "sweep_images_per_s": table.attrs["examples"] / seconds,
    }
    # throughput, after the peak was read: the loader alone, or the model's forward pass alone
    if mode == "stream":
        start, seen = time.perf_counter(), 0
        for x, _ in data:
            seen += int(x.shape[0])
        result["images_per_s"] = seen / (time.perf_counter() - start)
    else:
        forward = tf.function(lambda x: model(x, training=False))
        x = loaded.x_train
        forward(tf.convert_to_tensor(x[:batch_size]))  # traced outside the timing
        start = time.perf_counter()
        for i in range(0, len(x), batch_size):
            np.asarray(forward(tf.convert_to_tensor(x[i : i + batch_size])))
        result["images_per_s"] = len(x) / (time.perf_counter() - start)
    return result


def train_child(mode: str, folder: str, model: object) -> dict[str, float]:
    """One epoch of Algorithm 2 (subset 1.0) on every image of `folder`, streamed or loaded."""
    from robustmask.datasets import load_face_mask_directory, stream_faces
    from robustmask.defenses import MultiEpsilonAdversarialTrainer

    trainer = MultiEpsilonAdversarialTrainer(
        list(TRAIN_EPSILONS), subset=1.0, epochs=1, batch_size=TRAIN_BATCH
    )
    baseline = _status_mb("VmRSS")
    start = time.perf_counter()
    if mode == "train-stream":
        faces = stream_faces(folder, image_size=SIZE, batch_size=TRAIN_BATCH)
        trainer.fit(model, faces.train, verbose=0)
        images = faces.report.readable
    else:
        loaded = load_face_mask_directory(folder, SIZE, split=0.0)
        trainer.fit(model, (loaded.x_train, loaded.y_train), verbose=0)
        images = len(loaded.y_train)
    seconds = time.perf_counter() - start
    return {
        "images": images,
        "baseline_mb": baseline,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "hwm_mb": _status_mb("VmHWM"),
        "images_per_s": images / seconds,  # the stream's counting pass included
    }


def _run_child(mode: str, folder: Path, batch_size: int, eps: float) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", mode, str(folder)]
    command += ["--batch-size", str(batch_size), "--eps", str(eps)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _write_folder(root: Path, images: int) -> Path:
    from robustmask.datasets import write_synthetic_face_mask_directory

    folder = root / f"faces_{images}"
    if not folder.exists():
        write_synthetic_face_mask_directory(folder, images // len(CLASSES), SIZE, seed=0, classes=CLASSES)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=250, help="images of the small folder (default 250)")
    parser.add_argument("--factor", type=int, default=16, help="the large folder's multiple of --n (16)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=16,
        help="images per batch (default 16: a small per-batch working set, whose run-to-run noise of "
        "a few hundred MB at 64 hides the data at the default sizes)",
    )
    parser.add_argument("--eps", type=float, default=0.004)
    parser.add_argument(
        "--only", choices=sorted(MODES), help="run only the evaluation or only Algorithm 2 (default: both)"
    )
    parser.add_argument("--workdir", help="where the folders go (kept; default: a temporary folder)")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.batch_size, args.eps)))
        return 0

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.workdir or scratch)
        root.mkdir(parents=True, exist_ok=True)
        sizes = [args.n, args.n * args.factor]
        start = time.perf_counter()
        folders = [_write_folder(root, n) for n in sizes]
        print(f"wrote {' and '.join(str(n) for n in sizes)} faces in {time.perf_counter() - start:.0f} s")
        kinds = [args.only] if args.only else list(MODES)
        runs = {
            (mode, n): _run_child(mode, f, args.batch_size, args.eps)
            for n, f in zip(sizes, folders)
            for kind in kinds
            for mode in MODES[kind]
        }
    print(
        f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; facemask_cnn at {SIZE} px (untrained)"
    )
    if "evaluate" in kinds:
        _print_table(runs, sizes, args)
    if "train" in kinds:
        _print_training(runs, sizes)
    return 0


def _print_table(runs: dict, sizes: list[int], args: argparse.Namespace) -> None:
    small, large = sizes
    print(f"\nThe Evaluator: batch {args.batch_size}, FGSM eps {args.eps}\n")
    print("| images | data (MB, float32) | stream peak RSS (MB) | in-memory peak RSS (MB) |")
    print("|---:|---:|---:|---:|")
    for n in sizes:
        data_mb = runs[("memory", n)]["images"] * SIZE * SIZE * 3 * 4 / 2**20
        print(
            f"| {runs[('memory', n)]['images']:,} | {data_mb:.1f} | {runs[('stream', n)]['peak_mb']:.0f} "
            f"| {runs[('memory', n)]['peak_mb']:.0f} |"
        )
    ratio = {
        mode: runs[(mode, large)]["peak_mb"] / runs[(mode, small)]["peak_mb"] for mode in ("stream", "memory")
    }
    growth = {mode: runs[(mode, large)]["peak_mb"] - runs[(mode, small)]["peak_mb"] for mode in ratio}
    data_growth = (
        (runs[("memory", large)]["images"] - runs[("memory", small)]["images"]) * SIZE * SIZE * 12 / 2**20
    )
    print(f"| ratio {large}/{small} | {large / small:.1f} | {ratio['stream']:.2f} | {ratio['memory']:.2f} |")
    print(
        f"| growth (MB; data grew {data_growth:.0f}) | | {growth['stream']:+.0f} | {growth['memory']:+.0f} |"
    )
    baseline = ", ".join(f"{mode} {runs[(mode, large)]['baseline_mb']:.0f}" for mode in ratio)
    print(f"\nRSS before any data (TensorFlow and the model): {baseline} MB")
    stream_ok, control_fails = ratio["stream"] <= TARGET, ratio["memory"] > TARGET
    print(
        f"stream within {TARGET}x: {'yes' if stream_ok else 'NO'} ({ratio['stream']:.2f}x); the in-memory "
        f"control {'fails it, as it must' if control_fails else 'passes it too: the data are too small to tell'}"
        f" ({ratio['memory']:.2f}x); the stream's growth is {growth['stream'] / data_growth:.1%} of the data's"
    )
    stream_rate, forward_rate = (
        runs[("stream", large)]["images_per_s"],
        runs[("memory", large)]["images_per_s"],
    )
    keeps = "keeps up" if stream_rate >= forward_rate else "does NOT keep up"
    print(
        f"loader alone {stream_rate:.0f} images/s, the model's forward pass alone {forward_rate:.0f} "
        f"images/s on arrays: the loader {keeps} ({large} images)"
    )
    print(
        f"one FGSM sweep: stream {runs[('stream', large)]['sweep_images_per_s']:.0f} images/s, "
        f"in-memory {runs[('memory', large)]['sweep_images_per_s']:.0f} images/s (decoding included in both)"
    )


def _print_training(runs: dict, sizes: list[int]) -> None:
    """Algorithm 2's table: peak memory at both sizes, streamed and loaded, and the 1.2x verdict."""
    small, large = sizes
    print(
        f"\nOne epoch of Algorithm 2 (subset 1.0, FGSM copies at {', '.join(map(str, TRAIN_EPSILONS))}, "
        f"batch {TRAIN_BATCH}):\n"
    )
    print(
        "| images | data (MB, float32) | stream peak RSS (MB) | in-memory peak RSS (MB) | stream images/s |"
    )
    print("|---:|---:|---:|---:|---:|")
    for n in sizes:
        stream, memory = runs[("train-stream", n)], runs[("train-memory", n)]
        data_mb = memory["images"] * SIZE * SIZE * 12 / 2**20
        print(
            f"| {memory['images']:,} | {data_mb:.1f} | {stream['peak_mb']:.0f} | {memory['peak_mb']:.0f} "
            f"| {stream['images_per_s']:.0f} |"
        )
    ratio = {m: runs[(m, large)]["peak_mb"] / runs[(m, small)]["peak_mb"] for m in MODES["train"]}
    growth = {m: runs[(m, large)]["peak_mb"] - runs[(m, small)]["peak_mb"] for m in ratio}
    data_growth = (
        (runs[("train-memory", large)]["images"] - runs[("train-memory", small)]["images"])
        * SIZE
        * SIZE
        * 12
        / 2**20
    )
    print(
        f"| ratio {large}/{small} | {large / small:.1f} | {ratio['train-stream']:.2f} | "
        f"{ratio['train-memory']:.2f} | |"
    )
    print(
        f"| growth (MB; data grew {data_growth:.0f}) | | {growth['train-stream']:+.0f} | "
        f"{growth['train-memory']:+.0f} | |"
    )
    ok, control_fails = ratio["train-stream"] <= TARGET, ratio["train-memory"] > TARGET
    print(
        f"\nAlgorithm 2 on the stream within {TARGET}x: {'yes' if ok else 'NO'} ({ratio['train-stream']:.2f}x, "
        f"{growth['train-stream'] / data_growth:.1%} of the data's growth); the in-memory control "
        f"{'fails it, as it must' if control_fails else 'passes it too: the data are too small to tell'} "
        f"({ratio['train-memory']:.2f}x)"
    )


if __name__ == "__main__":
    sys.exit(main())
