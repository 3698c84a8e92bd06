"""PGD adversarial training (Madry et al. 2018)."""

from __future__ import annotations

from typing import Any

from robustmask.attacks.pgd import PGD
from robustmask.defenses.adversarial_training import AdversarialTrainer


class PGDAdversarialTrainer(AdversarialTrainer):
    """Train on PGD examples of the current model: min over weights of max over the eps ball.

    Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep Learning Models Resistant to
    Adversarial Attacks", ICLR 2018, https://arxiv.org/abs/1706.06083. Each update replaces the
    clean batch by its PGD copies (``ratio=1.0``), made with a random start and true labels against
    the model as it trains. The default eps ramp (Gowal et al. 2018's warm-up) and cosine-decayed
    Adam (1e-3) help small models that start from scratch or from a non-robust solution; BatchNorm
    trains on the adversarial batches.

    How long: robustness comes with updates, not passes. ``epochs=None`` (the default) trains for
    at least 600 updates, ``max(10, ceil(600 / ceil(n / batch_size)))`` epochs for n training
    images: 32 epochs for 600 images in batches of 32, 16 for 1,200, 10 from 1,920 images on (a
    larger set gets 10 passes and more updates). Measured on a small BatchNorm CNN trained on 600
    faces at 48 px, eps 0.03 (benchmarks/default_trainer_check.py): 10 epochs (190 updates) gained
    12 points under PGD-20, 32 epochs (the default) 28, clean accuracy no lower than the
    undefended model's. Give `validation_data`: `fit` then keeps the most robust epoch and warns
    when robust accuracy was still rising at the end (train longer).

    Args:
        eps: the training budget (L-inf).
        steps: PGD steps per update (7 in Madry et al.'s CIFAR-10 set-up).
        rel_stepsize: PGD's step as a fraction of eps (2.5 / steps by default).
        ratio: the PGD copies' share of the loss (1.0: Madry; 0.5: Goodfellow's mixed loss).
        eps_ramp: epochs over which eps grows from 0 (at most half the run).
        epochs: passes over the data; ``None``: at least 600 updates (above).
        labels: ``"true"`` (default), ``"predicted"`` or ``"soft"`` labels for the copies.
        **kwargs: the keyword arguments below.

    Keyword Args:
        objective (str): ``"ce"`` or ``"trades"`` (see `TRADESTrainer`).
        beta (float): the TRADES trade-off, with ``objective="trades"``.
        source (str): ``"current"`` (default) attacks the model as it trains; ``"original"`` the undefended
            model.
        layers (str): ``"trainable"`` (default) keeps frozen layers frozen; ``"all"`` unfreezes every layer.
        batchnorm (str | None): ``"train"`` (default) or ``"frozen"`` BatchNorm statistics.
        subset (float | int): fraction or count of training images used (default 1.0).
        batch_size (int): images per update, clean and copies together (default 32).
        learning_rate (float | None): the peak learning rate (default 1e-3 for Adam, 0.1 for SGD).
        warmup_epochs (int): epochs of linear learning-rate warm-up before `schedule` (default 0).
        optimizer (keras.optimizers.Optimizer | str | None): a Keras optimizer, ``"adam"`` (the preset's
            default), ``"sgd"`` or another name.
        schedule (str | None): ``"cosine"``, ``"onecycle"``, ``"piecewise"`` or ``"constant"``.
        weight_decay (float | None): decoupled weight decay (default 5e-4 for SGD, none for Adam).
        loss (keras.losses.Loss | str | Callable | None): an explicit Keras loss (default: cross-entropy).
        validation_size (int): validation images attacked after every epoch (default 256).
        keep_best (str): ``"robust"`` (default) ends with the most robust epoch's weights; ``"last"`` the
            last.
        strategy (tf.distribute.Strategy | None): a distribution strategy.
        seed (int): seeds the subset, the order of every epoch and the attack's random starts (default 0).

    Example::

        defended, history = PGDAdversarialTrainer(eps=8 / 255).fit(model, (x, y), validation_data=(xv, yv))
        sgd = PGDAdversarialTrainer(eps=8 / 255, optimizer="sgd", schedule="onecycle", epochs=30)
    """

    default_optimizer = "adam"

    def __init__(
        self,
        eps: float = 8 / 255,
        steps: int = 7,
        rel_stepsize: float | None = None,
        *,
        ratio: float = 1.0,
        labels: str = "true",
        eps_ramp: int = 5,
        epochs: int | None = None,
        **kwargs: Any,
    ) -> None:
        attack = PGD(steps=steps, rel_stepsize=rel_stepsize, random_start=True)
        super().__init__(attack, eps, ratio=ratio, labels=labels, eps_ramp=eps_ramp, epochs=epochs, **kwargs)
