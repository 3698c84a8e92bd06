"""Multi-worker adversarial training on this host: 1 process against 2 workers, speed and equal weights.

Algorithm 2 (FGSM copies of the model as it trains, 2 epsilons, so no random start and the runs
must agree) trains a small CNN on synthetic faces three ways, each a fresh process:

- ``single``: one process, no strategy (Keras' fit, as on a laptop);
- ``workers``: two processes joined by TF_CONFIG on localhost ports, under
  ``MultiWorkerMirroredStrategy`` (robustmask's own distributed loop), each holding one replica.

It prints, per way, the training images per second (clean images of the epochs after the first,
which also traces the graphs, over their wall time), the first and last epoch's loss, and the
largest weight difference between the two workers and between a worker and the single process.
Two workers on one 2-core host share its cores and talk over gRPC: the point is that the cluster
path runs and agrees, not a speed-up; on separate machines each worker has its own.

    python benchmarks/multi_worker.py                       # about 3 minutes on 2 free cores
    python benchmarks/multi_worker.py --images 2048 --size 48 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve()


def job(args: argparse.Namespace) -> None:
    """Train once (under MultiWorkerMirroredStrategy when TF_CONFIG names a cluster); write a summary."""
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy() if "TF_CONFIG" in os.environ else None
    import keras
    import numpy as np

    from robustmask.defenses import MultiEpsilonAdversarialTrainer

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, args.images)
    x = rng.uniform(0.0, 0.6, (args.images, args.size, args.size, 3)).astype(np.float32)
    x[y == 1, : args.size // 2] += 0.3  # a learnable class signal
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((args.size, args.size, 3)),
            keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    ends: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            ends.append(time.perf_counter())

    trainer = MultiEpsilonAdversarialTrainer(
        [0.02, 0.04],
        source="current",
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        strategy=strategy,
    )
    defended, history = trainer.fit(model, (x, y), callbacks=[Clock()], verbose=0)
    seconds = ends[-1] - ends[0]
    summary = {
        "images_per_second": args.images * (args.epochs - 1) / seconds,
        "loss": [float(v) for v in history.history["loss"]],
        "replicas": strategy.num_replicas_in_sync if strategy else 1,
    }
    np.savez(args.out + ".npz", *defended.get_weights())
    Path(args.out + ".json").write_text(json.dumps(summary))


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _wait(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.wait() != 0:
            raise SystemExit(f"a job failed (exit {process.returncode})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    # SGD: Adam divides each gradient by its own running size, so a component whose gradient is
    # rounding noise moves by about the learning rate either way, and the runs drift apart by that.
    parser.add_argument("--optimizer", default="sgd")
    sub = parser.add_subparsers(dest="mode")
    job_parser = sub.add_parser("job")
    job_parser.add_argument("out")
    args, _ = parser.parse_known_args()
    if args.mode == "job":
        return job(args)
    import numpy as np

    settings = [f"--images={args.images}", f"--size={args.size}", f"--epochs={args.epochs}"]
    settings += [f"--batch-size={args.batch_size}", f"--optimizer={args.optimizer}"]
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        started = time.perf_counter()
        _wait([_launch_job(base / "single", settings)])
        single_wall = time.perf_counter() - started
        cluster = [f"localhost:{port}" for port in _free_ports(2)]
        started = time.perf_counter()
        _wait([_launch_job(base / f"worker{i}", settings, cluster, i) for i in range(2)])
        workers_wall = time.perf_counter() - started
        results = {
            name: json.loads((base / f"{name}.json").read_text()) for name in ("single", "worker0", "worker1")
        }
        weights = {name: np.load(base / f"{name}.npz") for name in results}
        arrays = {name: [data[f"arr_{i}"] for i in range(len(data.files))] for name, data in weights.items()}

    def largest(a: str, b: str) -> float:
        return max(float(np.abs(u - v).max()) for u, v in zip(arrays[a], arrays[b]))

    print(
        f"{args.images} images at {args.size} px, {args.epochs} epochs, batch {args.batch_size}, "
        f"{args.optimizer}, Algorithm 2 (2 eps, source='current')"
    )
    print("| run | replicas | images/s (epochs 2..) | loss first -> last | wall s (with start-up) |")
    print("|---|---|---|---|---|")
    for name, wall in (("single", single_wall), ("worker0", workers_wall)):
        r = results[name]
        label = "1 process (Keras fit)" if name == "single" else "2 workers (MultiWorkerMirroredStrategy)"
        print(
            f"| {label} | {r['replicas']} | {r['images_per_second']:.0f} | "
            f"{r['loss'][0]:.4f} -> {r['loss'][-1]:.4f} | {wall:.0f} |"
        )
    print(
        f"largest weight difference: worker 0 vs worker 1 {largest('worker0', 'worker1'):.2e}, "
        f"worker 0 vs single process {largest('worker0', 'single'):.2e}"
    )


def _launch_job(
    out: Path, settings: list[str], cluster: list[str] | None = None, index: int = 0
) -> subprocess.Popen:
    """One job process; with `cluster`, worker `index` of it (TF_CONFIG). Options go before "job"."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    if cluster is not None:
        env["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}
        )
    return subprocess.Popen([sys.executable, str(HERE), *settings, "job", str(out)], env=env)


if __name__ == "__main__":
    main()
