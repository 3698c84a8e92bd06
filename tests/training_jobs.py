"""Training runs the trainer tests start in fresh processes (killed, split over devices).

python tests/training_jobs.py resume CHECKPOINT_DIR OUT.npz [--kill-at EPOCH]
python tests/training_jobs.py distributed OUT.npz [--devices 2]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))


def resume(args):
    import keras
    import numpy as np

    from conftest import make_images
    from robustmask.defenses import PGDAdversarialTrainer

    x, y = make_images(20)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )

    class KillMidEpoch(keras.callbacks.Callback):
        """SIGKILL in the middle of epoch `at` (0-based): no clean-up, no last checkpoint."""

        def __init__(self, at):
            super().__init__()
            self.at, self.epoch = at, None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == self.at and batch == 1:
                os.kill(os.getpid(), signal.SIGKILL)

    callbacks = [KillMidEpoch(args.kill_at)] if args.kill_at is not None else []
    trainer = PGDAdversarialTrainer(eps=0.1, steps=3, epochs=4, batch_size=16, eps_ramp=2, seed=3)
    defended, _ = trainer.fit(
        model, (x, y), checkpoint_dir=args.checkpoint_dir, callbacks=callbacks, verbose=0
    )
    np.savez(args.out, *defended.get_weights())


def distributed(args):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.devices)
    import keras
    import numpy as np

    from conftest import make_images
    from robustmask.defenses import MultiEpsilonAdversarialTrainer

    x, y = make_images(16)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    strategy = (
        tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(args.devices)])
        if args.devices > 1
        else None
    )
    # FGSM copies of the current model: deterministic, so one device and two must agree.
    trainer = MultiEpsilonAdversarialTrainer(
        [0.05, 0.1], source="current", epochs=3, batch_size=24, optimizer="sgd", strategy=strategy
    )
    defended, history = trainer.fit(model, (x, y), verbose=0)
    replicas = strategy.num_replicas_in_sync if strategy else 1
    np.savez(args.out, *defended.get_weights(), replicas=replicas, loss=np.asarray(history.history["loss"]))


def main():
    parser = argparse.ArgumentParser()
    jobs = parser.add_subparsers(dest="job", required=True)
    job = jobs.add_parser("resume")
    job.add_argument("checkpoint_dir")
    job.add_argument("out")
    job.add_argument("--kill-at", type=int)
    job = jobs.add_parser("distributed")
    job.add_argument("out")
    job.add_argument("--devices", type=int, default=2)
    args = parser.parse_args()
    {"resume": resume, "distributed": distributed}[args.job](args)


if __name__ == "__main__":
    main()
