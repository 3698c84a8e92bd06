"""TRADES: the clean/robust trade-off (Zhang et al. 2019)."""

from __future__ import annotations

from typing import Any

from robustmask.attacks.pgd import PGD
from robustmask.defenses.adversarial_training import AdversarialTrainer


class TRADESTrainer(AdversarialTrainer):
    """Minimise ``CE(y, f(x)) + beta * KL(f(x) || f(x'))`` with x' the PGD maximiser of the KL term.

    Zhang, Yu, Jiao, Xing, El Ghaoui & Jordan, "Theoretically Principled Trade-off between
    Robustness and Accuracy", ICML 2019, https://arxiv.org/abs/1901.08573. The attack ascends the
    cross-entropy against the model's own clean probabilities, whose gradient is the gradient of
    KL(f(x) || f(x')); no true label enters it. Larger ``beta`` buys robustness with clean accuracy
    (1 to 6 in the paper; 6 for CIFAR-10).

    How long: as `PGDAdversarialTrainer`, ``epochs=None`` (the default) makes at least 600
    batches' worth of clean images, ``max(10, ceil(600 / ceil(n / batch_size)))`` epochs for n
    training images: 32 epochs for 600 images, 10 from 1,920 on (a batch holds each clean image and
    its copy, so an epoch makes twice PGD-AT's updates at about its cost). Measured on a small
    BatchNorm CNN of 600 faces at 48 px, eps 0.03 (benchmarks/default_trainer_check.py): 10 epochs
    gained 18 points under PGD-20, 32 (the default) 40, clean accuracy no lower than undefended.

    Args:
        eps: the training budget (L-inf).
        beta: weight of the robustness term.
        steps: PGD steps per update (10 in Zhang et al.).
        eps_ramp: epochs over which eps grows from 0 (at most half the run).
        epochs: passes over the data; ``None``: at least 600 updates (above).
        **kwargs: the keyword arguments below.

    Keyword Args:
        ratio (float | None): the copies' share of the loss, in (0, 1].
        source (str): ``"current"`` (default) attacks the model as it trains; ``"original"`` the undefended
            model.
        labels (str | None): ``"true"``, ``"predicted"`` or ``"soft"`` labels for the copies.
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

        defended, history = TRADESTrainer(eps=8 / 255, beta=6.0).fit(model, (x, y), validation_data=(xv, yv))
    """

    default_optimizer = "adam"

    def __init__(
        self,
        eps: float = 8 / 255,
        beta: float = 6.0,
        steps: int = 7,
        *,
        eps_ramp: int = 5,
        epochs: int | None = None,
        **kwargs: Any,
    ) -> None:
        attack = PGD(steps=steps, random_start=True)
        super().__init__(
            attack,
            eps,
            objective="trades",
            beta=beta,
            eps_ramp=eps_ramp,
            epochs=epochs,
            **kwargs,
        )
