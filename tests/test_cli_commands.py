"""The command line's shape: one module per command dispatched from one table, options defined once,
old flag spellings that warn and still work, and bad input refused in one line.

Nothing here trains or attacks: each command's ``run`` is replaced where the test is about dispatch.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from robustmask.cli import main as cli_main
from robustmask.cli.main import COMMANDS, build_parser, main

#: The smallest command line of each sub-command that parses.
MINIMAL = {
    "reproduce": [],
    "attack": ["--model", "m.keras"],
    "evaluate": ["--model", "m.keras"],
    "merge": ["shards/"],
    "defend": [],
    "report": ["runs/x"],
    "compare": ["runs/a", "runs/b"],
    "scan": ["photo.jpg", "--out", "s"],
    "universal": ["--out", "u"],
    "attacks": [],
    "seed-weights": [],
    "synthetic": ["--out", "faces"],
}


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return parser._option_string_actions.get(flag)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("robustmask: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------------------------ the dispatch table
def test_the_table_holds_every_subcommand_once_each_with_the_interface():
    names = [command.NAME for command in COMMANDS]
    assert len(names) == len(set(names))
    assert set(names) == set(subparsers(build_parser())) == set(MINIMAL)
    for command in COMMANDS:
        assert callable(command.add_parser) and callable(command.run), command.__name__


@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_main_runs_the_module_of_the_command_named(name, monkeypatch):
    ran = []
    for command in COMMANDS:  # every run replaced: only the named one may be called
        monkeypatch.setattr(command, "run", lambda args, module=command.NAME: ran.append((module, args)) or 7)
    assert main([name, *MINIMAL[name]]) == 7
    assert [module for module, _ in ran] == [name]
    assert ran[0][1].command == name


def test_robustmask_help_lists_every_command_without_tensorflow():
    code = (
        "import sys; from robustmask.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TF' if 'tensorflow' in sys.modules else 'no TF')"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    listed = {line.split()[0] for line in run.stdout.splitlines() if line.startswith("    ")}
    assert {command.NAME for command in COMMANDS} <= listed
    assert run.stdout.strip().endswith("no TF")


# ------------------------------------------------------------------------------- options defined once
def test_class_names_and_n_per_class_are_the_same_option_everywhere():
    parsers = subparsers(build_parser())
    with_class_names = {name for name, p in parsers.items() if option(p, "--class-names")}
    assert {"attack", "evaluate", "defend", "scan", "universal", "synthetic"} <= with_class_names
    for name in with_class_names:
        action = option(parsers[name], "--class-names")
        assert (action.nargs, action.dest, action.metavar) == ("+", "class_names", "NAME"), name
    with_n = {name for name, p in parsers.items() if option(p, "--n-per-class")}
    assert {"reproduce", "attack", "evaluate", "defend", "universal", "synthetic"} <= with_n
    for name in with_n:
        assert option(parsers[name], "--n-per-class").dest == "n_per_class", name
        assert "per class" in option(parsers[name], "--n-per-class").help, name


def test_attack_and_evaluate_share_their_model_and_data_options():
    parsers = subparsers(build_parser())

    def described(name: str) -> list[tuple]:
        shared = {"model", "inputs", "unsafe", "data", "n_per_class", "class_names", "seed"}
        return [
            (a.dest, a.nargs, a.default, a.required, a.help)
            for a in parsers[name]._actions
            if a.dest in shared and a.help != argparse.SUPPRESS
        ]

    assert described("attack") == described("evaluate") and len(described("attack")) == 7


# --------------------------------------------------------------------------------------- old spellings
@pytest.mark.parametrize(
    "argv, old, new, dest, value",
    [
        (["attack", "--model", "m", "--n", "7"], "--n", "--n-per-class", "n_per_class", 7),
        (["evaluate", "--model", "m", "--n", "9"], "--n", "--n-per-class", "n_per_class", 9),
        (
            ["synthetic", "--out", "s", "--classes", "with_mask", "without_mask"],
            "--classes",
            "--class-names",
            "class_names",
            ["with_mask", "without_mask"],
        ),
    ],
)
def test_an_old_flag_warns_in_one_line_and_sets_the_new_one(capsys, argv, old, new, dest, value):
    args = build_parser().parse_args(argv)
    assert getattr(args, dest) == value
    assert capsys.readouterr().err == f"robustmask: warning: {old} is deprecated; use {new}\n"
    new_argv = [new if part == old else part for part in argv]
    assert getattr(build_parser().parse_args(new_argv), dest) == value
    assert capsys.readouterr().err == ""
    with pytest.raises(SystemExit):
        build_parser().parse_args([argv[0], "--help"])
    assert old + " " not in capsys.readouterr().out  # hidden from the help


def test_the_old_n_keeps_the_new_flags_type_check(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["attack", "--model", "m", "--n", "ten"])
    assert "invalid int value: 'ten'" in capsys.readouterr().err


def test_reproduce_flags_set_the_grouped_settings(monkeypatch):
    import robustmask.reproduce
    from robustmask.reproduce import StudyConfig

    studies = []
    monkeypatch.setattr(robustmask.reproduce, "run_study", lambda config, *a, **k: studies.append(config))
    argv = ["reproduce", "--n-per-class", "7", "--defense-epochs", "2", "--no-robust", "--no-clip"]
    assert main(argv) == 0
    expected = StudyConfig.quick(n_per_class=7, defense_epochs=2, robust=False, clip=False)
    assert studies == [expected]
    assert studies[0].images.n_per_class == 7 and studies[0].defense.epochs == 2
    assert not studies[0].robust_stage.enabled and not studies[0].sweep.clip
    assert main(["reproduce", "--full", "--epochs", "3"]) == 0
    assert studies[1] == StudyConfig.full(epochs=3) and studies[1].images.image_size == 224
    assert main(["reproduce"]) == 0 and studies[2] == StudyConfig.quick()


# ------------------------------------------------------------------------------ bad input, one line
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 3-class model on 16 px images, untrained (only its shapes matter here), and a 16x24 one."""
    import keras

    root = tmp_path_factory.mktemp("models")
    for name, shape in (("square", (16, 16, 3)), ("wide", (16, 24, 3))):
        keras.Sequential(
            [keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")]
        ).save(root / f"{name}.keras")
    return root


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--n-per-class", "0"], "--n-per-class must be a positive integer, got 0"),
        (["--class-names", "masked"], "--class-names masked: the synthetic classes are"),
        (["--data", "no/such/folder"], "data folder no/such/folder does not exist"),
    ],
)
def test_bad_data_options_are_one_line_errors_before_any_attack(
    tiny_model, capsys, monkeypatch, extra, message
):
    def no_attack(*args, **kwargs):
        raise AssertionError("the attack ran")

    monkeypatch.setattr("robustmask.attacks.attack_report", no_attack)
    for command in ("attack", "evaluate"):
        assert main([command, "--model", str(tiny_model / "square.keras"), *extra]) == 2
        assert message in one_error_line(capsys)


def test_synthetic_faces_for_a_non_square_model_name_data(tiny_model, capsys):
    assert main(["attack", "--model", str(tiny_model / "wide.keras")]) == 2
    assert "synthetic faces are square; the model takes 16x24: pass --data" in one_error_line(capsys)


def test_no_command_prints_the_help(capsys):
    assert main([]) == 0
    assert "COMMAND" in capsys.readouterr().out
    assert cli_main.COMMANDS is COMMANDS
