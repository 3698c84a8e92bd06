"""The example scripts run (exit 0) and print what they promise."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=EXAMPLES.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "custom_attack_subclass.py",
            [
                "RFGSM on 180 synthetic face-mask images:",
                "Evaluator with the registered 'rfgsm':",
                "custom attack example done",
            ],
        ),
        (
            "use_plugin_attack.py",
            ["built from the plug-in: robustmask_random_noise RandomNoise", "plug-in attack example done"],
        ),
        (
            "bring_your_own_model.py",
            [
                "the model expects [-1, 1]",
                "FGSM eps 0.008 (of [0, 1] pixels)",
                "bring-your-own-model example done",
            ],
        ),
    ],
)
def test_example_runs(name, expected):
    output = run_example(name)
    for line in expected:
        assert line in output, output[-3000:]


def test_plugin_package_declares_its_entry_point():
    project = tomllib.loads((EXAMPLES / "plugin_attack" / "pyproject.toml").read_text())["project"]
    from robustmask.attacks import ENTRY_POINT_GROUP

    module, _, attr = project["entry-points"][ENTRY_POINT_GROUP]["random-noise"].partition(":")
    assert (EXAMPLES / "plugin_attack" / f"{module}.py").is_file() and attr == "RandomNoise"
