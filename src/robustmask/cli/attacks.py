"""``robustmask attacks``: every attack name, what it is and the --param keys it takes."""

from __future__ import annotations

import argparse

NAME = "attacks"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    return commands.add_parser(
        NAME,
        help="list the attacks by name",
        description="List every attack name that "
        "--attack and robustmask.attacks.get() accept, plug-ins included.",
    )


def run(args: argparse.Namespace) -> int:
    """Every attack name with what it is and the --param keys it takes (plug-ins included)."""
    from robustmask._registry import parameter_names
    from robustmask.attacks import available, describe
    from robustmask.attacks.registry import resolve
    from robustmask.errors import AttackError

    for name in available():
        try:
            factory = resolve(name)
            info = describe(name)
        except AttackError as error:  # a missing package or a broken plug-in: say so, list the rest
            print(f"{name:<14} (cannot be loaded: {error})")
            continue
        summary = ((factory.__doc__ or "").strip().splitlines() or [""])[0]
        print(f"{name:<14} {summary}")
        print(f"{'':<14} --param keys: {', '.join(parameter_names(factory)) or '(none)'}")
        print(f"{'':<14} kind: {info.kind}, norm: {info.norm}, {info.steps}")
    return 0
