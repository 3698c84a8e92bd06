"""One vocabulary: identifiers and flags say "defense"; the old "defence" names still work and warn."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest

from robustmask._study_config import StudyConfig
from robustmask.cli.main import build_parser
from robustmask.defenses import comparison, presets

SRC = Path(__file__).resolve().parents[1] / "src" / "robustmask"

#: The alias shims, the only places the old spelling may stay: file -> top-level names whose whole
#: definition (a function or an assignment) is exempt.
SHIMS = {
    "defenses/comparison.py": {"compare_defences"},
    "defenses/presets.py": {"__getattr__"},
    "_study_config.py": {"_RENAMED_FIELDS"},
    "cli/main.py": {"_RENAMED_FLAGS"},
    "cli/defend.py": {"_RENAMED_FLAGS"},
}


def _no_warning(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return call()


# -- the Python names ---------------------------------------------------------------------------------


def test_compare_defences_warns_and_calls_compare_defenses(monkeypatch):
    calls = []
    monkeypatch.setattr(comparison, "compare_defenses", lambda *args, **kwargs: calls.append((args, kwargs)))
    with pytest.warns(DeprecationWarning, match="compare_defences is deprecated; use .*compare_defenses"):
        comparison.compare_defences("model", "train", "test", {"a": 1}, [0.1], progress=True)
    assert calls == [(("model", "train", "test", {"a": 1}, [0.1]), {"progress": True})]
    with pytest.warns(DeprecationWarning, match="defenses="):  # its old keyword too
        comparison.compare_defences("model", "train", "test", defences={"b": 2}, epsilons=[0.1])
    assert calls[1] == (("model", "train", "test"), {"defenses": {"b": 2}, "epsilons": [0.1]})


def test_compare_defenses_is_the_function_and_takes_defenses():
    import inspect

    assert "defenses" in inspect.signature(comparison.compare_defenses).parameters
    assert "defenses" in inspect.signature(presets.robust_comparison).parameters


def test_defence_names_warns_and_is_defense_names():
    assert _no_warning(lambda: presets.DEFENSE_NAMES) == ("multi-eps", "fast-at", "pgd-at", "trades")
    with pytest.warns(DeprecationWarning, match="DEFENCE_NAMES is deprecated; use .*DEFENSE_NAMES"):
        assert presets.DEFENCE_NAMES is presets.DEFENSE_NAMES
    with pytest.raises(AttributeError, match="NOT_A_NAME"):
        presets.NOT_A_NAME  # noqa: B018


OLD_FIELDS = {
    "defence_source": ("defense_source", "current"),
    "defence_epochs": ("defense_epochs", 3),
    "defence_batch_size": ("defense_batch_size", 16),
    "robust_defence": ("robust_defense", "trades"),
}


@pytest.mark.parametrize("preset", ["quick", "full"])
@pytest.mark.parametrize("old", sorted(OLD_FIELDS))
def test_study_config_takes_the_old_field_names_with_a_warning(preset, old):
    new, value = OLD_FIELDS[old]
    make = getattr(StudyConfig, preset)
    with pytest.warns(DeprecationWarning, match=rf"\({old}=.*deprecated; use {new}=") as record:
        config = make(**{old: value})
    assert getattr(config, new) == value and not hasattr(config, old)
    assert record[0].filename == __file__  # the warning points at the caller
    assert getattr(_no_warning(lambda: make(**{new: value})), new) == value
    with pytest.raises(TypeError, match="both"):
        make(**{old: value, new: value})


def test_the_defense_registry_says_defense():
    from robustmask import defenses
    from robustmask.errors import RobustmaskError

    with pytest.raises(RobustmaskError, match="unknown defense 'pgd-ta'"):
        defenses.get("pgd-ta")


# -- the command line ---------------------------------------------------------------------------------

FLAGS = [
    (["reproduce", "--defence-epochs", "3"], "--defence-epochs", "--defense-epochs", "defense_epochs", 3),
    (
        ["reproduce", "--defence-source", "current"],
        "--defence-source",
        "--defense-source",
        "defense_source",
        "current",
    ),
    (
        ["reproduce", "--robust-defence", "trades"],
        "--robust-defence",
        "--robust-defense",
        "robust_defense",
        "trades",
    ),
    (["defend", "--defence", "trades"], "--defence", "--defense", "defense", "trades"),
]


@pytest.mark.parametrize("argv, old, new, dest, value", FLAGS)
def test_old_flags_still_set_the_value_and_warn_in_one_line(capsys, argv, old, new, dest, value):
    args = build_parser().parse_args(argv)
    assert getattr(args, dest) == value
    assert capsys.readouterr().err == f"robustmask: warning: {old} is deprecated; use {new}\n"
    new_argv = [argv[0], new, argv[2]]
    assert getattr(build_parser().parse_args(new_argv), dest) == value
    assert capsys.readouterr().err == ""


def test_old_flags_keep_the_new_ones_checks_and_stay_out_of_help(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["reproduce", "--defence-epochs", "three"])
    assert "invalid int value" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["reproduce", "--defence-source", "neither"])
    assert "invalid choice" in capsys.readouterr().err
    for command in ("reproduce", "defend"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        shown = capsys.readouterr().out
        assert "--defence" not in shown and "--robust-defence" not in shown


# -- no identifier in src spells it "defence" ---------------------------------------------------------


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _shim_names(statement: ast.stmt) -> set[str]:
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {statement.name}
    if isinstance(statement, (ast.Assign, ast.AnnAssign)):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        return {target.id for target in targets if isinstance(target, ast.Name)}
    return set()


def old_spellings(source: str, shims: set[str] = frozenset()) -> list[str]:
    """'line: name' for each identifier, flag or key of `source` that contains "defence" (any case):
    names, attributes, definitions, arguments, keywords, imports and string constants other than
    docstrings and prose (a constant with a space); comments are not in the AST. Top-level
    definitions named in `shims` are skipped."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found = []
    for statement in tree.body:
        if _shim_names(statement) & shims:
            continue
        for node in ast.walk(statement):
            names: list[str | None] = []
            if isinstance(node, ast.Name):
                names = [node.id]
            elif isinstance(node, ast.Attribute):
                names = [node.attr]
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, ast.arg):
                names = [node.arg]
            elif isinstance(node, ast.keyword):
                names = [node.arg]
            elif isinstance(node, ast.alias):
                names = [node.name, node.asname]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) not in docstrings and " " not in node.value and "." not in node.value:
                    names = [node.value]  # a key, a column, a flag (a file name like defences.md aside)
            found += [f"{node.lineno}: {name}" for name in names if name and "defence" in name.lower()]
    return found


def test_no_identifier_in_src_spells_defence():
    offending = {}
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        found = old_spellings(path.read_text(encoding="utf-8"), SHIMS.get(relative, set()))
        if found:
            offending[relative] = found
    assert offending == {}


def test_every_shim_is_there():
    for relative, names in SHIMS.items():
        tree = ast.parse((SRC / relative).read_text(encoding="utf-8"))
        defined = set().union(*(_shim_names(statement) for statement in tree.body))
        assert names <= defined, relative


@pytest.mark.parametrize(
    "source",
    [
        "def compare_defences(): pass",
        "DEFENCE_NAMES = ()",
        "x = config.robust_defence",
        "StudyConfig(defence_epochs=1)",
        "table.groupby('Defence')",
        "summary = {'defence': name}",
        "parser.add_argument('--defence-source')",
        "from robustmask.defenses.presets import DEFENCE_NAMES",
        "def f(defences): return defences",
    ],
)
def test_the_check_finds_an_old_identifier(source):
    assert old_spellings(source) != []


def test_the_check_lets_prose_and_shims_be():
    source = '"""A defence."""\n# a defence\nprint("train a defence first")\ndef old(): return "defence"\n'
    assert old_spellings(source, {"old"}) == []
    assert old_spellings(source) == ["4: defence"]
