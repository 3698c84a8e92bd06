"""One vocabulary: identifiers and flags say "defense"; attacks count ``steps``, ``restarts`` and
``epochs`` and step by ``rel_stepsize``; trainers take ``eps`` (the evaluation functions too:
test_eps_vocabulary.py); an ART adapter carries the ART prefix exactly when a native attack has its
name. The old names still work and warn."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pytest

from robustmask._study_config import StudyConfig
from robustmask.cli.main import build_parser
from robustmask.defenses import comparison, presets
from robustmask.errors import RobustmaskError

SRC = Path(__file__).resolve().parents[1] / "src" / "robustmask"

#: The alias shims, the only places the old spelling may stay: file -> top-level names whose whole
#: definition (a function or an assignment) is exempt.
SHIMS = {
    "defenses/comparison.py": {"compare_defences"},
    "defenses/presets.py": {"__getattr__"},
    "_study_config.py": {"_RENAMED_FIELDS"},
    "cli/reproduce.py": {"_RENAMED_FLAGS"},
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
        comparison.compare_defences("model", "train", "test", defences={"b": 2}, eps=[0.1])
    assert calls[1] == (("model", "train", "test"), {"defenses": {"b": 2}, "eps": [0.1]})


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


# -- one set of attack parameter names: steps, restarts, random_start, epochs, rel_stepsize ------------

#: ART's names and the old native ones: no attack or trainer takes them as named parameters any more.
OLD_PARAMETERS = {"max_iter", "nb_restarts", "num_random_init", "nb_random_init", "step_size", "epsilons"}

#: class, its new keywords, the same setting by the old keywords, what ART gets (ART's own names: an
#: independent statement of what the number means, e.g. restarts=2 is two runs in ART and native PGD).
RENAMED = [
    ("ARTFGSM", {"random_start": True, "restarts": 2}, {"num_random_init": 2}, {"num_random_init": 2}),
    ("ARTFGSM", {"random_start": False}, {"num_random_init": 0}, {"num_random_init": 0}),
    ("ARTBIM", {"steps": 3}, {"max_iter": 3}, {"max_iter": 3}),
    (
        "ARTPGD",
        {"steps": 3, "restarts": 2},
        {"max_iter": 3, "num_random_init": 2},
        {"max_iter": 3, "num_random_init": 2},
    ),
    ("ARTPGD", {"random_start": False}, {"num_random_init": 0}, {"num_random_init": 0}),
    ("MIFGSM", {"steps": 3}, {"max_iter": 3}, {"max_iter": 3}),
    (
        "ARTAutoPGD",
        {"steps": 3, "restarts": 2},
        {"max_iter": 3, "nb_random_init": 2},
        {"max_iter": 3, "nb_random_init": 2},
    ),
    ("DeepFool", {"steps": 3}, {"max_iter": 3}, {"max_iter": 3}),
    ("CarliniL2", {"steps": 3}, {"max_iter": 3}, {"max_iter": 3}),
    ("CarliniLInf", {"steps": 3}, {"max_iter": 3}, {"max_iter": 3}),
    (
        "ARTSquareAttack",
        {"steps": 3, "restarts": 2},
        {"max_iter": 3, "nb_restarts": 2},
        {"max_iter": 3, "nb_restarts": 2},
    ),
    ("HopSkipJump", {"steps": 3}, {"max_iter": 3}, {"max_iter": 3}),
    ("UniversalPerturbation", {"epochs": 3}, {"max_iter": 3}, {"max_iter": 3}),
    ("AdversarialPatch", {"epochs": 3}, {"max_iter": 3}, {"max_iter": 3}),
]
RENAMED_IDS = [f"{cls}-{'-'.join(old)}-{i}" for i, (cls, _, old, _) in enumerate(RENAMED)]


def _attack_class(name):
    import robustmask.attacks

    return getattr(robustmask.attacks, name)


@pytest.mark.parametrize("cls_name, new, old, art", RENAMED, ids=RENAMED_IDS)
def test_an_adapter_takes_the_native_names_and_still_the_old_ones_with_a_warning(cls_name, new, old, art):
    cls = _attack_class(cls_name)
    built = _no_warning(lambda: cls(**new))
    assert {key: built.art_params[key] for key in art} == art  # what the new names mean, in ART's terms
    with pytest.warns(
        DeprecationWarning, match=rf"^{cls_name}\({next(iter(old))}=\.\.\.\) is deprecated; use "
    ) as record:
        before = cls(**old)
    assert len(record) == len(old) and all(w.filename == __file__ for w in record)  # at the caller
    assert before.art_params == built.art_params and before.art_kwargs(0.1) == built.art_kwargs(0.1)


@pytest.mark.parametrize("cls_name, new, old, art", RENAMED, ids=RENAMED_IDS)
def test_an_old_and_a_new_name_together_are_a_one_line_error(cls_name, new, old, art):
    cls = _attack_class(cls_name)
    with pytest.raises(TypeError, match=rf"^{cls_name} got both '\w+' and '\w+'; give only '\w+'$"):
        cls(**old, **new)


def test_restarts_count_runs_as_native_pgd_does_and_random_start_false_is_one_run_from_x():
    from robustmask.attacks import ARTFGSM, ARTPGD, PGD, ARTAutoPGD, ARTSquareAttack, AutoPGD, SquareAttack
    from robustmask.errors import AttackError

    assert PGD(restarts=3).restarts == 3  # native: three runs
    assert ARTPGD(restarts=3).art_params["num_random_init"] == 3  # ART runs max(1, n) times
    assert ARTAutoPGD(restarts=3).art_params["nb_random_init"] == 3
    assert AutoPGD(restarts=3).restarts == 3  # native: three runs
    assert ARTSquareAttack(restarts=3).art_params["nb_restarts"] == 3
    assert SquareAttack(restarts=3).restarts == 3  # native: three runs
    assert ARTPGD(random_start=False).art_params["num_random_init"] == 0
    assert ARTFGSM().art_params["num_random_init"] == 0  # the plain FGSM by default
    for make in (lambda: ARTPGD(restarts=2, random_start=False), lambda: PGD(restarts=2, random_start=False)):
        with pytest.raises(AttackError, match="restarts > 1 needs random_start=True"):
            make()
    for make in (lambda: ARTPGD(restarts=0), lambda: SquareAttack(steps=0), lambda: PGD(restarts=0)):
        with pytest.raises(AttackError, match="must be a positive integer"):
            make()


def test_the_new_names_give_the_same_images_as_the_old_with_the_same_seed(tiny_model, tiny_data):
    from robustmask.attacks import ARTPGD, ARTSquareAttack, SGDUniversalPerturbation

    x, y = tiny_data[0][:12], tiny_data[1][:12]

    def run(attack):
        np.random.seed(0)  # ART's random starts and Square's squares come from NumPy's global generator
        return attack(tiny_model, x, y, eps=0.05)

    new = run(ARTPGD(steps=3, restarts=2))
    with pytest.warns(DeprecationWarning):
        old = run(ARTPGD(max_iter=3, num_random_init=2))
    np.testing.assert_array_equal(new, old)
    assert not np.array_equal(new, run(ARTPGD(steps=3, random_start=False)))  # the seed is what matches them

    new = run(ARTSquareAttack(steps=5, restarts=2))
    with pytest.warns(DeprecationWarning):
        np.testing.assert_array_equal(new, run(ARTSquareAttack(max_iter=5, nb_restarts=2)))

    uap = SGDUniversalPerturbation(epochs=1, rel_stepsize=0.2, seed=0)
    with pytest.warns(
        DeprecationWarning, match=r"SGDUniversalPerturbation\(step_size=\.\.\.\) .* use rel_stepsize="
    ):
        old_uap = SGDUniversalPerturbation(epochs=1, step_size=0.2, seed=0)
    np.testing.assert_array_equal(run(uap), run(old_uap))
    with pytest.warns(DeprecationWarning, match="step_size is deprecated"):
        assert old_uap.step_size == 0.2 == uap.rel_stepsize


def test_sgd_universal_abs_stepsize_is_the_step_in_input_units():
    from robustmask.attacks import SGDUniversalPerturbation

    assert SGDUniversalPerturbation(rel_stepsize=0.2).stepsize(0.5) == pytest.approx(0.1)
    assert SGDUniversalPerturbation(rel_stepsize=0.2, abs_stepsize=0.03).stepsize(0.5) == 0.03
    assert "abs_stepsize=0.03" in repr(SGDUniversalPerturbation(abs_stepsize=0.03))


def test_the_registry_takes_old_names_with_a_warning_and_refuses_both_in_one_line():
    import robustmask.attacks as attacks
    from robustmask import defenses
    from robustmask.errors import AttackError, RobustmaskError

    with pytest.warns(DeprecationWarning, match=r"ARTPGD\(max_iter=\.\.\.\) is deprecated; use steps="):
        assert attacks.get("art-pgd", max_iter=2).art_params["max_iter"] == 2
    with pytest.raises(AttackError, match=r"^ARTPGD got both 'max_iter' and 'steps'; give only 'steps'$"):
        attacks.get("art-pgd", max_iter=2, steps=2)
    with pytest.warns(
        DeprecationWarning, match=r"MultiEpsilonAdversarialTrainer\(epsilons=\.\.\.\).*use eps="
    ):
        assert defenses.get("multi-eps", epsilons=[0.01, 0.02]).eps == [0.01, 0.02]
    with pytest.raises(
        RobustmaskError, match=r"^MultiEpsilonAdversarialTrainer got both 'epsilons' and 'eps'"
    ):
        defenses.get("multi-eps", epsilons=[0.01], eps=[0.02])
    with pytest.raises(AttackError, match="has no parameter 'stepz'"):  # unknown names are still refused
        attacks.get("art-pgd", stepz=2)


def test_no_attack_or_trainer_lists_an_old_name_among_its_parameters():
    import robustmask.attacks as attacks
    from robustmask import defenses
    from robustmask._registry import parameter_names

    listed = {name: parameter_names(attacks.registry.resolve(name)) for name in attacks.registry._BUILTIN}
    listed.update(
        {name: parameter_names(defenses.registry._REGISTRY.resolve(name)) for name in defenses.available()}
    )
    assert {
        name: sorted(set(names) & OLD_PARAMETERS)
        for name, names in listed.items()
        if set(names) & OLD_PARAMETERS
    } == {}
    # the generic adapter's ART class is passed by the named adapters themselves: not a --param key
    assert all("art_attack_class" not in names for names in listed.values())
    for name in ("art-pgd", "autopgd", "art-autopgd", "square", "art-square"):
        assert {"steps", "restarts"} <= set(listed[name])
    assert (
        "epochs" in listed["universal"]
        and "epochs" in listed["patch"]
        and "epochs" in listed["universal-sgd"]
    )
    assert "rel_stepsize" in listed["universal-sgd"] and "eps" in listed["multi-eps"]


# -- trainers take eps ---------------------------------------------------------------------------------


def _settings(trainer):
    return {k: v for k, v in vars(trainer).items() if k != "attack"}


@pytest.mark.parametrize("which", ["core", "multi-eps"])
def test_trainers_take_eps_and_still_epsilons_with_a_warning(which):
    from robustmask.attacks import FGSM
    from robustmask.defenses import AdversarialTrainer, MultiEpsilonAdversarialTrainer

    make = (
        (lambda **kw: AdversarialTrainer(FGSM(), **kw)) if which == "core" else MultiEpsilonAdversarialTrainer
    )
    new = _no_warning(lambda: make(eps=[0.01, 0.02], epochs=1))
    assert new.eps == [0.01, 0.02] and _no_warning(lambda: make(eps=0.03)).eps == [0.03]
    with pytest.warns(DeprecationWarning, match=r"\(epsilons=\.\.\.\) is deprecated; use eps=") as record:
        old = make(epsilons=[0.01, 0.02], epochs=1)
    assert record[0].filename == __file__
    assert _settings(old) == _settings(new) and "epsilons" not in vars(new)
    with pytest.warns(DeprecationWarning, match=r"\.epsilons is deprecated; use .*\.eps"):
        assert new.epsilons == [0.01, 0.02]
    with pytest.raises(TypeError, match=r"got both 'epsilons' and 'eps'; give only 'eps'$"):
        make(epsilons=[0.01], eps=[0.02])


def test_a_trainer_built_with_epsilons_trains_as_one_built_with_eps(tiny_model, tiny_data):
    import keras

    from robustmask.defenses import MultiEpsilonAdversarialTrainer

    x, y = tiny_data[0][:32], tiny_data[1][:32]
    weights = []
    for keywords in ({"eps": [0.02, 0.04]}, {"epsilons": [0.02, 0.04]}):
        keras.utils.set_random_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            trainer = MultiEpsilonAdversarialTrainer(**keywords, epochs=1, batch_size=16, seed=0)
        defended, _ = trainer.fit(tiny_model, (x, y), verbose=0)
        weights.append(defended.get_weights())
    for new, old in zip(*weights):
        np.testing.assert_array_equal(new, old)
    assert any(not np.array_equal(w, v) for w, v in zip(weights[0], tiny_model.get_weights()))  # it trained


def test_robust_preset_takes_epsilons_as_eps():
    with pytest.warns(DeprecationWarning, match=r"robust_preset\(epsilons=\.\.\.\)"):
        assert presets.robust_preset("multi-eps", epochs=1, epsilons=[0.01]).eps == [0.01]
    assert _no_warning(lambda: presets.robust_preset("multi-eps", epochs=1)).eps == list(
        presets.PAPER_TRAIN_EPSILONS
    )
    with pytest.raises(RobustmaskError, match="not at one budget eps=0.03"):
        presets.robust_preset("multi-eps", epochs=1, eps=0.03)  # one number is a budget: refused


# -- one prefix rule for the ART adapters -------------------------------------------------------------


def prefix_rule_violations(adapters, natives):
    """The rule of `robustmask.attacks.art`: an adapter carries the ART prefix exactly when a native
    attack has the same name, and a prefixed one is registered as "art-" + its namesake's registry name.

    `adapters` and `natives` map class names to registry names (None: not registered). Returns one
    line per adapter that breaks the rule."""
    found = []
    for cls, key in adapters.items():
        twin = cls[3:] if cls.startswith("ART") else None
        if twin is not None and twin not in natives:
            found.append(f"{cls}: has the ART prefix, but there is no native {twin}")
        if twin is None and cls in natives:
            found.append(f"{cls}: a native {cls} exists; the adapter is ART{cls}")
        if key is None:
            continue
        if twin is None and key.startswith("art-"):
            found.append(f"{cls}: registered as {key!r}; only adapters with the ART prefix are 'art-...'")
        if twin in natives and natives[twin] is not None and key != f"art-{natives[twin]}":
            found.append(f"{cls}: registered as {key!r}, not 'art-{natives[twin]}'")
    return found


def _classes_by_kind():
    import inspect

    import robustmask.attacks as attacks
    from robustmask.attacks import art
    from robustmask.attacks.base import Attack

    registered = {path.partition(":")[2]: key for key, path in attacks.registry._BUILTIN.items()}
    adapters, natives = {}, {}
    for name in sorted(set(attacks.__all__) | set(art.__all__)):
        value = getattr(art if name in art.__all__ else attacks, name)
        if inspect.isclass(value) and issubclass(value, Attack):
            side = adapters if issubclass(value, art.ARTAttack) else natives
            side[name] = registered.get(name)
    return adapters, natives


def test_every_adapter_carries_the_art_prefix_exactly_when_a_native_attack_has_its_name():
    adapters, natives = _classes_by_kind()
    assert {"ARTAttack", "ARTFGSM", "ARTBIM", "ARTPGD", "MIFGSM", "DeepFool", "ARTSquareAttack"} <= set(
        adapters
    )
    assert {"Attack", "FGSM", "BIM", "PGD", "SquareAttack", "SGDUniversalPerturbation"} <= set(natives)
    assert prefix_rule_violations(adapters, natives) == []


@pytest.mark.parametrize(
    "adapters, natives, why",
    [
        ({"ARTMIFGSM": "mifgsm"}, {"PGD": "pgd"}, "no native MIFGSM"),
        ({"PGD": "pgd-art"}, {"PGD": "pgd"}, "the adapter is ARTPGD"),
        ({"DeepFool": "art-deepfool"}, {"PGD": "pgd"}, "only adapters with the ART prefix"),
        ({"ARTPGD": "pgd2"}, {"PGD": "pgd"}, "not 'art-pgd'"),
        ({"ARTAttack": None}, {"PGD": "pgd"}, "no native Attack"),
    ],
)
def test_the_prefix_check_finds_a_broken_name(adapters, natives, why):
    (line,) = prefix_rule_violations(adapters, natives)
    assert why in line
