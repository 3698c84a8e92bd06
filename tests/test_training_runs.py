"""Trustworthy training runs, each in fresh processes: resumed after SIGKILL, split over devices, flat memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

JOBS = str(Path(__file__).with_name("training_jobs.py"))


def run_job(*args, expect_kill: bool = False) -> str:
    done = subprocess.run(
        [sys.executable, JOBS, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    if expect_kill:
        assert done.returncode == -9, (
            f"the job was to be killed, it ended with {done.returncode}: {done.stderr[-2000:]}"
        )
    else:
        assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def weights(path):
    with np.load(path) as data:
        return [data[k] for k in data.files if k.startswith("arr_")]


def test_a_run_killed_and_restarted_ends_with_the_uninterrupted_weights(tmp_path):
    run_job("resume", str(tmp_path / "straight"), str(tmp_path / "straight.npz"))
    run_job(
        "resume", str(tmp_path / "killed"), str(tmp_path / "killed.npz"), "--kill-at", "2", expect_kill=True
    )
    state = json.loads((tmp_path / "killed" / "state.json").read_text())
    assert state["epoch"] == 2  # killed in the middle of the third epoch: two checkpoints were written
    assert sorted(p.name for p in (tmp_path / "killed").iterdir()) == ["epoch-0002.weights.h5", "state.json"]
    run_job("resume", str(tmp_path / "killed"), str(tmp_path / "killed.npz"))  # the same command again
    for a, b in zip(weights(tmp_path / "straight.npz"), weights(tmp_path / "killed.npz")):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_a_checkpoint_of_another_run_is_refused(tmp_path, tiny_model, tiny_data):
    from robustmask.defenses import PGDAdversarialTrainer
    from robustmask.errors import RobustmaskError

    x, y = tiny_data
    PGDAdversarialTrainer(eps=0.1, steps=2, epochs=1).fit(
        tiny_model, (x, y), checkpoint_dir=tmp_path, verbose=0
    )
    before = (tmp_path / "state.json").read_bytes()
    with pytest.raises(RobustmaskError, match="holds a checkpoint of another run .*steps|eps"):
        PGDAdversarialTrainer(eps=0.2, steps=2, epochs=1).fit(
            tiny_model, (x, y), checkpoint_dir=tmp_path, verbose=0
        )
    assert (tmp_path / "state.json").read_bytes() == before  # nothing of the earlier run was overwritten


def test_two_devices_train_the_same_model_as_one(tmp_path):
    run_job("distributed", str(tmp_path / "two.npz"), "--devices", "2")
    run_job("distributed", str(tmp_path / "one.npz"), "--devices", "1")
    with np.load(tmp_path / "two.npz") as two, np.load(tmp_path / "one.npz") as one:
        assert int(two["replicas"]) == 2 and int(one["replicas"]) == 1
        np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-5)
        assert two["loss"][-1] < two["loss"][0]
    for a, b in zip(weights(tmp_path / "two.npz"), weights(tmp_path / "one.npz")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads resident memory from Linux's /proc")
@pytest.mark.parametrize("name", ["multi-eps", "pgd-at", "fast-at", "trades"])
def test_peak_memory_stays_flat_when_the_data_grows_4x(name):
    def peak(n):
        line = [row for row in run_job("memory", name, str(n)).splitlines() if row.startswith("PEAK_MIB")][0]
        return float(line.split()[1])

    small, large = peak(640), peak(2560)
    # 1,920 more images of 12 KiB are 22 MiB: a trainer that held the data (or D') would show it. The
    # 6 MiB of slack is run-to-run noise of the sampled RSS (measured 16-17 MiB at 640 images, 19-20
    # at 2,560, once 14.4 against 21.4 on a loaded machine), well under the 22 MiB it must catch.
    assert large <= 1.15 * small + 6.0, (
        f"{name}: peak {small:.1f} MiB at 640 images, {large:.1f} MiB at 2,560"
    )
