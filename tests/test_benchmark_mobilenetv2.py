"""benchmarks/robust_mobilenetv2.py: the card's retrain command gives back the recipe that was run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "robust_mobilenetv2.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_robust_mobilenetv2", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_default_recipe_retrains_with_the_bare_command(bench):
    assert bench.retrain_command(bench.parse([])) == "python benchmarks/robust_mobilenetv2.py --ship"


def test_a_changed_recipe_is_in_the_command_and_where_it_ran_is_not(bench):
    argv = ["--epochs", "30", "--train-steps", "10", "--eps-ramp", "5", "--trainer", "trades"]
    run_only = ["--out", "runs/x", "--no-write", "--only-shard", "4", "--shards", "7"]
    command = bench.retrain_command(bench.parse(argv + run_only))
    assert command.endswith("--ship") and "runs/x" not in command and "--only-shard" not in command
    # the command parses back to the same recipe
    again = bench.parse(command.split()[2:])
    for name in ("epochs", "train_steps", "eps_ramp", "trainer"):
        assert getattr(again, name) == getattr(bench.parse(argv), name)
