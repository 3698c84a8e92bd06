"""Adversarial training split over replicas and worker processes ends where one device ends.

Each run is a fresh process (the logical CPU devices and a worker's cluster must be set before
TensorFlow starts): ``python tests/test_distributed_training.py devices TRAINER OUT.npz`` trains
TRAINER once on one device and once under MirroredStrategy over two logical CPUs;
``python tests/test_distributed_training.py worker OUT.npz [--trainer T] [--checkpoint-dir DIR]``
trains T (Algorithm 2 by default) under MultiWorkerMirroredStrategy (its cluster from TF_CONFIG) or,
without TF_CONFIG, on one device. The data (63 images; 2 epsilons and batch 32: 11 clean images a
step; distillation's batches of 10, the last of 3) never split evenly over two replicas. Random
starts are off, so one device and two replicas must agree.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve()
TRAINERS = ("multi-eps-original", "multi-eps-current", "pgd-at", "fast-at", "trades", "distillation")
#: The trainers the worker-process tests run: Algorithm 2, and distillation's two runs.
WORKER_TRAINERS = ("multi-eps-current", "distillation")
#: Algorithm 2 fed a tf.data.Dataset, and steps of 2 clean images, the last of 1 (an empty slice).
FEEDS = ("multi-eps-dataset", "one-image-steps")
VALIDATION_KEYS = ("val_loss", "val_accuracy", "val_robust_accuracy")
#: Float tolerance: replicas sum gradients in another order than one device.
ATOL = 2e-5
#: Seconds a worker job may take (a loaded machine starts TensorFlow slowly).
JOB_TIMEOUT = 240


# ---------------------------------------------------------------------------- jobs (subprocesses)
def _data_and_model(size: int = 12):
    import keras

    sys.path.insert(0, str(HERE.parent))
    from conftest import make_images

    x, y = make_images(21, size=size)  # 63 images
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    return x, y, model


def _trainer(name: str, strategy, epochs: int = 2):
    from robustmask import defenses

    settings = {"epochs": epochs, "batch_size": 32, "strategy": strategy}
    if name == "distillation":  # teacher then student, each `epochs` epochs of 7 batches
        return defenses.DefensiveDistillation(5.0, **settings | {"batch_size": 10}, learning_rate=1e-2)
    if name == "one-image-steps":
        return defenses.MultiEpsilonAdversarialTrainer(
            [0.05], source="current", **settings | {"batch_size": 4}
        )
    if name == "multi-eps-dataset":
        return defenses.MultiEpsilonAdversarialTrainer([0.05, 0.1], source="current", **settings)
    if name.startswith("multi-eps"):
        source = name.rsplit("-", 1)[1]
        return defenses.MultiEpsilonAdversarialTrainer([0.05, 0.1], source=source, **settings)
    attacked = {"eps": 0.05, "eps_ramp": 0, **settings}
    trainer = {
        "pgd-at": lambda: defenses.PGDAdversarialTrainer(steps=2, **attacked),
        "fast-at": lambda: defenses.FastAdversarialTrainer(**attacked),
        # True labels for the copies: without a random start, the KL gradient at x' = x is 0 and
        # its sign is rounding noise, which one device and two replicas round differently.
        "trades": lambda: defenses.TRADESTrainer(steps=2, labels="true", **attacked),
    }[name]()
    trainer.attack.random_start = False  # noise is drawn per replica slice: off, so that runs compare
    return trainer


def devices_job(name: str, out: str) -> None:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    x, y, model = _data_and_model()
    validation = (x[:12], y[:12])  # val_loss, val_accuracy and the robust validation, both ways
    data = {
        "multi-eps-dataset": tf.data.Dataset.from_tensor_slices((x, y)).batch(20),
        "one-image-steps": (x[:23], y[:23]),
    }.get(name, (x, y))
    fit_args = {} if name == "distillation" else {"validation_data": validation}  # it validates none
    one, one_history = _trainer(name, None).fit(model, data, verbose=0, **fit_args)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    two, history = _trainer(name, mirrored).fit(model, data, verbose=0, **fit_args)
    arrays = {f"one_{i}": w for i, w in enumerate(one.get_weights())}
    arrays |= {f"two_{i}": w for i, w in enumerate(two.get_weights())}
    for key in VALIDATION_KEYS if fit_args else ():
        arrays |= {
            f"one_{key}": np.asarray(one_history.history[key]),
            f"two_{key}": np.asarray(history.history[key]),
        }
    np.savez(out, loss=np.asarray(history.history["loss"]), **arrays)


def worker_job(out: str, trainer_name: str, checkpoint_dir: str | None) -> None:
    import tensorflow as tf

    # First, before any other TensorFlow op: the strategy starts this worker's collective runtime.
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if "TF_CONFIG" in os.environ else None
    import keras

    x, y, model = _data_and_model()
    # "run,epoch,batch": SIGKILL there, no clean-up; run counts the trainings of one fit
    # (distillation: 0 the teacher, 1 the student).
    kill_at = os.environ.get("ROBUSTMASK_TEST_KILL_AT")

    class Kill(keras.callbacks.Callback):
        run = -1

        def on_train_begin(self, logs=None):
            self.run += 1

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if kill_at and (self.run, self.epoch, batch) == tuple(int(v) for v in kill_at.split(",")):
                os.kill(os.getpid(), signal.SIGKILL)

    trainer = _trainer(trainer_name, strategy, epochs=3)
    defended, history = trainer.fit(
        model, (x, y), checkpoint_dir=checkpoint_dir, callbacks=[Kill()], verbose=0
    )
    np.savez(out, *defended.get_weights(), loss=np.asarray(history.history["loss"]))


# ---------------------------------------------------------------------------- helpers
def _start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    environment.pop("TF_CONFIG", None)  # a cluster only where `env` names one
    environment.update(env or {})
    return subprocess.Popen(
        [sys.executable, str(HERE), *args], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _finish(process: subprocess.Popen, timeout: float = JOB_TIMEOUT) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"job timed out:\n{output.decode()[-3000:]}") from None
    text = output.decode()
    assert process.returncode == 0, text[-3000:]
    return text


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _cluster(ports: list[int], index: int) -> dict[str, str]:
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}


def _workers(ports: list[int], outs: list[Path], *extra: str, kill: dict[int, str] | None = None):
    kill = kill or {}
    return [
        _start(
            "worker",
            str(out),
            *extra,
            env=_cluster(ports, i) | ({"ROBUSTMASK_TEST_KILL_AT": kill[i]} if i in kill else {}),
        )
        for i, out in enumerate(outs)
    ]


def _weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files) - 1)]


def _assert_same(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for left, right in zip(a, b):
        np.testing.assert_allclose(left, right, atol=ATOL, rtol=0)


# ---------------------------------------------------------------------------- tests
@pytest.mark.parametrize("name", TRAINERS + FEEDS)
def test_two_replicas_train_every_trainer_as_one_device_does(tmp_path, name):
    out = tmp_path / "weights.npz"
    _finish(_start("devices", name, str(out)))
    with np.load(out) as data:
        count = sum(key.startswith("one_") and key[4:].isdigit() for key in data.files)
        _assert_same([data[f"one_{i}"] for i in range(count)], [data[f"two_{i}"] for i in range(count)])
        for key in VALIDATION_KEYS if name != "distillation" else ():
            np.testing.assert_allclose(data[f"one_{key}"], data[f"two_{key}"], atol=1e-5, err_msg=key)
        assert np.all(np.isfinite(data["loss"]))


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    """The weights of one process on one device, training on the same global batches (per trainer)."""
    made: dict[str, Path] = {}

    def weights_of(trainer: str) -> Path:
        if trainer not in made:
            made[trainer] = tmp_path_factory.mktemp("single") / f"{trainer}.npz"
            _finish(_start("worker", str(made[trainer]), "--trainer", trainer))
        return made[trainer]

    return weights_of


@pytest.mark.parametrize("trainer", WORKER_TRAINERS)
def test_two_worker_processes_end_with_the_weights_of_one_process(tmp_path, single_process, trainer):
    outs = [tmp_path / "worker0.npz", tmp_path / "worker1.npz"]
    for process in _workers(_free_ports(2), outs, "--trainer", trainer):
        _finish(process)
    _assert_same(_weights(outs[0]), _weights(outs[1]))
    _assert_same(_weights(outs[0]), _weights(single_process(trainer)))
    with np.load(outs[0]) as data:
        assert data["loss"][-1] < data["loss"][0]  # it learns


@pytest.mark.parametrize("trainer", WORKER_TRAINERS)
def test_a_killed_worker_restarted_with_its_cluster_ends_with_the_uninterrupted_weights(
    tmp_path, single_process, trainer
):
    ports, checkpoints = _free_ports(2), tmp_path / "ckpt"
    outs = [tmp_path / "worker0.npz", tmp_path / "worker1.npz"]
    extra = ("--trainer", trainer, "--checkpoint-dir", str(checkpoints))
    # Worker 1 dies in the middle of epoch 2 (distillation: of the student's, the teacher done).
    kill = "0,1,2" if trainer != "distillation" else "1,1,2"
    first = _workers(ports, outs, *extra, kill={1: kill})
    first[1].wait(timeout=JOB_TIMEOUT)
    assert first[1].returncode == -signal.SIGKILL
    first[0].kill()  # the chief waits at its next all-reduce: a cluster restarts every worker
    first[0].wait()
    state = checkpoints / ("student" if trainer == "distillation" else "") / "state.json"
    assert json.loads(state.read_text())["epoch"] == 1
    if trainer == "distillation":
        assert json.loads((checkpoints / "teacher" / "state.json").read_text())["epoch"] == 3
    assert not any(out.exists() for out in outs)
    time.sleep(1)  # the ports of the killed cluster are free again
    for process in _workers(ports, outs, *extra):  # the same command, for both workers
        _finish(process)
    _assert_same(_weights(outs[0]), _weights(outs[1]))
    _assert_same(_weights(outs[0]), _weights(single_process(trainer)))


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    jobs = parser.add_subparsers(dest="job", required=True)
    job = jobs.add_parser("devices")
    job.add_argument("name", choices=TRAINERS + FEEDS)
    job.add_argument("out")
    job = jobs.add_parser("worker")
    job.add_argument("out")
    job.add_argument("--trainer", choices=WORKER_TRAINERS, default=WORKER_TRAINERS[0])
    job.add_argument("--checkpoint-dir")
    args = parser.parse_args()
    if args.job == "devices":
        devices_job(args.name, args.out)
    else:
        worker_job(args.out, args.trainer, args.checkpoint_dir)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1] / "src"))
    main()
