"""``robustmask attack``: attack a saved model and report success and perturbation sizes."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from robustmask.cli.options import add_model_and_data_options, eps_value, parse_params
from robustmask.errors import RobustmaskError

if TYPE_CHECKING:  # pragma: no cover - the command imports TensorFlow only when it runs
    import keras
    import numpy as np

    from robustmask.attacks.base import Attack

NAME = "attack"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    attack = commands.add_parser(
        NAME,
        help="attack a saved model and report success and perturbation sizes",
        description="Attack a saved model (.keras, SavedModel or a legacy Keras 2 .h5) on a folder of "
        "images or on synthetic faces, report, and optionally save the images.",
    )
    add_model_and_data_options(attack)
    attack.add_argument("--attack", default="fgsm", help="attack name (see `robustmask attacks`)")
    attack.add_argument(
        "--eps",
        type=eps_value,
        nargs="+",
        default=[0.004],
        metavar="EPS",
        help="epsilon(s), numbers or fractions such as 8/255 (default: 0.004)",
    )
    attack.add_argument(
        "--norm", metavar="inf|2|1", help="threat model of eps: inf (default, the paper's), 2 or 1"
    )
    attack.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="attack parameter, repeatable (e.g. --param steps=20)",
    )
    attack.add_argument(
        "--save",
        metavar="FILE.npz",
        help="save the adversarial images (per eps), the clean images and their labels as .npz",
    )
    attack.add_argument("--overwrite", action="store_true", help="replace an existing --save file")
    return attack


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from robustmask.attacks import attack_report
    from robustmask.cli._data import data_for, load_model
    from robustmask.cli.options import refuse_existing_file
    from robustmask.evaluation import named_norm

    if args.save:
        refuse_existing_file(args.save, "--save", args.overwrite)  # before the attack's time is spent
    attacker = attacker_for(args)  # a typo fails before the model loads
    model = load_model(args)
    x, y, names = data_for(model, args)
    eps = None if not attacker.eps_bounded else (args.eps if len(args.eps) != 1 else args.eps[0])
    # One run: the images saved are the ones reported (a random attack run again would give others).
    report, images = attack_report(attacker, model, x, y, eps=eps, return_adversarial=True)
    print(
        f"{attacker.name} ({attacker.norm.label}) on {args.model}: {len(x)} images, classes {', '.join(names)}"
    )
    print(_clean_accuracy_line(model, attacker, x, y))
    print(named_norm(report).to_string(index=False))
    print(
        "success rate: the share of all images the attack made the model predict as their target"
        if attacker.targeted
        else "success rate: the share of the images the model classified correctly before the attack "
        "whose class the attack changed (misclassified images are not counted)"
    )
    if args.save:
        adversarial = images[0] if eps is None or np.ndim(eps) == 0 else np.stack(images)
        _save(args.save, adversarial, x, y, names, eps)
    return 0


def attacker_for(args: argparse.Namespace) -> Attack:
    """The attack the command line names, with its --param values and --norm."""
    import robustmask

    params = parse_params(args.param)
    if args.norm is not None:
        if "norm" in params:
            raise RobustmaskError("give the norm once: --norm or --param norm=..., not both")
        params["norm"] = args.norm
    return robustmask.attacks.get(args.attack, **params)


def _clean_accuracy_line(model: keras.Model, attacker: Attack, x: np.ndarray, y: np.ndarray) -> str:
    """Clean accuracy: the images the attack's success rate is counted on are the correct ones."""
    import numpy as np

    predicted = attacker.predict_labels(model, x)
    correct = int(np.sum(predicted == y))
    return (
        f"clean accuracy: {100 * correct / len(y):.2f}% ({correct} of {len(y)} images correctly classified)"
    )


def _save(
    path: str, adversarial: np.ndarray, x: np.ndarray, y: np.ndarray, names: list[str], eps: object
) -> None:
    """--save: the adversarial images (per eps), the clean ones, labels, class names and epsilons."""
    import numpy as np

    from robustmask._io import write_atomically

    write_atomically(
        path,
        lambda tmp: np.savez_compressed(
            tmp,
            adversarial=adversarial,
            clean=x,
            labels=y,
            class_names=np.asarray(names),
            epsilons=np.atleast_1d(np.asarray(eps if eps is not None else np.nan, np.float64)),
        ),
        suffix=".npz",
    )
    print(f"saved {path}")
