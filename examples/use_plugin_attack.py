"""Install an attack plug-in package and use its attack by name.

`examples/plugin_attack/` is a complete third-party package: its pyproject.toml declares

    [project.entry-points."robustmask.attacks"]
    random-noise = "robustmask_random_noise:RandomNoise"

In your own environment you would just run ``pip install examples/plugin_attack``; then
``robustmask.attacks.get("random-noise")`` works in every Python process. So that this example leaves
your environment alone, it installs the package into a temporary folder (``pip install --target``)
and puts that folder on sys.path, which is all "installed" means to entry points.

Run:  python examples/use_plugin_attack.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PLUGIN = Path(__file__).resolve().parent / "plugin_attack"


def install_plugin(folder: str) -> None:
    """``pip install`` the plug-in into `folder` (offline: no dependencies, no build isolation)."""
    source = Path(folder) / "source"
    shutil.copytree(PLUGIN, source)  # build from a copy: the build leaves files in the source tree
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-index",
        "--no-deps",
        "--no-build-isolation",
        "--target",
        str(Path(folder) / "site"),
        str(source),
    ]
    print("$", " ".join(command[2:]))
    subprocess.run(command, check=True)
    sys.path.insert(0, str(Path(folder) / "site"))


def main():
    import keras
    import numpy as np

    import robustmask
    from robustmask.datasets import synthetic_face_masks

    with tempfile.TemporaryDirectory() as folder:
        if "random-noise" not in robustmask.attacks.available():
            install_plugin(folder)
        print("attacks available:", ", ".join(robustmask.attacks.available()))
        noise = robustmask.attacks.get("random-noise", seed=0)
        fgsm = robustmask.attacks.get("fgsm")
        print("built from the plug-in:", type(noise).__module__, type(noise).__name__)

        x, y = synthetic_face_masks(n_per_class=60, image_size=32, seed=1)
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((32, 32, 3)),
                keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
                keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
                keras.layers.Flatten(),
                keras.layers.Dense(3, activation="softmax"),
            ]
        )
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=10, batch_size=32, verbose=0)

        def accuracy(images):
            return 100.0 * np.mean(np.argmax(model.predict(images, verbose=0), axis=1) == y)

        print(f"clean accuracy: {accuracy(x):.1f}%")
        for eps in (0.01, 0.03):
            # Sanity check (Carlini et al. 2019): a gradient attack must beat random noise of the same size.
            print(
                f"eps={eps}: random-noise accuracy {accuracy(noise(model, x, y, eps=eps)):.1f}%, "
                f"FGSM accuracy {accuracy(fgsm(model, x, y, eps=eps)):.1f}%"
            )
    print("plug-in attack example done")


if __name__ == "__main__":
    main()
